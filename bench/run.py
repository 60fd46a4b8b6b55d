"""`make bench`: Atelier under gunicorn (2 workers) on PostgreSQL and Redis, driven by wrk.

    .venv/bin/python bench/run.py                  # full scale: 1,000 agents ... 1,000,000 messages
    BENCH_SCALE=0.01 BENCH_DURATION=3 .venv/bin/python bench/run.py   # a quick run
    BENCH_BASELINE=95ba1d0 .venv/bin/python bench/run.py              # before (that commit) and after

What it does:
1. Skips (exit 0) when PostgreSQL (127.0.0.1:5432, user postgres) or Redis (127.0.0.1:6379) or
   wrk is missing.
2. Databases `<BENCH_DB_PREFIX>_<orders>`: one at BENCH_SCALE (100,000 orders at 1.0) and one at a
   hundredth of it (1,000 orders), each migrated and loaded with COPY once (bench/dataset.py); a
   `bench_meta` row marks a finished load (and its load time), so later runs reuse the data (after
   `migrate` and a refresh of `orders_order.change_stamp`, where that column exists).
3. With BENCH_BASELINE=<commit>: that commit is checked out into a temporary git worktree (removed
   at the end) and a second gunicorn runs it against the same databases ("before"; this checkout's
   code is "after").
4. Servers: gunicorn (2 sync workers, DEBUG off, CACHE_URL=redis://.../13 (the baseline: the next
   Redis database), TRUSTED_PROXY_COUNT=1, ATELIER_BENCH=1 for GET /bench/bare, STATIC_MANIFEST off).
   Every wrk request carries a random X-Forwarded-For, so each request is its own client for the
   rate limiter (which still runs, on Redis) and the per-IP limits never stop the run.
5. Per endpoint, ROUNDS interleaved rounds: in each, per code version, the bare view and then the
   endpoint (the versions' order alternating between rounds). The order page's polls are asked at
   the URL the page itself gives its poller, as a browser would.
6. Cost at 1 connection, interleaved: 1k against 100k orders, and 200 against 10,000 messages.
7. A full lifecycle driver (create, accept, pay with a real USDC transfer on a Solana devchain,
   start, deliver, approve) against each version, in alternating rounds (bench/lifecycle.py).
8. cProfile of each endpoint of this checkout's code in-process (bench/profiles.py), top 15.
9. Prints a Markdown report (bench/report.py) and writes it into BENCHMARKS.md.

Environment: BENCH_SCALE (1.0), BENCH_DURATION (seconds per endpoint and version, split over the
rounds; 10), BENCH_CONNECTIONS (4), BENCH_LIFECYCLES (40 per version), BENCH_BASELINE (a commit;
unset: no "before"), BENCH_DB_PREFIX (atelier_bench), BENCH_PROFILE_N (requests per profile, 200;
0: no profiles), BENCH_PG (postgres://postgres@127.0.0.1:5432), BENCH_REDIS
(redis://127.0.0.1:6379/13), BENCH_OUTPUT (BENCHMARKS.md; "-" prints only).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402 (run as a script: ROOT first)
from bench.dataset import (  # noqa: E402
    DATA_VERSION,
    HEAVY_MESSAGES,
    PAGE_MESSAGES,
    fill_change_stamps,
    load,
    log,
    make_id,
    sizes,
)
from bench.lifecycle import lifecycle, summarize, wallet_session  # noqa: E402

SCALE = float(os.environ.get("BENCH_SCALE", "1.0"))
DURATION = int(os.environ.get("BENCH_DURATION", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "4"))
LIFECYCLES = int(os.environ.get("BENCH_LIFECYCLES", "40"))
BASELINE = os.environ.get("BENCH_BASELINE", "")
DB_PREFIX = os.environ.get("BENCH_DB_PREFIX", "atelier_bench")
PROFILE_N = int(os.environ.get("BENCH_PROFILE_N", "200"))
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/13")
OUTPUT = os.environ.get("BENCH_OUTPUT", str(ROOT / "BENCHMARKS.md"))
PYTHON = sys.executable
ROUNDS = 3  # interleaved rounds per endpoint; DURATION is split over them
ROUND_SECONDS = max(2, round(DURATION / ROUNDS))
COST_ROUNDS = 3  # the 1-connection cost tables
COST_SECONDS = max(2, DURATION // 3)
WRITES = ("accept", "deliver", "approve")  # the lifecycle's writes reported against the bare view
_RNG = random.Random()  # noqa: S311 - client addresses for the rate limiter, not security


def reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ip() -> str:
    return f"{_RNG.randint(11, 223)}.{_RNG.randint(0, 255)}.{_RNG.randint(0, 255)}.{_RNG.randint(1, 254)}"


# --- data (generated and copied by bench/dataset.py) ---------------------------------------------


def prepare_database(scale: float) -> tuple[str, dict[str, Any]]:
    """The database for `scale`, migrated and loaded (or reused); its URL and its bench_meta."""
    import psycopg

    name = f"{DB_PREFIX}_{sizes(scale)['orders']}"
    url = f"{PG}/{name}"
    meta = _loaded(url, name)
    if meta is not None:
        log(f"{name}: reusing the data loaded earlier (loaded in {meta['load_seconds']} s); migrating")
        _migrate(url)  # migrations added since the load (the old code's inserts get the db_defaults)
        with psycopg.connect(url) as db, db.cursor() as cursor:
            updated = fill_change_stamps(cursor)
        if updated:
            log(f"{name}: change_stamp brought up to date on {updated} orders")
        meta["reused"] = True
        return url, meta
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    log(f"{name}: migrating")
    _migrate(url)
    log(f"{name}: loading {sizes(scale)}")
    meta = load(url, scale)
    with psycopg.connect(url) as db:
        db.execute("CREATE TABLE bench_meta (key text PRIMARY KEY, value jsonb NOT NULL)")
        db.execute("INSERT INTO bench_meta VALUES ('data', %s)", [json.dumps(meta)])
    log(f"{name}: loaded in {meta['load_seconds']} s")
    meta["reused"] = False
    return url, meta


def _loaded(url: str, name: str) -> dict[str, Any] | None:
    """The bench_meta of a complete load of this DATA_VERSION in database `name`, or None."""
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return None
    with psycopg.connect(url) as db:
        has_table = db.execute("SELECT to_regclass('bench_meta')").fetchone()
        if not (has_table and has_table[0]):
            return None
        row = db.execute("SELECT value FROM bench_meta WHERE key = 'data'").fetchone()
        count = db.execute("SELECT count(*) FROM orders_order WHERE payment_reference LIKE '%%bench'").fetchone()
    if row and count and count[0] == row[0]["sizes"]["orders"] and row[0].get("version") == DATA_VERSION:
        meta: dict[str, Any] = row[0]
        return meta
    return None


def _migrate(url: str) -> None:
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    subprocess.run(  # noqa: S603 - our own manage.py, fixed arguments
        [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )


def bench_meta(url: str) -> dict[str, Any]:
    """What `prepare_database` recorded about a loaded database (its ids and sizes)."""
    import psycopg

    with psycopg.connect(url) as db:
        row = db.execute("SELECT value FROM bench_meta WHERE key = 'data'").fetchone()
    if row is None:
        raise RuntimeError(f"{url} has no bench data: run make bench first")
    meta: dict[str, Any] = row[0]
    return meta


def credentials(url: str, meta: dict[str, Any]) -> dict[str, str]:
    """Fresh credentials for this run: the hot agent's API key, the hot buyer's wallet session
    token and a browser session (Django session with buyer_wallet/buyer_chain)."""
    import psycopg
    from django.contrib.sessions.backends.db import SessionStore

    now = dt.datetime.now(dt.UTC)
    ms = int(now.timestamp() * 1000)
    out = {}
    with psycopg.connect(url) as db:
        for name, agent_id in (("agent_key", meta["hot_agent"]), ("lifecycle_agent_key", meta["lifecycle_agent"])):
            prefix = secrets.token_hex(6)
            raw = f"atelier_{prefix}_{secrets.token_urlsafe(32)}"
            db.execute(
                "INSERT INTO agents_apikey (id, agent_id, prefix, key_hash, label, created_at) VALUES (%s, %s, %s, %s, 'bench', %s)",
                [make_id("key", ms), agent_id, prefix, hashlib.sha256(raw.encode()).hexdigest(), now],
            )
            out[name] = raw
        out["buyer_token"] = wallet_session(db, meta["hot_buyer"])
        session_key = secrets.token_hex(16)
        data = SessionStore().encode({"buyer_wallet": meta["hot_buyer"], "buyer_chain": "solana"})
        db.execute(
            "INSERT INTO django_session (session_key, session_data, expire_date) VALUES (%s, %s, %s)",
            [session_key, data, now + dt.timedelta(days=1)],
        )
        out["session_key"] = session_key
    return out


# --- code versions and servers -------------------------------------------------------------------


@contextlib.contextmanager
def checkout(commit: str) -> Iterator[Path]:
    """`commit` checked out into a temporary git worktree, removed afterwards (also on failure)."""
    parent = Path(tempfile.mkdtemp(prefix="atelier-bench-baseline-"))
    path = parent / "src"
    try:
        added = subprocess.run(  # noqa: S603 - git with fixed arguments
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit],  # noqa: S607
            check=False,
            capture_output=True,
            text=True,
        )
        if added.returncode != 0:
            raise RuntimeError(f"git worktree add {commit}: {added.stderr.strip()}")
        yield path
    finally:
        subprocess.run(  # noqa: S603
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],  # noqa: S607
            check=False,
            capture_output=True,
        )
        shutil.rmtree(parent, ignore_errors=True)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], check=False, capture_output=True)  # noqa: S603, S607


def _is_commit(ref: str) -> bool:
    found = subprocess.run(  # noqa: S603
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],  # noqa: S607
        capture_output=True,
        check=False,
    )
    return found.returncode == 0


def describe(root: Path) -> str:
    """`<short hash> <subject>` of the checkout at `root`, and whether tracked files differ from it
    (BENCHMARKS.md aside: the bench writes it)."""
    show = subprocess.run(  # noqa: S603
        ["git", "-C", str(root), "log", "-1", "--format=%h %s"],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    )
    dirty = subprocess.run(  # noqa: S603
        ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", ".", ":!BENCHMARKS.md"],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return show.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


def next_redis_database(url: str) -> str:
    """The baseline's cache: the Redis database after BENCH_REDIS's, so neither reads the other's keys."""
    parsed = urlparse(url)
    number = parsed.path.strip("/")
    return parsed._replace(path=f"/{int(number) + 1}").geturl() if number.isdigit() else url


class Server:
    def __init__(
        self, database_url: str, data_dir: str, extra_env: dict[str, str], *, root: Path = ROOT, cache: str = REDIS
    ) -> None:
        self.port = free_port()
        self.root = root
        self.env = {
            **os.environ,
            # Persistent connections, as a production DATABASE_URL should have them (django-environ
            # reads these from the query string): a new PostgreSQL connection costs ~10 ms.
            "DATABASE_URL": database_url + "?conn_max_age=60&conn_health_checks=true",
            "CACHE_URL": cache,
            "DEBUG": "false",
            "TRUSTED_PROXY_COUNT": "1",
            "ATELIER_BENCH": "1",
            "LOG_LEVEL": "WARNING",
            "ATELIER_DATA_DIR": data_dir,
            # No collectstatic here: the plain storage (with the manifest, every {% static %} needs
            # a collected file; whitenoise's lookup costs the same either way).
            "STATIC_MANIFEST": "false",
            **extra_env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        command = [PYTHON, "-m", "gunicorn", "atelier.wsgi:application", "--workers", "2", "--worker-class", "sync"]
        command += ["--bind", f"127.0.0.1:{self.port}", "--log-level", "warning", "--timeout", "60"]
        self.process = subprocess.Popen(command, cwd=self.root, env=self.env)  # noqa: S603 - fixed arguments
        import requests

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn in {self.root} exited with {self.process.returncode}")
            try:
                if requests.get(f"{self.base}/bench/bare", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.__exit__()
        raise RuntimeError("gunicorn did not answer /bench/bare within 60 s")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def fetch(self, path: str, headers: dict[str, str]) -> str:
        """A page as a browser gets it (no redirect followed: only a 200 will do)."""
        import requests

        response = requests.get(
            self.base + path, headers={**headers, "X-Forwarded-For": _ip()}, allow_redirects=False, timeout=30
        )
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}: {response.text[:300]}")
        return response.text


@dataclass
class Version:
    """One code version under test: "before" (BENCH_BASELINE) or "after" (this checkout)."""

    key: str
    describe: str
    server: Server
    spec: dict[str, dict[str, Any]]


LUA = """
local method, path, body = %(method)s, %(path)s, %(body)s
local paths = %(paths)s
local base_headers = %(headers)s
local thread_id = 0
function setup(thread) thread:set("id", thread_id); thread_id = thread_id + 1 end
function init(args) math.randomseed(os.time() * 1000 + id * 7919 + math.floor(os.clock() * 1e6)) end
request = function()
  local headers = {}
  for k, v in pairs(base_headers) do headers[k] = v end
  headers["X-Forwarded-For"] = math.random(11, 223) .. "." .. math.random(0, 255) .. "." .. math.random(0, 255) .. "." .. math.random(1, 254)
  local p = path
  if #paths > 0 then p = paths[math.random(#paths)] end
  return wrk.format(method, p, headers, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCHJSON {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "mean_us": %%.1f, "errors": %%d, "status_errors": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.mean,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal for ASCII


def wrk(
    server: Server,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: str | None = None,
    paths: list[str] | None = None,
    connections: int = CONNECTIONS,
    duration: int = DURATION,
) -> dict[str, Any]:
    headers = dict(headers or {})
    if body is not None:
        headers["Content-Type"] = "application/json"
    script = LUA % {
        "method": _lua_string(method),
        "path": _lua_string(path),
        "body": _lua_string(body) if body is not None else "nil",
        "paths": "{" + ", ".join(_lua_string(p) for p in paths or []) + "}",
        "headers": "{" + ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()) + "}",
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", handle.name]
        result = subprocess.run(  # noqa: S603 - wrk with our own script
            [*command, server.base + path], capture_output=True, text=True, check=True
        )
    finally:
        os.unlink(handle.name)
    line = next(line for line in result.stdout.splitlines() if line.startswith("BENCHJSON "))
    stats: dict[str, Any] = json.loads(line.removeprefix("BENCHJSON "))
    stats["rps"] = stats["requests"] / (stats["duration_us"] / 1e6)
    stats["p50_ms"] = stats["p50_us"] / 1000
    stats["p99_ms"] = stats["p99_us"] / 1000
    stats["connections"] = connections
    if stats["status_errors"] or stats["errors"]:
        log(f"  WARNING {method} {path}: {stats['status_errors']} answers >= 400, {stats['errors']} socket errors")
    return stats


def measure(server: Server, item: dict[str, Any], *, duration: int, connections: int | None = None) -> dict[str, Any]:
    """wrk on one endpoint of the spec (at the item's own connection count unless told)."""
    kwargs = {k: item[k] for k in ("method", "headers", "body", "paths") if k in item}
    conns = connections or item.get("connections", CONNECTIONS)
    return wrk(server, item["path"], connections=conns, duration=duration, **kwargs)


def check(server: Server, item: dict[str, Any]) -> int:
    """One request first: the benchmark measures only endpoints that answer 2xx. Returns the status."""
    import requests

    method, path = item.get("method", "GET"), item["path"]
    response = requests.request(
        method,
        server.base + path,
        headers={**item.get("headers", {}), "X-Forwarded-For": _ip(), "Content-Type": "application/json"},
        data=item.get("body"),
        allow_redirects=False,
        timeout=10,
    )
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text[:300]}")
    return response.status_code


def endpoints(meta: dict[str, Any], creds: dict[str, str]) -> dict[str, dict[str, Any]]:
    """What the benchmark asks, by name. The page polls have `poller_of` (the page whose poller they
    are) instead of a path until `resolve_pollers` fills it in."""
    agent = {"Authorization": f"Bearer {creds['agent_key']}"}
    buyer = {"Authorization": f"Bearer {creds['buyer_token']}"}
    browser = {"Cookie": f"sessionid={creds['session_key']}"}
    htmx = {**browser, "HX-Request": "true", "HX-Trigger": "poller", "HX-Target": "poller"}  # as htmx polls
    heavy = f"{meta['heavy_messages']:,}"
    page = {
        "path": f"/orders/{meta['page_order']}/",
        "headers": browser,
        "label": f"order page render `GET /orders/{{id}}/` ({PAGE_MESSAGES} messages; the page shows the latest 50)",
    }
    return {
        "bare": {"path": "/bench/bare", "label": "bare Django JSON view (baseline)"},
        "poll": {
            "path": f"/api/agents/{meta['hot_agent']}/orders?status=paid,in_progress",
            "headers": agent,
            "label": "agent poll `GET /api/agents/{id}/orders?status=paid,in_progress`",
        },
        "order_get": {
            "path": f"/api/orders/{meta['get_order']}",
            "headers": buyer,
            "label": "order GET by the buyer `GET /api/orders/{id}`",
        },
        "message_post": {
            "path": f"/api/orders/{meta['message_orders'][0]}/messages",
            "paths": [f"/api/orders/{order}/messages" for order in meta["message_orders"]],
            "method": "POST",
            "headers": buyer,
            "body": json.dumps({"content": "Thanks, the second draft is close. Could the icon be a bit larger?"}),
            "label": "message POST by the buyer `POST /api/orders/{id}/messages`",
        },
        "page": page,
        "page_c1": {**page, "connections": 1, "label": "order page, 1 connection (server time)"},
        "page_poll": {
            "poller_of": page["path"],
            "headers": htmx,
            "label": "order page poll, nothing changed `GET /orders/{id}/poll?…` (an open tab, every 3 s)",
        },
        "solana_pay_poll": {
            "poller_of": f"/orders/{meta['solana_order']}/",
            "headers": htmx,
            "label": "order page poll, accepted order with a Solana Pay QR (looks for the transfer, throttled)",
        },
        "page_heavy": {
            "path": f"/orders/{meta['heavy_order']}/",
            "headers": browser,
            "label": f"order page render, {heavy} messages",
        },
        "page_poll_heavy": {
            "poller_of": f"/orders/{meta['heavy_order']}/",
            "headers": htmx,
            "label": f"order page poll, nothing changed, {heavy} messages",
        },
    }


class _Poller(HTMLParser):
    """The `hx-get` of the element with id="poller" (attribute values come unescaped)."""

    def __init__(self) -> None:
        super().__init__()
        self.url: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if self.url is None and values.get("id") == "poller":
            self.url = values.get("hx-get")


def resolve_pollers(
    spec: dict[str, dict[str, Any]], fetch: Callable[[str, dict[str, str]], str]
) -> dict[str, dict[str, Any]]:
    """The spec with each page poll's path: the poller's URL on its page, as `fetch` gets the page
    (a browser: GET with the session cookie). Old code and new may give different URLs."""
    out = {}
    for name, item in spec.items():
        if "poller_of" in item:
            parser = _Poller()
            page_headers = {k: v for k, v in item.get("headers", {}).items() if not k.startswith("HX-")}
            parser.feed(fetch(item["poller_of"], page_headers))
            if not parser.url:
                raise RuntimeError(f"{item['poller_of']} has no element with id=poller and an hx-get")
            item = {**item, "path": parser.url}
        out[name] = item
    return out


# The endpoints wrk measures, in this order (the bare view runs in each of their rounds).
MAIN = (
    "poll",
    "order_get",
    "message_post",
    "page",
    "page_c1",
    "page_poll",
    "solana_pay_poll",
    "page_heavy",
    "page_poll_heavy",
)


def compare(versions: list[Version], names: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each endpoint, ROUNDS rounds: per version the bare view then the endpoint, the versions'
    order alternating between rounds. Per version and endpoint: the medians of the rounds and the
    median of the per-round ratio to the bare view; and the status each endpoint answered first."""
    results: dict[str, dict[str, Any]] = {v.key: {} for v in versions}
    statuses: dict[str, dict[str, int]] = {v.key: {} for v in versions}
    bares: dict[str, list[dict[str, Any]]] = {v.key: [] for v in versions}
    for v in versions:
        statuses[v.key]["bare"] = check(v.server, v.spec["bare"])
        measure(v.server, v.spec["bare"], duration=1)  # warm-up (unreported)
    for name in names:
        for v in versions:
            statuses[v.key][name] = check(v.server, v.spec[name])
            measure(v.server, v.spec[name], duration=1)
        rounds: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {v.key: [] for v in versions}
        for index in range(ROUNDS):
            for v in versions if index % 2 == 0 else versions[::-1]:
                item = v.spec[name]
                bare = measure(v.server, v.spec["bare"], duration=ROUND_SECONDS, connections=item.get("connections"))
                rounds[v.key].append((bare, measure(v.server, item, duration=ROUND_SECONDS)))
        for v in versions:
            results[v.key][name] = summary = _rounds(rounds[v.key])
            if name != "page_c1":  # the 4-connection bare rounds make the bare view's row
                bares[v.key] += [bare for bare, _stats in rounds[v.key]]
            log(
                f"  {v.key} {name}: {summary['rps']:.0f} req/s ({summary['vs_bare']:.1%} of bare), "
                f"p50 {summary['p50_ms']:.1f} ms, p99 {summary['p99_ms']:.1f} ms"
            )
    for v in versions:
        results[v.key] = {"bare": _rounds([(b, b) for b in bares[v.key]]), **results[v.key]}
    return results, statuses


def _rounds(rounds: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    return {
        "rps": statistics.median(s["rps"] for _b, s in rounds),
        "p50_ms": statistics.median(s["p50_ms"] for _b, s in rounds),
        "p99_ms": statistics.median(s["p99_ms"] for _b, s in rounds),
        "vs_bare": statistics.median(s["rps"] / b["rps"] for b, s in rounds),
        "bare_rps": [round(b["rps"]) for b, _s in rounds],
        "rounds_rps": [round(s["rps"]) for _b, s in rounds],
        "errors": sum(s["status_errors"] + s["errors"] for _b, s in rounds),
    }


def cost_rounds(cells: dict[str, tuple[Server, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Each cell (a server and an endpoint) at 1 connection (no queueing: latency = the server's
    cost) for COST_ROUNDS interleaved rounds, the order reversed every other round, so that the
    machine's drift hits all cells alike. Per cell: the median of the rounds' p50 latencies."""
    samples: dict[str, list[dict[str, Any]]] = {key: [] for key in cells}
    for server, item in cells.values():
        check(server, item)
    for index in range(COST_ROUNDS):
        keys = list(cells) if index % 2 == 0 else list(cells)[::-1]
        for key in keys:
            server, item = cells[key]
            samples[key].append(measure(server, item, duration=COST_SECONDS, connections=1))
        log(f"  cost round {index + 1}/{COST_ROUNDS} done")
    return {
        key: {
            "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "rps": statistics.median(r["rps"] for r in runs),
            "rounds": [round(r["p50_ms"], 1) for r in runs],
        }
        for key, runs in samples.items()
    }


def lifecycles(versions: list[Version], url: str, meta: dict[str, Any], creds: dict[str, str], solana: str) -> Any:
    """LIFECYCLES per version, in rounds of half of them: before, after, after, before."""
    order = versions + versions[::-1] if len(versions) > 1 else versions * 2
    rounds: dict[str, list[dict[str, Any]]] = {v.key: [] for v in versions}
    for v in order:
        rounds[v.key].append(lifecycle(v.server.base, url, meta, creds, solana, max(2, LIFECYCLES // 2)))
    out = {key: summarize(runs) for key, runs in rounds.items()}
    for key, cycle in out.items():
        log(f"  {key} lifecycles: {cycle['completed']} in {cycle['wall']:.1f} s, {len(cycle['failures'])} failed")
    return out


def profiles(spec: dict[str, dict[str, Any]], names: list[str], env: dict[str, str]) -> dict[str, Any]:
    """bench/profiles.py on each endpoint (this checkout's code, in its own process), or the error."""
    with tempfile.TemporaryDirectory(prefix="atelier-bench-profiles-") as tmp:
        spec_file, out_file = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_file.write_text(json.dumps({name: spec[name] for name in names}))
        command = [PYTHON, "bench/profiles.py", "--spec", str(spec_file), "--out", str(out_file), "-n", str(PROFILE_N)]
        try:
            subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=900)  # noqa: S603 - our own script
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            log(f"  WARNING profiles failed: {error}")
            return {"error": str(error)}
        result: dict[str, Any] = json.loads(out_file.read_text())
        return result


# --- main -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def devchain(data_dir: str) -> Iterator[dict[str, str]]:
    """The Solana and EVM devchains (this checkout's `manage.py devchain`); the servers' chain env."""
    solana_port, evm_port = free_port(), free_port()
    chain_env = {
        "CHAIN_MODE": "local",
        "DEVCHAIN_STATE": f"{data_dir}/devchain.json",
        "SOLANA_RPC_URL": f"http://127.0.0.1:{solana_port}",
        "BASE_RPC_URL": f"http://127.0.0.1:{evm_port}",
    }
    process = subprocess.Popen(  # noqa: S603 - our own manage.py, fixed arguments
        [PYTHON, "manage.py", "devchain", "--solana-port", str(solana_port), "--evm-port", str(evm_port)],
        cwd=ROOT,
        env={**os.environ, **chain_env, "ATELIER_DATA_DIR": data_dir},
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not Path(chain_env["DEVCHAIN_STATE"]).exists():
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the devchain did not start")
            time.sleep(0.3)
        yield chain_env
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> int:
    missing = []
    if not reachable(PG, 5432):
        missing.append(f"PostgreSQL ({PG})")
    if not reachable(REDIS, 6379):
        missing.append(f"Redis ({REDIS})")
    if shutil.which("wrk") is None:
        missing.append("wrk (apt-get install wrk)")
    if missing:
        print(f"make bench: skipped, not available: {', '.join(missing)}.")
        return 0
    if BASELINE and not _is_commit(BASELINE):
        print(f"make bench: BENCH_BASELINE={BASELINE} is not a commit of this repository.")
        return 2
    # A terminated run still stops its servers and removes the baseline's worktree (the `finally`s).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    machine_before = report.machine()
    command = " ".join(
        [
            f"{k}={os.environ[k]}"
            for k in ("BENCH_SCALE", "BENCH_DURATION", "BENCH_CONNECTIONS", "BENCH_BASELINE")
            if k in os.environ
        ]
        + ["make bench"]
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atelier.settings")
    # Benchmarks run with DEBUG off and the local chains: their own throwaway key, the chains asked for.
    os.environ.setdefault("SECRET_KEY", "bench-only-" + secrets.token_hex(24))
    os.environ.setdefault("CHAIN_MODE", "local")
    os.environ.setdefault("ALLOW_LOCAL_CHAIN", "true")
    os.environ["DATABASE_URL"] = f"{PG}/postgres"  # this process only encodes sessions and imports models
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    small_url, small_meta = prepare_database(SCALE / 100)
    big_url, big_meta = prepare_database(SCALE)
    log(f"big: {report.sizes_text(big_meta)}; small: {report.sizes_text(small_meta)}")
    with contextlib.ExitStack() as stack:
        data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="atelier-bench-"))
        baseline = stack.enter_context(checkout(BASELINE)) if BASELINE else None
        chain_env = stack.enter_context(devchain(data_dir))
        small_creds, big_creds = credentials(small_url, small_meta), credentials(big_url, big_meta)
        with contextlib.ExitStack() as servers:
            versions = []
            if baseline is not None:
                old = servers.enter_context(
                    Server(big_url, data_dir, chain_env, root=baseline, cache=next_redis_database(REDIS))
                )
                spec = resolve_pollers(endpoints(big_meta, big_creds), old.fetch)
                versions.append(Version("before", describe(baseline), old, spec))
            new = servers.enter_context(Server(big_url, data_dir, chain_env))
            versions.append(
                Version("after", describe(ROOT), new, resolve_pollers(endpoints(big_meta, big_creds), new.fetch))
            )
            small = servers.enter_context(Server(small_url, data_dir, chain_env))
            small_spec = resolve_pollers(endpoints(small_meta, small_creds), small.fetch)
            for v in versions:
                log(f"{v.key}: {v.describe}; page poll at {v.spec['page_poll']['path']}")
            results, statuses = compare(versions, MAIN)
            new_spec = versions[-1].spec
            log("  cost: 1k against 100k orders")
            flat = cost_rounds(
                {
                    f"{size} {name}": (server, spec[name])
                    for name in report.FLAT
                    for size, server, spec in (("small", small, small_spec), ("big", new, new_spec))
                }
            )
            log(f"  cost: {PAGE_MESSAGES} against {HEAVY_MESSAGES:,} messages")
            heavy = cost_rounds(
                {
                    f"{size} {name}": (new, new_spec[name + suffix])
                    for name in report.HEAVY
                    for size, suffix in (("light", ""), ("heavy", "_heavy"))
                }
            )
            log("  lifecycle driver")
            cycles = lifecycles(versions, big_url, big_meta, big_creds, chain_env["SOLANA_RPC_URL"])
        profiled: dict[str, Any] = {}
        if PROFILE_N > 0:
            log(f"  cProfile, {PROFILE_N} requests per endpoint")
            env = {**os.environ, **chain_env, "DATABASE_URL": big_url, "ATELIER_DATA_DIR": data_dir}
            profiled = profiles(new_spec, ["bare", *[n for n in MAIN if n != "page_c1"]], env)
    run = {
        "command": command,
        "machine": machine_before,
        "load_after": report.machine()["load"],
        "config": {
            "redis": REDIS,
            "connections": CONNECTIONS,
            "rounds": ROUNDS,
            "round_seconds": ROUND_SECONDS,
            "cost_rounds": COST_ROUNDS,
            "cost_seconds": COST_SECONDS,
            "writes": WRITES,
        },
        "big": big_meta,
        "small": small_meta,
        "spec": new_spec,
        "versions": {v.key: v.describe for v in versions},
        "paths": {v.key: {n: v.spec[n]["path"] for n in ("page_poll", "solana_pay_poll")} for v in versions},
        "results": results,
        "statuses": statuses,
        "flat": flat,
        "heavy": heavy,
        "lifecycles": cycles,
        "profiles": profiled,
    }
    text = report.report(run)
    print()
    print(text)
    report.write(text, OUTPUT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
