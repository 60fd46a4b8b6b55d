"""Per-scope, per-client-IP rate limits in the shared cache (a sliding window of two buckets).

The count of the previous fixed window is weighted by how much of it still overlaps the sliding
window, which is what Cloudflare and nginx-style limiters do: O(1) cache keys per request, no
per-request lists, and close to exact at window edges.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

from atelier.lib.errors import RateLimited

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rate:
    scope: str
    limit: int
    window: int  # seconds

    def describe(self) -> str:
        unit = {3600: "hour", 60: "minute", 86400: "day"}.get(self.window, f"{self.window} s")
        return f"{self.limit} requests per {unit} per IP"


def client_ip(request: HttpRequest) -> str:
    """The client address, trusting exactly TRUSTED_PROXY_COUNT proxies; IPv6 by its /64."""
    address = request.META.get("REMOTE_ADDR", "") or "unknown"
    hops = settings.TRUSTED_PROXY_COUNT
    if hops:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        # Each trusted proxy appends the address it saw; entries left of those are client-supplied.
        if len(forwarded) >= hops:
            address = forwarded[-hops]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False).network_address) + "/64"
    return str(ip)


def check(request: HttpRequest, rate: Rate) -> None:
    """Count this request against `rate`; raise RateLimited when over. Fails open if the cache is down."""
    now = time.time()
    window_index = int(now // rate.window)
    elapsed = now - window_index * rate.window
    who = client_ip(request)
    current_key = f"rl:{rate.scope}:{who}:{window_index}"
    previous_key = f"rl:{rate.scope}:{who}:{window_index - 1}"
    try:
        cache.add(current_key, 0, timeout=rate.window * 2)
        current = cache.incr(current_key)
        previous = cache.get(previous_key, 0)
    except Exception:
        log.exception("rate limit cache unavailable; letting the request through (scope %s)", rate.scope)
        return
    weighted = previous * (rate.window - elapsed) / rate.window + current
    if weighted <= rate.limit:
        return
    # Time until enough of the previous window has slid out to admit one more request.
    if previous and current <= rate.limit:
        wait = rate.window - elapsed - (rate.limit - current) * rate.window / previous
        retry_after = max(1, math.ceil(wait))
    else:
        retry_after = max(1, math.ceil(rate.window - elapsed))
    raise RateLimited(
        f"Too many requests: the limit is {rate.describe()}. Try again in {retry_after} seconds.",
        retry_after=retry_after,
        limit=rate.limit,
        reset=int(now + retry_after),
    )
