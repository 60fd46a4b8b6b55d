"""`make bench`: Atelier under gunicorn (2 workers) on PostgreSQL and Redis, driven by wrk.

    .venv/bin/python bench/run.py                  # full scale: 1,000 agents ... 1,000,000 messages
    BENCH_SCALE=0.01 BENCH_DURATION=3 .venv/bin/python bench/run.py   # a quick run

What it does:
1. Skips (exit 0) when PostgreSQL (127.0.0.1:5432, user postgres) or Redis (127.0.0.1:6379) or
   wrk is missing.
2. Databases `atelier_bench_<orders>`: one at BENCH_SCALE (100,000 orders at 1.0) and one at a
   hundredth of it (1,000 orders), each migrated and loaded with COPY once (bench/dataset.py); a
   `bench_meta` row marks a finished load (and its load time), so later runs reuse the data.
3. For each database: gunicorn (2 sync workers, DEBUG off, CACHE_URL=redis://.../13,
   TRUSTED_PROXY_COUNT=1, ATELIER_BENCH=1 for GET /bench/bare), then wrk per endpoint. Every wrk
   request carries a random X-Forwarded-For, so each request is its own client for the rate
   limiter (which still runs, on Redis) and the per-IP limits never stop the run.
4. A full lifecycle driver (create, accept, pay with a real USDC transfer on a Solana devchain,
   start, deliver, approve) in Python threads: lifecycles per second and per-step latency.
5. Prints a Markdown table and writes it to BENCHMARKS.md.

Environment: BENCH_SCALE (1.0), BENCH_DURATION (seconds per endpoint, 10), BENCH_CONNECTIONS (4),
BENCH_LIFECYCLES (40), BENCH_PG (postgres://postgres@127.0.0.1:5432), BENCH_REDIS
(redis://127.0.0.1:6379/13), BENCH_OUTPUT (BENCHMARKS.md; "-" prints only).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dataset import DATA_VERSION, PAGE_MESSAGES, load, log, make_id, sizes  # noqa: E402 (run as a script: ROOT first)

SCALE = float(os.environ.get("BENCH_SCALE", "1.0"))
DURATION = int(os.environ.get("BENCH_DURATION", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "4"))
LIFECYCLES = int(os.environ.get("BENCH_LIFECYCLES", "40"))
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/13")
OUTPUT = os.environ.get("BENCH_OUTPUT", str(ROOT / "BENCHMARKS.md"))
PYTHON = sys.executable
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


# --- data (generated and copied by bench/dataset.py) ---------------------------------------------


def prepare_database(scale: float) -> tuple[str, dict[str, Any]]:
    """The database for `scale`, migrated and loaded (or reused); its URL and its bench_meta."""
    import psycopg

    name = f"atelier_bench_{sizes(scale)['orders']}"
    url = f"{PG}/{name}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        meta = None
        if exists:
            with psycopg.connect(url) as db:
                has_table = db.execute("SELECT to_regclass('bench_meta')").fetchone()
                if has_table and has_table[0]:
                    row = db.execute("SELECT value FROM bench_meta WHERE key = 'data'").fetchone()
                    count = db.execute(
                        "SELECT count(*) FROM orders_order WHERE payment_reference LIKE '%%bench'"
                    ).fetchone()
                    if (
                        row
                        and count
                        and count[0] == row[0]["sizes"]["orders"]
                        and row[0].get("version") == DATA_VERSION
                    ):
                        meta = row[0]
        if meta is not None:
            log(f"{name}: reusing the data loaded earlier (loaded in {meta['load_seconds']} s)")
            meta["reused"] = True
            return url, meta
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    log(f"{name}: migrating")
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    subprocess.run(  # noqa: S603 - our own manage.py, fixed arguments
        [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    log(f"{name}: loading {sizes(scale)}")
    meta = load(url, scale)
    with psycopg.connect(url) as db:
        db.execute("CREATE TABLE bench_meta (key text PRIMARY KEY, value jsonb NOT NULL)")
        db.execute("INSERT INTO bench_meta VALUES ('data', %s)", [json.dumps(meta)])
    log(f"{name}: loaded in {meta['load_seconds']} s")
    meta["reused"] = False
    return url, meta


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


def wallet_session(db: Any, wallet: str) -> str:
    """A wallet session row, as `payments.services.signin_complete` writes it after a signature."""
    now = dt.datetime.now(dt.UTC)
    token = "atws_" + secrets.token_urlsafe(32)
    db.execute(
        "INSERT INTO payments_walletsession (id, token_hash, wallet, chain, created_at, expires_at) VALUES (%s, %s, %s, 'solana', %s, %s)",
        [
            make_id("ses", int(now.timestamp() * 1000)),
            hashlib.sha256(token.encode()).hexdigest(),
            wallet,
            now,
            now + dt.timedelta(days=1),
        ],
    )
    return token


# --- server -------------------------------------------------------------------------------------


class Server:
    def __init__(self, database_url: str, data_dir: str, extra_env: dict[str, str]) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            # Persistent connections, as a production DATABASE_URL should have them (django-environ
            # reads these from the query string): a new PostgreSQL connection costs ~10 ms.
            "DATABASE_URL": database_url + "?conn_max_age=60&conn_health_checks=true",
            "CACHE_URL": REDIS,
            "DEBUG": "false",
            "TRUSTED_PROXY_COUNT": "1",
            "ATELIER_BENCH": "1",
            "LOG_LEVEL": "WARNING",
            "ATELIER_DATA_DIR": data_dir,
            **extra_env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        command = [PYTHON, "-m", "gunicorn", "atelier.wsgi:application", "--workers", "2", "--worker-class", "sync"]
        command += ["--bind", f"127.0.0.1:{self.port}", "--log-level", "warning", "--timeout", "60"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=self.env)  # noqa: S603 - fixed arguments
        import requests

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base}/bench/bare", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError("gunicorn did not answer /bench/bare within 60 s")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)


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
    stats = json.loads(line.removeprefix("BENCHJSON "))
    stats["rps"] = stats["requests"] / (stats["duration_us"] / 1e6)
    stats["p50_ms"] = stats["p50_us"] / 1000
    stats["p99_ms"] = stats["p99_us"] / 1000
    stats["connections"] = connections
    if stats["status_errors"] or stats["errors"]:
        log(f"  WARNING {method} {path}: {stats['status_errors']} non-2xx/3xx, {stats['errors']} socket errors")
    return stats


def check(server: Server, method: str, path: str, headers: dict[str, str], body: str | None = None) -> None:
    """One request first: the benchmark measures only endpoints that answer 2xx."""
    import requests

    response = requests.request(
        method,
        server.base + path,
        headers={**headers, "X-Forwarded-For": "198.51.100.77", "Content-Type": "application/json"},
        data=body,
        timeout=10,
    )
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text[:300]}")


def endpoints(meta: dict[str, Any], creds: dict[str, str]) -> dict[str, dict[str, Any]]:
    agent = {"Authorization": f"Bearer {creds['agent_key']}"}
    buyer = {"Authorization": f"Bearer {creds['buyer_token']}"}
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
        "page": {
            "path": f"/orders/{meta['page_order']}/",
            "headers": {"Cookie": f"sessionid={creds['session_key']}"},
            "label": f"order page render `GET /orders/{{id}}/` ({PAGE_MESSAGES} messages; the page shows the latest 50)",
        },
    }


def run_wrk_set(server: Server, spec: dict[str, dict[str, Any]], names: list[str]) -> dict[str, dict[str, Any]]:
    results = {}
    for name in names:
        item = spec[name]
        kwargs = {k: item[k] for k in ("method", "headers", "body", "paths") if k in item}
        check(server, item.get("method", "GET"), item["path"], item.get("headers", {}), item.get("body"))
        wrk(server, item["path"], duration=2, **kwargs)  # warm up (unreported)
        results[name] = wrk(server, item["path"], **kwargs)
        stats = results[name]
        log(f"  {name}: {stats['rps']:.0f} req/s, p50 {stats['p50_ms']:.1f} ms, p99 {stats['p99_ms']:.1f} ms")
    return results


COST_ROUNDS = 3


def cost_flat(servers: dict[str, tuple[Server, dict[str, dict[str, Any]]]]) -> dict[str, dict[str, Any]]:
    """The poll and the order GET on both data sizes, both servers up, interleaved for COST_ROUNDS
    rounds at 1 connection (no queueing: latency = the server's cost), so that the machine's drift
    hits both sizes alike. The median of the rounds' p50 latencies per size and endpoint."""
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {size: {"poll": [], "order_get": []} for size in servers}
    for round_index in range(COST_ROUNDS):
        for size, (server, spec) in servers.items():
            for name in ("poll", "order_get"):
                item = spec[name]
                stats = wrk(
                    server, item["path"], headers=item["headers"], connections=1, duration=max(2, DURATION // 2)
                )
                samples[size][name].append(stats)
        log(f"  cost round {round_index + 1}/{COST_ROUNDS} done")
    out: dict[str, dict[str, Any]] = {}
    for size, by_name in samples.items():
        out[size] = {}
        for name, runs in by_name.items():
            out[size][name] = {
                "p50_ms": statistics.median(r["p50_ms"] for r in runs),
                "rps": statistics.median(r["rps"] for r in runs),
                "rounds": [round(r["p50_ms"], 1) for r in runs],
            }
    return out


# --- lifecycle ------------------------------------------------------------------------------------


def lifecycle(server: Server, url: str, meta: dict[str, Any], creds: dict[str, str], solana_url: str) -> dict[str, Any]:
    """Create to approve with a real USDC transfer on the Solana devchain, in 2 threads."""
    import psycopg
    import requests

    from payments.chains import PaymentInstructions
    from tests.payments import solana_helpers

    agent_headers = {"Authorization": f"Bearer {creds['lifecycle_agent_key']}"}
    steps: dict[str, list[float]] = {
        s: [] for s in ("create", "accept", "chain_transfer", "pay", "start", "deliver", "approve")
    }
    failures: list[str] = []
    lock = threading.Lock()
    per_thread = max(1, LIFECYCLES // 2)

    def ip() -> str:
        return f"{_RNG.randint(11, 223)}.{_RNG.randint(0, 255)}.{_RNG.randint(0, 255)}.{_RNG.randint(1, 254)}"

    def worker() -> None:
        session = requests.Session()
        buyer = solana_helpers.new_wallet(solana_url, usdc=10_000 * 10**6)
        with psycopg.connect(url) as db:
            token = wallet_session(db, str(buyer.pubkey()))
        buyer_headers = {"Authorization": f"Bearer {token}"}

        def call(step: str, method: str, path: str, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
            began = time.perf_counter()
            response = session.request(
                method, server.base + path, json=body, headers={**headers, "X-Forwarded-For": ip()}, timeout=30
            )
            elapsed = time.perf_counter() - began
            if response.status_code >= 300:
                raise RuntimeError(f"{step}: {response.status_code} {response.text[:200]}")
            with lock:
                steps[step].append(elapsed)
            data: dict[str, Any] = response.json()["data"]
            return data

        for _ in range(per_thread):
            try:
                order = call(
                    "create",
                    "POST",
                    "/api/orders",
                    buyer_headers,
                    {
                        "service_id": meta["lifecycle_service"],
                        "brief": "Three logo directions, transparent PNG.",
                        "payment_chain": "solana",
                    },
                )
                path = f"/api/orders/{order['id']}"
                if "accept" in order["allowed_actions"]:
                    order = call("accept", "PATCH", path, buyer_headers, {"action": "accept"})
                payment = order["payment"]
                instructions = PaymentInstructions(
                    chain="solana",
                    escrow_address=payment["escrow_address"],
                    token_account=payment["token_account"],
                    token=payment["token"],
                )
                began = time.perf_counter()
                tx = solana_helpers.pay_order(
                    solana_url, buyer, instructions, payment["amount_base_units"], payment["payment_reference"]
                )
                with lock:
                    steps["chain_transfer"].append(time.perf_counter() - began)
                call(
                    "pay",
                    "PATCH",
                    path,
                    buyer_headers,
                    {"action": "pay", "escrow_tx_hash": tx, "payment_chain": "solana"},
                )
                call("start", "POST", path + "/start", agent_headers, {})
                call(
                    "deliver",
                    "POST",
                    path + "/deliver",
                    agent_headers,
                    {"deliverable_url": "https://example.com/logos", "deliverable_media_type": "link"},
                )
                done = call("approve", "PATCH", path, buyer_headers, {"action": "approve"})
                if done["status"] != "completed":
                    raise RuntimeError(f"approve left the order {done['status']}")
            except Exception as error:  # counted and reported
                with lock:
                    failures.append(str(error))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    completed = len(steps["approve"])
    return {
        "completed": completed,
        "failures": failures,
        "wall": wall,
        "per_second": completed / wall if wall else 0.0,
        "steps": {name: _pct(values) for name, values in steps.items() if values},
    }


def _pct(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000,
    }


# --- report -------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return {
        "nproc": str(os.cpu_count()),
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "cpu": cpu,
        "load": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def report(
    big: dict[str, Any],
    small_meta: dict[str, Any],
    flat: dict[str, dict[str, Any]],
    cycle: dict[str, Any] | None,
    before: dict[str, str],
    after_load: str,
    command: str,
) -> str:
    res, bare = big["results"], big["results"]["bare"]
    lines = [
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: `{command}`",
        "",
        f"Machine: {before['nproc']} CPUs ({before['cpu']}), {before['memory']} memory. Load average (1, 5, 15 min) "
        f"before the run: {before['load']}; after: {after_load}.",
        f"Server: gunicorn, 2 sync workers, DEBUG off, PostgreSQL (local), rate limits on Redis "
        f"(`CACHE_URL={REDIS}`). Client: wrk, 1 thread, {CONNECTIONS} connections, {DURATION} s per "
        "endpoint after a 2 s warm-up, a random X-Forwarded-For per request (`TRUSTED_PROXY_COUNT=1`).",
        f"Data: {_sizes(big['meta'])} (loaded in {big['meta']['load_seconds']} s"
        f"{', reused from an earlier run' if big['meta'].get('reused') else ''}); the polled agent has "
        f"{big['meta']['hot_agent_orders']} orders; the busiest order has {big['meta']['max_messages_per_order']} messages.",
        "",
        "| endpoint | req/s | p50 ms | p99 ms | req/s vs bare | p50 vs bare | p99 vs bare | target |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    targets = {
        "poll": ("rps", 0.6, 50.0),
        "order_get": ("rps", 0.6, 50.0),
    }
    for name, stats in res.items():
        label = big["spec"][name]["label"] if name != "page_c1" else "order page, 1 connection (server time)"
        target = ""
        if name in targets:
            ok = stats["rps"] / bare["rps"] >= 0.6 and stats["p99_ms"] < 50
            target = f"≥ 60% of bare, p99 < 50 ms: {'**met**' if ok else '**missed**'}"
        if name == "page_c1":
            target = f"< 30 ms: {'**met**' if stats['p50_ms'] < 30 else '**missed**'} (p50)"
        lines.append(
            f"| {label} | {stats['rps']:.0f} | {stats['p50_ms']:.1f} | {stats['p99_ms']:.1f} | "
            f"{stats['rps'] / bare['rps']:.2f} | {stats['p50_ms'] / bare['p50_ms']:.2f} | {stats['p99_ms'] / bare['p99_ms']:.2f} | {target} |"
        )
    errors = {name: s["status_errors"] + s["errors"] for name, s in res.items() if s["status_errors"] or s["errors"]}
    if errors:
        lines.append("")
        lines.append(f"Non-2xx or socket errors during the run: {errors}.")
    lines += [
        "",
        f"Cost per request from {small_meta['sizes']['orders']:,} to {big['meta']['sizes']['orders']:,} orders "
        f"(both servers up, one wrk connection, {COST_ROUNDS} interleaved rounds of {max(2, DURATION // 2)} s per size; "
        "the median of the rounds' p50 latencies; target < 1.2):",
        "",
        f"| endpoint | p50 ms at {small_meta['sizes']['orders']:,} (rounds) | p50 ms at {big['meta']['sizes']['orders']:,} (rounds) | cost ratio | req/s small / big | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name in ("poll", "order_get"):
        s, b = flat["small"][name], flat["big"][name]
        ratio = b["p50_ms"] / s["p50_ms"]
        lines.append(
            f"| {name} | {s['p50_ms']:.1f} ({', '.join(map(str, s['rounds']))}) | {b['p50_ms']:.1f} ({', '.join(map(str, b['rounds']))}) | "
            f"{ratio:.2f} | {s['rps']:.0f} / {b['rps']:.0f} | {'**met**' if ratio < 1.2 else '**missed**'} |"
        )
    if cycle:
        lines += [
            "",
            f"Full lifecycle (create, accept when offered, USDC transfer on the Solana devchain, pay, start, deliver, approve), "
            f"2 client threads: {cycle['completed']} completed in {cycle['wall']:.1f} s = **{cycle['per_second']:.2f} lifecycles/s**"
            f"{f', {len(cycle["failures"])} failed: {cycle["failures"][:2]}' if cycle['failures'] else ''}.",
            "",
            "| step | n | p50 ms | p99 ms |",
            "|---|---:|---:|---:|",
        ]
        for name, stats in cycle["steps"].items():
            label = name + (" (client-side, the devchain)" if name == "chain_transfer" else "")
            lines.append(f"| {label} | {stats['n']} | {stats['p50_ms']:.1f} | {stats['p99_ms']:.1f} |")
    return "\n".join(lines) + "\n"


def _sizes(meta: dict[str, Any]) -> str:
    n = meta["sizes"]
    return f"{n['agents']:,} agents, {n['services']:,} services, {n['orders']:,} orders, {n['messages']:,} messages"


def write_report(text: str) -> None:
    if OUTPUT == "-":
        return
    path = Path(OUTPUT)
    marker_start, marker_end = "<!-- bench:results:start -->", "<!-- bench:results:end -->"
    block = f"{marker_start}\n{text}{marker_end}\n"
    if path.exists() and marker_start in path.read_text():
        current = path.read_text()
        head, rest = current.split(marker_start, 1)
        tail = rest.split(marker_end, 1)[1].lstrip("\n")
        path.write_text(head + block + ("\n" + tail if tail else ""))
    else:
        path.write_text(
            "# Benchmarks\n\nWritten by `make bench` (bench/run.py); notes below the results are kept between runs.\n\n"
            + block
        )
    log(f"results written to {path}")


# --- main -----------------------------------------------------------------------------------------


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
    before = machine()
    command = " ".join(
        [f"{k}={os.environ[k]}" for k in ("BENCH_SCALE", "BENCH_DURATION", "BENCH_CONNECTIONS") if k in os.environ]
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
    with tempfile.TemporaryDirectory(prefix="atelier-bench-") as data_dir:
        solana_port, evm_port = free_port(), free_port()
        chain_env = {
            "CHAIN_MODE": "local",
            "DEVCHAIN_STATE": f"{data_dir}/devchain.json",
            "SOLANA_RPC_URL": f"http://127.0.0.1:{solana_port}",
            "BASE_RPC_URL": f"http://127.0.0.1:{evm_port}",
        }
        devchain = subprocess.Popen(  # noqa: S603 - our own manage.py, fixed arguments
            [PYTHON, "manage.py", "devchain", "--solana-port", str(solana_port), "--evm-port", str(evm_port)],
            cwd=ROOT,
            env={**os.environ, **chain_env, "ATELIER_DATA_DIR": data_dir},
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while not Path(chain_env["DEVCHAIN_STATE"]).exists():
                if time.monotonic() > deadline or devchain.poll() is not None:
                    raise RuntimeError("the devchain did not start")
                time.sleep(0.3)
            small_creds, big_creds = credentials(small_url, small_meta), credentials(big_url, big_meta)
            small_spec, big_spec = endpoints(small_meta, small_creds), endpoints(big_meta, big_creds)
            log(f"big: {_sizes(big_meta)}; small: {_sizes(small_meta)}")
            with Server(big_url, data_dir, chain_env) as server, Server(small_url, data_dir, chain_env) as small_server:
                names = ["bare", "poll", "order_get", "message_post", "page"]
                results = run_wrk_set(server, big_spec, names)
                page = big_spec["page"]
                results["page_c1"] = wrk(server, page["path"], headers=page["headers"], connections=1)
                log(f"  page at 1 connection: p50 {results['page_c1']['p50_ms']:.1f} ms")
                flat = cost_flat({"small": (small_server, small_spec), "big": (server, big_spec)})
                log("  lifecycle driver")
                cycle = lifecycle(server, big_url, big_meta, big_creds, chain_env["SOLANA_RPC_URL"])
                log(f"  lifecycles: {cycle['completed']} in {cycle['wall']:.1f} s, {len(cycle['failures'])} failed")
            big = {"results": results, "meta": big_meta, "spec": big_spec}
        finally:
            devchain.terminate()
            devchain.wait(timeout=30)
    text = report(big, small_meta, flat, cycle, before, machine()["load"], command)
    print()
    print(text)
    write_report(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
