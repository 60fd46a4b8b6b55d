"""Outbound HTTP to addresses users give us (webhook endpoints, deliverable URLs), safely.

The check is made at connect time: the host is resolved once, every address must be public, and
the socket connects to exactly the address that was checked. Checking a DNS answer and then
letting the HTTP client resolve again is not enough, since the second answer can differ (DNS
rebinding). No redirects are followed, no proxy from the
environment is used, bodies are capped, and every call has a timeout.

Tests that run a receiver on loopback set `SAFEHTTP_ALLOW_LOOPBACK = True`; nothing else may.
A caller may pass `allow_private=True` for loopback and private networks (never link-local, where
cloud metadata lives): webhooks do under DEBUG with ALLOW_PRIVATE_WEBHOOKS, for a receiver on the
developer's machine.
"""

from __future__ import annotations

import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as ResolveTimeout
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class UnsafeURL(Exception):
    """The URL or the address it led to is not allowed (private, loopback, link-local, ...)."""


class TooLarge(Exception):
    """The response body is over the limit."""


# IPv6 ranges whose last 32 bits are an IPv4 address that a translator reaches for us (RFC 6052
# NAT64, RFC 6145 IPv4-translated, RFC 4291 IPv4-compatible): that IPv4 address is the real peer.
_TRAILING_IPV4_NETWORKS = tuple(
    ipaddress.IPv6Network(network) for network in ("64:ff9b::/96", "::ffff:0:0:0/96", "::/96")
)
# Local-use NAT64 (RFC 8215): the IPv4 address may sit anywhere after the /48, and the translator
# is someone's own network by definition.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_global and not ip.is_multicast


def address_allowed(address: str, *, allow_private: bool = False) -> bool:
    """Whether outbound requests may connect to `address`: public, and so is every IPv4 address
    embedded in it (NAT64, IPv4-compatible or -mapped, 6to4, Teredo), judged by the same rule.
    `allow_private` also admits loopback and private networks, never link-local."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback and getattr(settings, "SAFEHTTP_ALLOW_LOOPBACK", False):
        return True
    if allow_private and (ip.is_loopback or ip.is_private) and not ip.is_link_local and not ip.is_multicast:
        return True
    if isinstance(ip, ipaddress.IPv4Address):
        return _public(ip)
    if ip in _LOCAL_NAT64:
        return False
    embedded: list[ipaddress.IPv4Address] = []
    if any(ip in network for network in _TRAILING_IPV4_NETWORKS):
        embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        embedded.append(ip.sixtofour)
    if ip.teredo is not None:
        embedded.extend(ip.teredo)  # (server, client)
    # The IPv6 address itself must be public too: Python counts 2002::/16 and 2001::/32 as not
    # global (relays choose where the packet goes), so a 6to4 or Teredo peer is refused whatever it embeds.
    return _public(ip) and all(_public(v4) for v4 in embedded)


class _CheckedConnectionMixin:
    """Resolve once, refuse unless every address is allowed, connect to that very address (so a
    second DNS answer cannot redirect us), and check the connected peer again."""

    host: str
    port: int
    timeout: Any
    allow_private = False

    def _new_conn(self) -> socket.socket:
        infos = _resolve(self.host, self.port, allow_private=self.allow_private)
        family, kind, proto, _, sockaddr = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.settimeout(self.timeout if isinstance(self.timeout, (int, float)) else 10.0)
        try:
            sock.connect(sockaddr)
        except OSError:
            sock.close()
            raise
        if not address_allowed(sock.getpeername()[0], allow_private=self.allow_private):
            sock.close()
            raise UnsafeURL("connected to a non-public address")
        return sock


def _resolve(host: str, port: int, *, allow_private: bool) -> list[Any]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnsafeURL(f"cannot resolve {host}: {exc}") from None
    for *_, sockaddr in infos:
        if not address_allowed(str(sockaddr[0]), allow_private=allow_private):
            raise UnsafeURL(f"refusing to connect to {sockaddr[0]}: not a public address")
    return infos


class _SafeHTTPConnection(_CheckedConnectionMixin, HTTPConnection):
    pass


class _SafeHTTPSConnection(_CheckedConnectionMixin, HTTPSConnection):
    pass


class _PrivateHTTPConnection(_SafeHTTPConnection):
    allow_private = True


class _PrivateHTTPSConnection(_SafeHTTPSConnection):
    allow_private = True


class _SafeHTTPPool(HTTPConnectionPool):
    ConnectionCls = _SafeHTTPConnection


class _SafeHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _SafeHTTPSConnection


class _PrivateHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PrivateHTTPConnection


class _PrivateHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PrivateHTTPSConnection


def _pool_manager(*, allow_private: bool) -> urllib3.PoolManager:
    manager = urllib3.PoolManager(num_pools=20, maxsize=4)
    if allow_private:
        manager.pool_classes_by_scheme = {"http": _PrivateHTTPPool, "https": _PrivateHTTPSPool}
    else:
        manager.pool_classes_by_scheme = {"http": _SafeHTTPPool, "https": _SafeHTTPSPool}
    return manager


_manager = _pool_manager(allow_private=False)
_private_manager = _pool_manager(allow_private=True)


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL("only http and https URLs with a host are allowed")
    if parts.username or parts.password:
        raise UnsafeURL("URLs with credentials are not allowed")


# Resolving for `refusal` (an answer inside a request) runs here, so a slow resolver costs the
# request at most `resolve_timeout`; a few threads at most wait on hung lookups.
_resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="safehttp-resolve")


def refusal(url: str, *, allow_private: bool = False, resolve_timeout: float = 2.0) -> str | None:
    """Why a request to `url` would be refused now (resolving its host), or None if it would go out
    or its host did not resolve within `resolve_timeout` seconds (no verdict: the connection checks
    again when it is made). For an answer to whoever set the URL."""
    try:
        check_url(url)
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        lookup = _resolver.submit(_resolve, parts.hostname or "", port, allow_private=allow_private)
        lookup.result(timeout=resolve_timeout)
    except (UnsafeURL, ValueError) as exc:
        return str(exc)
    except ResolveTimeout:
        return None
    return None


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    max_bytes: int = 1_000_000,
    allow_private: bool = False,
) -> Response:
    """One request, no redirects. Raises UnsafeURL, TooLarge, or urllib3's HTTPError subclasses
    (timeouts, refused connections) for the caller to treat as a failed attempt."""
    check_url(url)
    response: Any = (_private_manager if allow_private else _manager).request(
        method,
        url,
        body=body,
        headers=headers or {},
        timeout=urllib3.Timeout(connect=min(timeout, 5.0), read=timeout),
        retries=False,
        redirect=False,
        preload_content=False,
    )
    try:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.stream(64 * 1024):
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge(f"response body over {max_bytes} bytes")
            chunks.append(chunk)
        return Response(response.status, b"".join(chunks), dict(response.headers))
    finally:
        response.release_conn()
