"""cProfile of the benchmark's endpoints, in-process through Django's WSGI handler (the middleware,
the view, the database and Redis all real; only gunicorn and the socket left out).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/atelier_bench_100000 \\
        .venv/bin/python bench/profiles.py poll order_get -n 300

`make bench` (bench/run.py) calls `profile_endpoints` and puts the top 15 functions of each endpoint
into its report. Names: those of `bench.run.endpoints`. Environment as `make bench`'s server: DEBUG
off, rate limits on Redis (BENCH_REDIS), one trusted proxy (each request its own client).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import re
import secrets
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOP = 15
_RNG = random.Random()  # noqa: S311 - client addresses for the rate limiter, not security


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atelier.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-" + secrets.token_hex(24))
    os.environ.setdefault("CHAIN_MODE", "local")
    os.environ.setdefault("ALLOW_LOCAL_CHAIN", "true")
    os.environ.setdefault("CACHE_URL", os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/13"))
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("TRUSTED_PROXY_COUNT", "1")
    os.environ.setdefault("ATELIER_BENCH", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # Persistent connections, as make bench's server (bench/run.py) and production have them.
    if "?" not in os.environ.get("DATABASE_URL", "?"):
        os.environ["DATABASE_URL"] += "?conn_max_age=60&conn_health_checks=true"
    os.environ.setdefault("STATIC_MANIFEST", "false")  # no collectstatic run here; a dict lookup either way
    import django

    django.setup()


def _call(handler: Any, factory: Any, item: dict[str, Any]) -> int:
    path = _RNG.choice(item["paths"]) if item.get("paths") else item["path"]
    headers = dict(item.get("headers", {}))
    forwarded = f"{_RNG.randint(11, 223)}.{_RNG.randint(0, 255)}.{_RNG.randint(0, 255)}.{_RNG.randint(1, 254)}"
    headers["X-Forwarded-For"] = forwarded
    request = factory.generic(
        item.get("method", "GET"),
        path,
        data=item.get("body") or "",
        content_type="application/json",
        headers=headers,
        secure=False,
    )
    status: list[int] = []
    response = handler(request.environ, lambda line, _headers, *_: status.append(int(line.split()[0])))
    for _chunk in response:
        pass
    response.close()  # request_finished: connections kept (conn_max_age), as under gunicorn
    return status[0]


def profile_endpoint(item: dict[str, Any], n: int = 300, warmup: int = 30) -> dict[str, Any]:
    """`n` requests of one endpoint under cProfile after `warmup` unprofiled ones: milliseconds per
    request (with and without the profiler) and the top functions by own time."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.client import RequestFactory

    handler, factory = WSGIHandler(), RequestFactory()
    for _ in range(warmup):
        status = _call(handler, factory, item)
        if status >= 300:
            raise RuntimeError(f"{item['path']} answered {status}")
    began = time.perf_counter()
    for _ in range(n):
        _call(handler, factory, item)
    plain_ms = (time.perf_counter() - began) * 1000 / n
    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.enable()
    for _ in range(n):
        _call(handler, factory, item)
    profiler.disable()
    profiled_ms = (time.perf_counter() - began) * 1000 / n
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(TOP)
    return {"ms": plain_ms, "profiled_ms": profiled_ms, "n": n, "top": _trim(out.getvalue())}


def _trim(text: str) -> str:
    """pstats' table without its preamble, paths shortened to the package."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    kept = []
    for line in lines[start:]:
        if line.strip():
            kept.append(re.sub(r"/\S*site-packages/|" + re.escape(str(ROOT) + "/"), "", line))
    return "\n".join(kept)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="endpoints (bench.run.endpoints); default: all")
    parser.add_argument("-n", type=int, default=300)
    args = parser.parse_args()
    _setup()
    from django.conf import settings

    from bench import run

    url = settings.DATABASES["default"]["NAME"]
    database = f"{run.PG}/{url}"
    meta = run.bench_meta(database)
    spec = run.endpoints(meta, run.credentials(database, meta))
    for name in args.names or list(spec):
        result = profile_endpoint(spec[name], n=args.n)
        print(f"== {name}: {result['ms']:.2f} ms/request ({result['profiled_ms']:.2f} profiled), n={result['n']}")
        print(result["top"])
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
