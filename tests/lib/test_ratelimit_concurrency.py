"""Concurrent requests against a live server admit exactly the limit, on every supported cache.

A real server (gunicorn, two processes of 16 threads) set up with `migrate` alone, on the suite's
database: a WAL SQLite file when the suite runs on SQLite (the `make run` setup; the in-memory
test database cannot be shared with another process), the suite's own test database when it runs
on PostgreSQL. The counters live in the database (CACHE_URL's default) or in Redis (db 11).
Each test speaks as its own client address (TRUSTED_PROXY_COUNT=1), so one server serves them all.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import connection

from tests.lib.test_ratelimit import redis_available
from tests.lib.test_two_app_servers import free_port, wait_for_port

BASE_DIR = Path(__file__).resolve().parents[2]
REDIS_DB = 11

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

_clients = (f"198.51.100.{number}" for number in itertools.count(20))


@dataclass
class Server:
    url: str

    def call(self, method: str, path: str, *, client: str, **kwargs: Any) -> requests.Response:
        with requests.Session() as session:
            session.trust_env = False
            return session.request(
                method, self.url + path, headers={"X-Forwarded-For": client, **kwargs.pop("headers", {})}, **kwargs
            )


def _database_url(data: Path) -> str:
    if connection.vendor == "postgresql":
        db = connection.settings_dict
        password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
        return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return f"sqlite:///{data / 'atelier.sqlite3'}"


@pytest.fixture(scope="module", params=["database", "redis"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, django_db_setup: None
) -> Iterator[Server]:
    if request.param == "redis" and not redis_available():
        pytest.skip("no Redis on 127.0.0.1:6379 (start one: redis-server --daemonize yes)")
    data = tmp_path_factory.mktemp(f"concurrency-{request.param}")
    prefix = f"concurrency-{uuid.uuid4().hex}"
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith(("DJANGO_", "PYTEST_"))},
        "DATABASE_URL": _database_url(data),
        "TRUSTED_PROXY_COUNT": "1",
        "ATELIER_DATA_DIR": str(data),
        "DEVCHAIN_STATE": str(data / "devchain.json"),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "PUBLIC_URL": "http://127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("CACHE_URL", None)
    if request.param == "redis":
        env["CACHE_URL"] = f"redis://127.0.0.1:6379/{REDIS_DB}?key_prefix={prefix}"
    if connection.vendor == "sqlite":  # `migrate` alone: the suite's PostgreSQL database already is
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=BASE_DIR,
            env=env,
            check=True,
            timeout=300,
        )
    port = free_port()
    log = data / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 (our own gunicorn, fixed arguments)
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "atelier.wsgi:application",
                f"--bind=127.0.0.1:{port}",
                "--workers=2",
                "--threads=16",
                "--preload",
                "--timeout=60",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process, log)
        yield Server(f"http://127.0.0.1:{port}")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if request.param == "redis":
            import redis

            client = redis.Redis.from_url(f"redis://127.0.0.1:6379/{REDIS_DB}")
            for key in client.scan_iter(f"{prefix}:*"):
                client.delete(key)


def _at_once(count: int, call: Any) -> list[requests.Response]:
    barrier = threading.Barrier(count)

    def one(number: int) -> requests.Response:
        barrier.wait(timeout=30)
        return call(number)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def _registration(name: str) -> dict[str, str]:
    return {"name": name, "description": "Makes things.", "payout_chain": "solana"}


def test_25_concurrent_registrations_admit_exactly_5(server):
    client = next(_clients)

    responses = _at_once(
        25, lambda number: server.call("POST", "/api/agents/register", client=client, json=_registration(f"A{number}"))
    )

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * 5 + [429] * 20, [r.text for r in responses if r.status_code not in (201, 429)]
    assert sorted(int(r.headers["X-RateLimit-Remaining"]) for r in responses if r.status_code == 201) == [0, 1, 2, 3, 4]


def test_40_concurrent_polls_admit_exactly_30_each_counted_once(server):
    client = next(_clients)
    agent = server.call("POST", "/api/agents/register", client=next(_clients), json=_registration("Poller")).json()
    auth = {"Authorization": f"Bearer {agent['data']['api_key']}"}
    path = f"/api/agents/{agent['data']['agent']['id']}/orders"

    responses = _at_once(40, lambda _: server.call("GET", path, client=client, headers=auth))

    admitted = [response for response in responses if response.status_code == 200]
    assert len(admitted) == 30, sorted(response.status_code for response in responses)
    assert all(response.status_code == 429 for response in responses if response not in admitted)
    # Each admitted request saw its own count: no two read the same value.
    assert sorted(int(response.headers["X-RateLimit-Remaining"]) for response in admitted) == list(range(30))


def test_70_concurrent_sign_in_nonces_admit_exactly_60(server):
    client = next(_clients)
    wallet = "So11111111111111111111111111111111111111112"

    responses = _at_once(
        70,
        lambda _: server.call("POST", "/api/auth/nonce", client=client, json={"chain": "solana", "wallet": wallet}),
    )

    statuses = [response.status_code for response in responses]
    assert statuses.count(429) == 10, sorted(statuses)
    # One wallet from one address: the per-wallet limit (60) refuses; the per-IP one (600) is far off.
    assert all(
        response.headers.get("X-RateLimit-Limit") == "60" for response in responses if response.status_code == 429
    )
