"""`address_allowed`: the one rule for which addresses outbound requests may reach."""

from __future__ import annotations

from typing import Any

import pytest

from lib.safehttp import address_allowed
from tests.lib.ssrf_cases import EMBEDDED_NON_PUBLIC, PUBLIC_IPV6


@pytest.fixture(autouse=True)
def no_loopback(settings: Any) -> None:
    settings.SAFEHTTP_ALLOW_LOOPBACK = False


@pytest.mark.parametrize("address", EMBEDDED_NON_PUBLIC)
def test_an_ipv6_address_embedding_a_non_public_ipv4_address_is_refused(address):
    assert address_allowed(address) is False


@pytest.mark.parametrize("address", EMBEDDED_NON_PUBLIC)
def test_the_loopback_test_setting_does_not_open_embedded_addresses_other_than_mapped_loopback(address, settings):
    settings.SAFEHTTP_ALLOW_LOOPBACK = True
    # Only the plain and IPv4-mapped loopback forms are "this machine"; a NAT64 or tunnel address
    # leads somewhere else and stays refused.
    assert address_allowed(address) is (address == "::ffff:127.0.0.1")


@pytest.mark.parametrize("address", [*PUBLIC_IPV6, "8.8.8.8", "1.1.1.1", "::ffff:8.8.8.8"])
def test_a_public_address_is_allowed(address):
    assert address_allowed(address) is True


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "169.254.169.254",
        "0.0.0.0",  # noqa: S104 (an address under test, not a bind)
        "224.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fd00::1",
        "2001:db8::1",
        "ff02::1",
        "fe80::1%eth0",
    ],
)
def test_a_plain_non_public_address_is_refused(address):
    assert address_allowed(address) is False


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("2002:808:808::1", id="6to4-public"),
        # Teredo: server 65.54.227.120, client 8.8.8.8: both public, but the prefix is never global.
        pytest.param("2001:0:4136:e378:8000:63bf:f7f7:f7f7", id="teredo-public"),
    ],
)
def test_tunnel_prefixes_are_refused_even_when_the_embedded_address_is_public(address):
    # 2002::/16 and 2001::/32 are not global unicast (IANA); a relay picks where the packet goes.
    assert address_allowed(address) is False


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("10.1.2.3", True),
        ("192.168.1.20", True),
        ("fd00::1", True),
        ("169.254.169.254", False),  # cloud metadata: never
        ("fe80::1", False),
        ("224.0.0.1", False),
    ],
)
def test_allow_private_admits_loopback_and_private_networks_never_link_local(address, allowed):
    assert address_allowed(address, allow_private=True) is allowed
    assert address_allowed(address) is False
