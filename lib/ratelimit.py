"""Per-scope, per-client-IP rate limits in the shared cache (a sliding window of two buckets).

The count of the previous fixed window is weighted by how much of it still overlaps the sliding
window, which is what Cloudflare and nginx-style limiters do: two cache keys per (scope, client),
no per-request lists, and close to exact at window edges.

Every endpoint has a limit (`endpoint(rate=...)`, else `default_rate`: READ_LIMIT an hour for
reads, WRITE_LIMIT for writes), each scope its own bucket. A refused request is not counted, so a
client that keeps hammering is let in again as soon as its earlier requests slide out.

Counting is atomic on every supported cache, so concurrent requests never admit more than the limit:
- Redis (`CACHE_URL=redis://...`, production): one round trip, a Lua script that reads both
  buckets and increments the current one only when the request is admitted.
- The database (`dbcache://...`, the default): the counters live in their own table
  (the table `atelier.models.RateLimitCounter` defines and `migrate` creates; named here, so
  this library imports no app), not in Django's cache table, whose
  pickled values cannot be incremented in SQL. One SELECT of both buckets (all a refused request
  costs), then one conditional upsert, `INSERT ... ON CONFLICT DO UPDATE SET count = count + 1
  WHERE count < cap RETURNING count`: the database decides, no read-modify-write.
- Any other cache (locmem in some tests): the portable cache API under a process lock.

If the counters cannot be reached the request passes (fail open): the error is logged, the limiter
stays off for TRIP_SECONDS in that process (no retry storm, no timeout on every request), and
`health()` says why, for `/healthz` and `manage.py check --deploy`.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import threading
import time
import weakref
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.db import DatabaseCache
from django.core.cache.backends.redis import RedisCache
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.http import HttpRequest, HttpResponse

from lib.errors import RateLimited

log = logging.getLogger("atelier.ratelimit")  # under the project's logger, as before the move out of atelier/
# The counters' table: atelier.models.RateLimitCounter (its Meta.db_table says the same name).
COUNTER_TABLE = "atelier_ratelimitcounter"

HOUR = 3600
# The documented defaults for endpoints the product's table does not name (DESIGN.md section 4):
# per endpoint and client IP. Reads are generous (a page refreshing every 6 seconds for an hour);
# writes are what a busy person or agent does, and far more than a script that should be batching.
READ_LIMIT = 600
WRITE_LIMIT = 120
READ_METHODS = ("GET", "HEAD", "OPTIONS")
# After a cache error the limiter is off for this long in this process (fail open, fast).
TRIP_SECONDS = 5.0
clock = time.time  # wall-clock seconds: windows are aligned across app servers (tests move it)


@dataclass(frozen=True)
class Rate:
    scope: str
    limit: int
    window: int  # seconds

    def describe(self, per: str = "IP") -> str:
        unit = {3600: "hour", 60: "minute", 86400: "day"}.get(self.window, f"{self.window} s")
        return f"{self.limit} requests per {unit} per {per}"


def _wait(seconds: int) -> str:
    """A wait as a person reads it: seconds under a minute, else whole minutes (rounded up)."""
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def default_rate(method: str, scope: str) -> Rate:
    """The limit of an endpoint that declares none: its own bucket, READ_LIMIT or WRITE_LIMIT an hour."""
    return Rate(scope, READ_LIMIT if method.upper() in READ_METHODS else WRITE_LIMIT, HOUR)


@dataclass(frozen=True)
class Usage:
    """Where a client stands after an admitted request: what the X-RateLimit-* headers say."""

    limit: int
    remaining: int
    reset: int  # unix seconds: the end of the current window, when its bucket starts to slide out

    def apply(self, response: HttpResponse) -> HttpResponse:
        response["X-RateLimit-Limit"] = str(self.limit)
        response["X-RateLimit-Remaining"] = str(self.remaining)
        response["X-RateLimit-Reset"] = str(self.reset)
        return response


_UNSAFE_KEY_CHARS = re.compile(r"[^0-9A-Za-z.:_/-]")


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
        # Not an address (a misconfigured proxy): still one bucket, and a valid cache key.
        return _UNSAFE_KEY_CHARS.sub("_", address[:64])
    if ip.version == 6:
        if ip.ipv4_mapped:  # ::ffff:198.51.100.7 is an IPv4 client on a dual-stack socket
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False).network_address) + "/64"
    return str(ip)


def client_address(request: HttpRequest) -> str | None:
    """`client_ip` as an address (an IPv6 client's /64 as its first address), None when it is not
    one: for other per-client limits that store an IP (django-axes)."""
    found = client_ip(request).removesuffix("/64")
    try:
        return str(ipaddress.ip_address(found))
    except ValueError:
        return None


def check(request: HttpRequest, rate: Rate, *, key: str | None = None) -> Usage | None:
    """Count this request against `rate`, per client IP or per `key` (a wallet, say); raise
    RateLimited when over.

    Returns the client's usage for the X-RateLimit-* headers, or None when the cache is down
    (the request passes, and the error is logged).
    """
    now = clock()
    index = int(now // rate.window)
    elapsed = now - index * rate.window
    weight = (rate.window - elapsed) / rate.window  # how much of the previous window still counts
    who = client_ip(request) if key is None else "k:" + _UNSAFE_KEY_CHARS.sub("_", key[:100])
    current_key = f"rl:{rate.scope}:{who}:{index}"
    previous_key = f"rl:{rate.scope}:{who}:{index - 1}"
    backend = caches["default"]
    if _tripped.get(backend, 0.0) > time.monotonic():
        return None
    try:
        if isinstance(backend, RedisCache):
            admitted, current, previous = _count_redis(backend, current_key, previous_key, rate, weight)
        elif isinstance(backend, DatabaseCache):
            admitted, current, previous = _count_database(current_key, previous_key, rate, weight, int(now))
        else:
            with _lock:
                admitted, current, previous = _count(backend, current_key, previous_key, rate, weight)
    except Exception:
        _tripped[backend] = time.monotonic() + TRIP_SECONDS
        log.exception(
            "rate limit cache unavailable: letting requests through for %.0f s (scope %s)", TRIP_SECONDS, rate.scope
        )
        return None
    if not admitted:
        retry_after = _retry_after(rate, elapsed, current, previous)
        raise RateLimited(
            f"Too many requests: the limit is {rate.describe(per='IP' if key is None else 'wallet')}. "
            f"Try again in {_wait(retry_after)}.",
            retry_after=retry_after,
            limit=rate.limit,
            reset=int(now) + retry_after,
        )
    remaining = max(0, math.floor(rate.limit - previous * weight - current))
    return Usage(rate.limit, remaining, (index + 1) * rate.window)


# Per cache connection (a new one after a settings change, one per thread): limiter off until then.
_tripped: weakref.WeakKeyDictionary[BaseCache, float] = weakref.WeakKeyDictionary()


def _count_database(current_key: str, previous_key: str, rate: Rate, weight: float, now: int) -> tuple[bool, int, int]:
    """(admitted, current count, previous count): one SELECT, then one conditional upsert."""
    alias = DEFAULT_DB_ALIAS
    connection = connections[alias]
    table = connection.ops.quote_name(COUNTER_TABLE)
    # A savepoint only inside a transaction (tests): a missing table must not break the caller's.
    with (
        transaction.atomic(using=alias) if connection.in_atomic_block else nullcontext(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"SELECT bucket, count FROM {table} WHERE bucket IN (%s, %s)", [current_key, previous_key])  # noqa: S608 (the table name is ours)
        counts = dict(cursor.fetchall())
        current, previous = int(counts.get(current_key, 0)), int(counts.get(previous_key, 0))
        # The most the current bucket may hold: previous * weight + current <= limit.
        cap = math.floor(rate.limit - previous * weight)
        if current + 1 > cap:
            return False, current, previous  # refused: not counted, and no write
        # The database re-checks the cap against the row as it is when the upsert runs.
        cursor.execute(
            f"INSERT INTO {table} (bucket, count, expires) VALUES (%s, 1, %s) "  # noqa: S608
            f"ON CONFLICT (bucket) DO UPDATE SET count = {table}.count + 1 WHERE {table}.count < %s "
            "RETURNING count",
            [current_key, now + rate.window * 2, cap],  # read as "previous" during the next window
        )
        row = cursor.fetchone()
        if row is None:  # concurrent requests took the last slots since the SELECT
            return False, max(current, cap), previous
        if row[0] == 1:  # a new bucket: sweep the expired ones (their window index is past)
            cursor.execute(f"DELETE FROM {table} WHERE expires < %s", [now])  # noqa: S608
        return True, int(row[0]), previous


# Any other cache: its get-then-write is made atomic within the process (locmem, the tests' cache).
_lock = threading.Lock()


def _count(backend: BaseCache, current_key: str, previous_key: str, rate: Rate, weight: float) -> tuple[bool, int, int]:
    """(admitted, current count, previous count) with the portable cache API (caller holds `_lock`)."""
    counts = backend.get_many([current_key, previous_key])
    current = int(counts.get(current_key, 0))
    previous = int(counts.get(previous_key, 0))
    if previous * weight + current + 1 > rate.limit:
        return False, current, previous  # refused: not counted, and no write
    if not current:
        current = 1 if backend.add(current_key, 1, timeout=rate.window * 2) else backend.incr(current_key)
    else:
        try:
            current = backend.incr(current_key)
        except ValueError:  # expired or culled since the read
            backend.add(current_key, 1, timeout=rate.window * 2)
            current = 1
    # Another process sharing the cache (memcached) may have taken the last slot since the read.
    return previous * weight + current <= rate.limit, current, previous


def health() -> str | None:
    """Why the limiter cannot count right now, or None when it can (for /healthz and check --deploy)."""
    backend = caches["default"]
    try:
        if isinstance(backend, RedisCache):
            backend._cache.get_client(write=True).ping()
        elif isinstance(backend, DatabaseCache):
            alias = DEFAULT_DB_ALIAS
            connection = connections[alias]
            with (
                transaction.atomic(using=alias) if connection.in_atomic_block else nullcontext(),
                connection.cursor() as cursor,
            ):
                table = connection.ops.quote_name(COUNTER_TABLE)
                cursor.execute(f"SELECT 1 FROM {table} WHERE bucket = %s", ["rl:health"])  # noqa: S608
        else:
            backend.get("rl:health")
    except Exception as exc:
        return f"the rate-limit counters cannot be reached ({type(exc).__name__}: {exc})"
    if _tripped.get(backend, 0.0) > time.monotonic():
        return "the rate limiter failed moments ago and lets every request through"
    return None


# KEYS: current bucket, previous bucket. ARGV: limit, weight of the previous bucket, TTL (s).
# Django's RedisCache stores integers unpickled, so cache.get() reads these counters too.
_REDIS_SCRIPT = """
local counts = redis.call('MGET', KEYS[1], KEYS[2])
local current = tonumber(counts[1] or '0')
local previous = tonumber(counts[2] or '0')
if previous * tonumber(ARGV[2]) + current + 1 > tonumber(ARGV[1]) then
  return {0, current, previous}
end
current = redis.call('INCR', KEYS[1])
if current == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return {1, current, previous}
"""
# Per cache connection: its redis-py client (Django builds a new one for every cache call, which
# costs more than the round trip itself) and the script registered on it.
_redis_clients: weakref.WeakKeyDictionary[RedisCache, tuple[Any, Any]] = weakref.WeakKeyDictionary()


def _count_redis(
    backend: RedisCache, current_key: str, previous_key: str, rate: Rate, weight: float
) -> tuple[bool, int, int]:
    """The same decision as `_count`, in one round trip and atomically (a Lua script)."""
    keys = [backend.make_and_validate_key(current_key), backend.make_and_validate_key(previous_key)]
    if backend not in _redis_clients:
        client = backend._cache.get_client(write=True)
        _redis_clients[backend] = (client, client.register_script(_REDIS_SCRIPT))
    client, script = _redis_clients[backend]
    admitted, current, previous = script(keys=keys, args=[rate.limit, repr(weight), rate.window * 2], client=client)
    return bool(admitted), int(current), int(previous)


def _retry_after(rate: Rate, elapsed: float, current: int, previous: int) -> int:
    """Seconds until one more request fits: previous * (window - elapsed - t) / window + current + 1 <= limit."""
    window, limit = rate.window, rate.limit
    if current < limit and previous:
        # Enough of the previous window has to slide out.
        wait = (window - elapsed) - (limit - current - 1) * window / previous
    else:
        # This window is full: wait for it to end, then for its own count to slide out far enough.
        wait = (window - elapsed) + window * (1 - (limit - 1) / max(current, 1))
    return max(1, math.ceil(wait))
