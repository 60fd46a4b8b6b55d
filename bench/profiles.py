"""cProfile of the benchmark's endpoints, in-process through Django's WSGI handler (the middleware,
the view, the database and Redis all real; only gunicorn and the socket left out).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/atelier_bench_100000 \\
        .venv/bin/python bench/profiles.py poll order_get page_poll -n 300

`make bench` (bench/run.py) runs this in its own process with `--spec` (the endpoints as it asked
them, JSON: name -> path, headers, ...) and `--out` (the results as JSON) and puts the top 15
functions of each endpoint into its report. Without `--spec`: the endpoints of `bench.run.endpoints`
with fresh credentials, the page polls at the URL their page gives its poller. Environment as `make
bench`'s server: DEBUG off, rate limits on Redis (BENCH_REDIS), one trusted proxy (each request its
own client).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import re
import secrets
import sys
import sysconfig
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
    return _request(handler, factory, item)[0]


def _request(handler: Any, factory: Any, item: dict[str, Any]) -> tuple[int, bytes]:
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
    body = b"".join(response)
    response.close()  # request_finished: connections kept (conn_max_age), as under gunicorn
    return status[0], body


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
    return {"ms": plain_ms, "profiled_ms": profiled_ms, "n": n, "warmup": warmup, "top": _trim(out.getvalue())}


# Where a profiled function's file lives, cut from its path: packages, this checkout, the stdlib.
_PREFIX = re.compile(
    r"/\S*site-packages/|" + "|".join(re.escape(f"{path}/") for path in (ROOT, sysconfig.get_path("stdlib")))
)


def _trim(text: str) -> str:
    """pstats' table without its preamble, paths shortened to the package (or module)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return "\n".join(_PREFIX.sub("", line) for line in lines[start:] if line.strip())


def _fetch(path: str, headers: dict[str, str]) -> str:
    """A page through the WSGI handler, for `bench.run.resolve_pollers`."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.client import RequestFactory

    status, body = _request(WSGIHandler(), RequestFactory(), {"path": path, "headers": headers})
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}")
    return body.decode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="endpoints (bench.run.endpoints or --spec); default: all")
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--spec", type=Path, help="the endpoints as JSON (name -> path, headers, ...)")
    parser.add_argument("--out", type=Path, help="write the results here as JSON (name -> ms, top, ...)")
    args = parser.parse_args()
    _setup()
    if args.spec:
        spec: dict[str, dict[str, Any]] = json.loads(args.spec.read_text())
    else:
        from django.conf import settings

        from bench import run

        database = f"{run.PG}/{settings.DATABASES['default']['NAME']}"
        meta = run.bench_meta(database)
        spec = run.resolve_pollers(run.endpoints(meta, run.credentials(database, meta)), _fetch)
    results = {}
    for name in args.names or list(spec):
        result = results[name] = profile_endpoint(spec[name], n=args.n)
        print(f"== {name}: {result['ms']:.2f} ms/request ({result['profiled_ms']:.2f} profiled), n={result['n']}")
        print(result["top"])
        print()
    if args.out:
        args.out.write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
