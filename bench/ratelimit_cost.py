"""What the rate limiter costs per request, on each cache: µs and queries (or round trips).

    .venv/bin/python bench/ratelimit_cost.py                    # database cache on a file SQLite, and Redis
    .venv/bin/python bench/ratelimit_cost.py --rows 10000       # with 10,000 other rows in the cache table
    .venv/bin/python bench/ratelimit_cost.py --database-url postgres://postgres@127.0.0.1:5432/ratelimit_bench

For each cache it times N calls of `ratelimit.check()` (no HTTP, no view: the limiter alone) in
three cases, in interleaved rounds (the median is shown), and prints µs, database queries and
Redis commands per call:
- admitted: one client, well under its limit (the steady state: read both buckets, write one);
- new client: each call from another address (a new bucket each time: read, then add);
- refused: one client over its limit (what a flood costs: the read alone);
and the same for the limiter before this change (add + incr + get on every request) as "before".
The PostgreSQL database named is dropped and created again. Redis is skipped if none answers on
127.0.0.1:6379; its keys get a fresh prefix and are deleted afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _create_postgres_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


def _before(request: Any, rate: Any) -> None:
    """The limiter as it was: add, incr and get on every request, refused or not."""
    from django.core.cache import cache

    from lib.ratelimit import client_ip

    now = time.time()
    index = int(now // rate.window)
    who = client_ip(request)
    current_key = f"rl:{rate.scope}:{who}:{index}"
    cache.add(current_key, 0, timeout=rate.window * 2)
    current = cache.incr(current_key)
    previous = cache.get(f"rl:{rate.scope}:{who}:{index - 1}", 0)
    elapsed = now - index * rate.window
    if previous * (rate.window - elapsed) / rate.window + current > rate.limit:
        raise _Refused


class _Refused(Exception):
    pass


class _RedisCommands:
    """Counts the commands this process sends to Redis (each one a round trip: nothing is pipelined)."""

    def __init__(self) -> None:
        from redis.connection import AbstractConnection

        self.count = 0
        self._original: Callable[..., Any] = AbstractConnection.send_command
        counter = self

        def send_command(connection: Any, *args: Any, **kwargs: Any) -> Any:
            counter.count += 1
            return counter._original(connection, *args, **kwargs)

        AbstractConnection.send_command = send_command  # type: ignore[method-assign,assignment]

    def __enter__(self) -> _RedisCommands:
        return self

    def __exit__(self, *exc: object) -> None:
        from redis.connection import AbstractConnection

        AbstractConnection.send_command = self._original  # type: ignore[method-assign]


def _measure(check: Callable[[Any, Any], Any], case: str, calls: int) -> tuple[float, float, float]:
    """(µs per call, database queries per call, Redis commands per call)."""
    from django.db import connection
    from django.test import RequestFactory

    from lib.errors import RateLimited
    from lib.ratelimit import Rate

    factory = RequestFactory()
    scope = f"bench-{uuid.uuid4().hex[:8]}"
    if case == "refused":
        rate = Rate(scope, 1, 3600)
        requests = [factory.get("/", REMOTE_ADDR="198.51.100.1")] * calls
        with contextlib.suppress(RateLimited, _Refused):
            check(requests[0], rate)  # the one admitted request
    elif case == "new client":
        rate = Rate(scope, 10**9, 3600)
        requests = [
            factory.get("/", REMOTE_ADDR=f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}") for n in range(calls)
        ]
    else:
        rate = Rate(scope, 10**9, 3600)
        requests = [factory.get("/", REMOTE_ADDR="198.51.100.1")] * calls
        check(requests[0], rate)  # the bucket exists: the steady state
    queries = 0

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count), _RedisCommands() as commands:
        started = time.perf_counter()
        for request in requests:
            with contextlib.suppress(RateLimited, _Refused):
                check(request, rate)
        elapsed = time.perf_counter() - started
    return elapsed / calls * 1e6, queries / calls, commands.count / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per case; the median is shown")
    parser.add_argument("--rows", type=int, default=0, help="other rows put in the cache table first")
    parser.add_argument("--database-url", help="a PostgreSQL URL (the database is recreated); default: file SQLite")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="ratelimit-bench-")
    os.environ["ATELIER_DATA_DIR"] = data_dir
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{data_dir}/bench.sqlite3"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "atelier.settings"
    # Benchmarks run with DEBUG off and the local chains: their own throwaway key, the chains asked for.
    os.environ.setdefault("SECRET_KEY", "bench-only-" + secrets.token_hex(24))
    os.environ.setdefault("CHAIN_MODE", "local")
    os.environ.setdefault("ALLOW_LOCAL_CHAIN", "true")
    if args.database_url:
        _create_postgres_database(args.database_url)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import override_settings

    from lib import ratelimit
    from lib.caches import cache_config

    settings.DEBUG = False
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    prefix = f"bench-{uuid.uuid4().hex}"
    caches: list[tuple[str, dict[str, Any]]] = [
        (f"database cache ({connection.vendor})", cache_config("dbcache://atelier_cache")),
    ]
    if _redis_up():
        caches.append(("Redis", cache_config(f"redis://127.0.0.1:6379/9?key_prefix={prefix}")))
    else:
        print("(no Redis on 127.0.0.1:6379: skipped)")
    caches.append(("in-memory (locmem)", {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}))

    print(
        f"{args.calls} calls per case, median of {args.rounds} rounds; database: {connection.vendor}; other rows in the cache table: {args.rows}"
    )
    print("queries: SQL statements per call; Redis: commands (round trips) per call")
    print(
        f"{'cache':<28} {'case':<11} {'now µs':>8} {'queries':>8} {'Redis':>6} {'before µs':>10} {'queries':>8} {'Redis':>6}"
    )
    for name, config in caches:
        with override_settings(CACHES={"default": config}):
            cache.clear()
            if args.rows and "database" in name:
                cache.set_many({f"filler:{n}": n for n in range(args.rows)}, timeout=7200)
            for case in ("admitted", "new client", "refused"):
                # Interleaved rounds, the median of each: a busy machine slows both alike.
                rounds = [
                    (_measure(ratelimit.check, case, args.calls), _measure(_before, case, args.calls))
                    for _ in range(args.rounds)
                ]
                now = tuple(statistics.median(r[0][i] for r in rounds) for i in range(3))
                before = tuple(statistics.median(r[1][i] for r in rounds) for i in range(3))
                print(
                    f"{name:<28} {case:<11} {now[0]:>8.0f} {now[1]:>8.1f} {now[2]:>6.1f}"
                    f" {before[0]:>10.0f} {before[1]:>8.1f} {before[2]:>6.1f}"
                )
            cache.clear()


if __name__ == "__main__":
    main()
