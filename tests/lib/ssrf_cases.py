"""IPv6 addresses that carry an IPv4 address inside them, shared by the SSRF tests of every caller
of `lib.safehttp` (webhooks, image deliverables). The outbound request would reach the
embedded IPv4 host through a translator or tunnel, so the embedded address is what must be public."""

from __future__ import annotations

import pytest

EMBEDDED_NON_PUBLIC = [
    pytest.param("64:ff9b::7f00:1", id="nat64-loopback"),
    pytest.param("64:ff9b::a00:1", id="nat64-private"),
    pytest.param("64:ff9b::a9fe:a9fe", id="nat64-cloud-metadata"),
    pytest.param("64:ff9b:1::a00:1", id="local-nat64-private"),
    pytest.param("::127.0.0.1", id="ipv4-compatible-loopback"),
    pytest.param("::10.0.0.1", id="ipv4-compatible-private"),
    pytest.param("::169.254.169.254", id="ipv4-compatible-cloud-metadata"),
    pytest.param("::ffff:127.0.0.1", id="ipv4-mapped-loopback"),
    pytest.param("::ffff:10.0.0.1", id="ipv4-mapped-private"),
    pytest.param("::ffff:0:7f00:1", id="ipv4-translated-loopback"),
    pytest.param("2002:7f00:1::", id="6to4-loopback"),
    pytest.param("2002:a00:1::", id="6to4-private"),
    pytest.param("2002:a9fe:a9fe::1", id="6to4-cloud-metadata"),
    # Teredo: server 65.54.227.120, client 10.0.0.1 (stored inverted: 0xf5fffffe).
    pytest.param("2001:0:4136:e378:8000:63bf:f5ff:fffe", id="teredo-private-client"),
    # Teredo: server 127.0.0.1, client 8.8.8.8 (stored inverted: 0xf7f7f7f7).
    pytest.param("2001:0:7f00:1:8000:63bf:f7f7:f7f7", id="teredo-loopback-server"),
]

PUBLIC_IPV6 = [
    pytest.param("2606:4700:4700::1111", id="cloudflare-dns"),
    pytest.param("2001:4860:4860::8888", id="google-dns"),
    pytest.param("64:ff9b::808:808", id="nat64-public"),
]
