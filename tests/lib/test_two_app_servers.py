"""Two app servers (gunicorn, two workers each) sharing Redis and one database, behind a proxy.

What holds across processes, not just within one:
- the rate limit: 30 polls pass and the 31st from the same client is 429 whichever server
  answers, and a spoofed left-most X-Forwarded-For does not escape it (TRUSTED_PROXY_COUNT=1);
- Idempotency-Key: 8 concurrent POSTs with one key, spread over both servers, make one order.

The test plays the proxy: it connects from 127.0.0.1 and, as nginx's `proxy_add_x_forwarded_for`
does, appends the address its client connected from to whatever X-Forwarded-For the client sent.
The database is a WAL SQLite file (the `make run` setup), whatever DATABASE_URL the suite runs on.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.lib.test_ratelimit import redis_available

BASE_DIR = Path(__file__).resolve().parents[2]
REDIS_DB = 9

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"gunicorn did not listen on {port}:\n{log.read_text()[-3000:]}")


@dataclass
class Proxy:
    """Sends each request to one of the app servers, as a proxy in front of them would."""

    urls: list[str]

    def call(
        self, server: int, method: str, path: str, *, client: str, sent_forwarded: str = "", **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        # What the proxy appends: the address its client connected from.
        headers["X-Forwarded-For"] = f"{sent_forwarded}, {client}" if sent_forwarded else client
        with requests.Session() as session:  # one per call: the concurrent test calls from threads
            session.trust_env = False  # no HTTP(S)_PROXY from the environment: straight to loopback
            return session.request(
                method, self.urls[server] + path, headers=headers, timeout=30, allow_redirects=False, **kwargs
            )


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    if not redis_available():
        pytest.skip("no Redis on 127.0.0.1:6379 (start one: redis-server --daemonize yes)")
    if shutil.which("gunicorn", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("gunicorn is not installed (requirements-dev.txt)")
    data = tmp_path_factory.mktemp("two_servers")
    prefix = f"two-servers-{uuid.uuid4().hex}"
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith(("DJANGO_", "PYTEST_"))},
        "DATABASE_URL": f"sqlite:///{data / 'atelier.sqlite3'}",
        "CACHE_URL": f"redis://127.0.0.1:6379/{REDIS_DB}?key_prefix={prefix}",
        "TRUSTED_PROXY_COUNT": "1",
        "ATELIER_DATA_DIR": str(data),
        "DEVCHAIN_STATE": str(data / "devchain.json"),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "PUBLIC_URL": "http://127.0.0.1",
        "LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=BASE_DIR, env=env, check=True, timeout=300
    )
    processes: list[subprocess.Popen[bytes]] = []
    ports = [free_port(), free_port()]
    try:
        for number, port in enumerate(ports):
            with (data / f"gunicorn-{number}.log").open("wb") as out:
                processes.append(
                    subprocess.Popen(  # noqa: S603 (our own gunicorn, fixed arguments)
                        [
                            str(Path(sys.executable).parent / "gunicorn"),
                            "atelier.wsgi:application",
                            "--bind",
                            f"127.0.0.1:{port}",
                            "--workers",
                            "2",
                            "--preload",  # Django loaded once before the fork: listening means ready
                            "--timeout",
                            "60",
                        ],
                        cwd=BASE_DIR,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        for number, (port, process) in enumerate(zip(ports, processes, strict=True)):
            wait_for_port(port, process, data / f"gunicorn-{number}.log")
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        yield Proxy(urls)
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)  # gunicorn's quick shutdown (TERM waits for workers)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        import redis

        client = redis.Redis.from_url(f"redis://127.0.0.1:6379/{REDIS_DB}")
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)


def register(proxy: Proxy, server: int, client: str, name: str) -> dict[str, Any]:
    response = proxy.call(
        server,
        "POST",
        "/api/agents/register",
        client=client,
        json={"name": name, "description": "Makes things.", "payout_chain": "solana"},
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]


def list_service(proxy: Proxy, seller: dict[str, Any], client: str, **terms: str) -> str:
    """The seller lists a service through server 0; its id."""
    listed = proxy.call(
        0,
        "POST",
        f"/api/agents/{seller['agent']['id']}/services",
        client=client,
        headers={"Authorization": f"Bearer {seller['api_key']}"},
        json={
            "title": "Logo in three styles",
            "description": "Three logo directions for your brand, each as a large transparent PNG.",
            "category": "design",
            **terms,
        },
    )
    assert listed.status_code == 201, listed.text
    service_id: str = listed.json()["data"]["id"]
    return service_id


def test_the_31st_poll_is_429_whichever_server_answers_and_spoofing_does_not_help(proxy):
    client = "198.51.100.77"
    agent = register(proxy, 0, client, "Poller")
    auth = {"Authorization": f"Bearer {agent['api_key']}"}
    path = f"/api/agents/{agent['agent']['id']}/orders?status=paid,in_progress"

    remaining = []
    for number in range(30):
        # Alternate servers; the client writes a new fake address each time.
        response = proxy.call(
            number % 2, "GET", path, client=client, sent_forwarded=f"10.{number}.0.1, 203.0.113.{number}", headers=auth
        )
        assert response.status_code == 200, (number, response.text)
        remaining.append(int(response.headers["X-RateLimit-Remaining"]))
    # One counter, shared by both servers.
    assert remaining == list(range(29, -1, -1))

    for server in (0, 1):
        for spoof in ("", "1.2.3.4", "198.51.100.78", "2001:db8::1, 8.8.8.8"):
            limited = proxy.call(server, "GET", path, client=client, sent_forwarded=spoof, headers=auth)
            assert limited.status_code == 429, (server, spoof, limited.text)
            assert limited.json()["code"] == "rate_limited"
            assert 1 <= int(limited.headers["Retry-After"]) <= 2 * 3600
            assert limited.headers["X-RateLimit-Limit"] == "30"
            assert limited.headers["X-RateLimit-Remaining"] == "0"

    # The same agent from another address has its own 30 (the limit is per IP), on either server.
    for server in (0, 1):
        assert proxy.call(server, "GET", path, client="198.51.100.78", headers=auth).status_code == 200


def test_eight_concurrent_posts_with_one_key_on_two_servers_make_one_order(proxy):
    seller = register(proxy, 0, "198.51.100.80", "Seller")
    buyer = register(proxy, 1, "198.51.100.81", "Buyer agent")
    buyer_auth = {"Authorization": f"Bearer {buyer['api_key']}"}
    service_id = list_service(proxy, seller, "198.51.100.80", price_usd="25.00", price_type="fixed")
    body = {"service_id": service_id, "brief": "A fox in a lab coat, flat colours."}
    headers = {**buyer_auth, "Idempotency-Key": str(uuid.uuid4())}
    threads = 8
    barrier = threading.Barrier(threads)

    def post(number: int) -> requests.Response:
        barrier.wait(timeout=30)
        return proxy.call(number % 2, "POST", "/api/orders", client="198.51.100.81", headers=headers, json=body)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        responses = list(pool.map(post, range(threads)))

    assert [response.status_code for response in responses] == [201] * threads, [r.text for r in responses]
    assert len({response.json()["data"]["id"] for response in responses}) == 1
    assert sum(response.headers.get("Idempotent-Replayed") == "true" for response in responses) == threads - 1
    orders = proxy.call(0, "GET", "/api/orders", client="198.51.100.81", headers=buyer_auth).json()["data"]
    assert len(orders) == 1


def test_a_transition_through_one_server_is_what_the_other_reads_next(proxy):
    """The hot reads keep compiled SQL, prepared statements and a Redis client per process, never an
    order's state: each change made through one server is in the very next read through the other
    (the agent's poll and the order GET), back and forth."""
    seller = register(proxy, 0, "198.51.100.90", "Fast seller")
    buyer = register(proxy, 1, "198.51.100.91", "Fast buyer")
    seller_auth = {"Authorization": f"Bearer {seller['api_key']}"}
    buyer_auth = {"Authorization": f"Bearer {buyer['api_key']}"}
    service_id = list_service(proxy, seller, "198.51.100.90", price_usd="0.00", price_type="quote")
    poll = f"/api/agents/{seller['agent']['id']}/orders?status=pending_quote,quoted,accepted,cancelled"

    for round_number in range(3):
        writer, reader = round_number % 2, 1 - round_number % 2
        created = proxy.call(
            writer,
            "POST",
            "/api/orders",
            client="198.51.100.91",
            headers=buyer_auth,
            json={"service_id": service_id, "brief": f"Round {round_number}: a fox."},
        )
        assert created.status_code == 201, created.text
        order_id = created.json()["data"]["id"]
        steps = [
            (seller_auth, "198.51.100.90", "POST", f"/api/orders/{order_id}/quote", {"price_usd": "20.00"}, "quoted"),
            (buyer_auth, "198.51.100.91", "PATCH", f"/api/orders/{order_id}", {"action": "accept"}, "accepted"),
            (buyer_auth, "198.51.100.91", "PATCH", f"/api/orders/{order_id}", {"action": "cancel"}, "cancelled"),
        ]
        for auth, client, method, path, body, status in steps:
            moved = proxy.call(writer, method, path, client=client, headers=auth, json=body)
            assert moved.status_code == 200, moved.text
            read = proxy.call(reader, "GET", f"/api/orders/{order_id}", client="198.51.100.91", headers=buyer_auth)
            assert read.json()["data"]["status"] == status
            polled = proxy.call(reader, "GET", poll, client="198.51.100.90", headers=seller_auth).json()["data"]
            assert {order["id"]: order["status"] for order in polled}[order_id] == status
            writer, reader = reader, writer
