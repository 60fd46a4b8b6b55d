"""Fault tests: what breaks in production, broken on purpose, and what the order looks like after.

Each test ends with nothing lost, no money moved twice (on-chain balances, one payout per order,
ledger journals that sum to zero), and the order's events telling what happened:

- the chain RPC refused, dropped, or slower than CHAIN_RPC_TIMEOUT_SECONDS (a proxy in the test
  delays it) while the buyer pays: 503, the order unchanged; paying again once it is back works;
- the chain down or slow while the worker pays the agent out, including a send that timed out but
  landed anyway: the payout is confirmed once;
- the database connection dropped in the middle of a request (PostgreSQL: `pg_terminate_backend`
  from another connection, inside the transition; SQLite, whose test database lives in memory and
  cannot be cut off: the driver's error raised at the same point): a clean 500 in the envelope,
  nothing half-written, and the retry succeeds;
- a real `manage.py db_worker` killed with SIGKILL during a payout (right after signing, and right
  after sending) and restarted: the agent is paid exactly once on-chain (PostgreSQL only: the worker
  is another process and needs a database file it can share);
- a webhook receiver that hangs: the attempt times out and is retried; a real worker killed while it
  waits on one, then restarted: the delivery arrives (PostgreSQL only, as above);
- Redis, the rate limits' cache, refusing connections or hanging: requests pass, the error is logged.
"""

from __future__ import annotations

import io
import json
import logging
import os
import runpy
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from django.conf import settings as django_settings
from django.db import OperationalError, connection, connections
from django.db.models import Count, Sum
from django_tasks_db.models import DBTaskResult

from agents.models import Agent
from atelier.wsgi import application
from orders.models import Order, OrderEvent
from payments import binding
from payments import settlement as payment_settlement
from payments.models import LedgerEntry, OutgoingTransfer, Payment, TransferStatus
from payments.tasks import process_transfer
from tests.conftest import make_agent, make_buyer, make_order
from tests.payments.conftest import chains_up, devchains, reconciled  # noqa: F401  (fixtures)
from tests.payments.test_order_payments import (
    AGENT_SHARE,
    Base,
    Solana,
    balance,
    escrow,
    order_for,
    pay,
)

# Every test ends with the escrow on chain matching the ledger (payments.reconcile).
pytestmark = pytest.mark.usefixtures("reconciled")

BASE_DIR = Path(django_settings.BASE_DIR)
RPC_TIMEOUT = 0.5  # seconds; the proxy's "slow" is three times that
SEND_METHODS = {"sendTransaction", "eth_sendRawTransaction"}


# --- helpers -----------------------------------------------------------------------------------


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RpcProxy:
    """A JSON-RPC proxy in front of a devchain that can be slow (for every method or only some) or
    drop the connection without answering. A slow call is still forwarded, late: what a node that
    answers after the client gave up does."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.delay = 0.0
        self.slow_methods: set[str] | None = None  # None: every method
        self.drop = False
        self.late_forwards = 0
        self.forwarded_late = threading.Event()
        self.url = ""

    def _is_slow(self, methods: list[str]) -> bool:
        return self.delay > 0 and (self.slow_methods is None or bool(self.slow_methods.intersection(methods)))

    @contextmanager
    def running(self) -> Iterator[RpcProxy]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    parsed = json.loads(body)
                    methods = [call.get("method", "") for call in (parsed if isinstance(parsed, list) else [parsed])]
                except ValueError:
                    methods = []
                if proxy.drop:
                    self.close_connection = True  # hang up without a word
                    return
                slow = proxy._is_slow(methods)
                if slow:
                    time.sleep(proxy.delay)
                upstream = requests.post(
                    proxy.upstream + self.path, data=body, headers={"Content-Type": "application/json"}, timeout=30
                )
                if slow:
                    proxy.late_forwards += 1
                    proxy.forwarded_late.set()
                try:
                    self.send_response(upstream.status_code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(upstream.content)))
                    self.end_headers()
                    self.wfile.write(upstream.content)
                except OSError:
                    pass  # the client gave up long ago

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


def rpc_setting(chain: str) -> str:
    return "SOLANA_RPC_URL" if chain == "solana" else "BASE_RPC_URL"


def wsgi(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One request through Django's real WSGI handler, as a WSGI server makes it: unlike the test
    client, the handler's request_started/request_finished housekeeping runs, and that is what
    throws away a connection the database has dropped, so the next request gets a fresh one."""
    data = json.dumps(body).encode() if body is not None else b""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(data),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    started: list[str] = []

    def start_response(
        status: str, _headers: list[tuple[str, str]], exc_info: object = None
    ) -> Callable[[bytes], None]:
        started.append(status)
        return lambda _data: None

    result = application(environ, start_response)
    try:
        content = b"".join(result)
    finally:
        result.close()  # request_finished
    return int(started[0].split()[0]), json.loads(content)


def order_state(order_id: str) -> dict[str, Any]:
    """Everything a request on this order could have written."""
    order = Order.objects.get(pk=order_id)
    return {
        "order": (order.status, order.escrow_tx_hash, order.updated_at),
        "events": list(OrderEvent.objects.filter(order_id=order_id).order_by("id").values_list("action", "to_status")),
        "payments": list(Payment.objects.filter(order_id=order_id).values_list("tx_hash", "status")),
        "ledger": list(LedgerEntry.objects.filter(order_id=order_id).values_list("kind", "account", "amount")),
        "transfers": list(OutgoingTransfer.objects.filter(order_id=order_id).values_list("kind", "status")),
        "tasks": DBTaskResult.objects.count(),
        "completed_orders": Agent.objects.get(pk=order.agent_id).completed_orders,
    }


def actions(order_id: str) -> list[str]:
    return list(OrderEvent.objects.filter(order_id=order_id).order_by("id").values_list("action", flat=True))


def assert_money_once(order_id: str) -> None:
    """Every journal of the order sums to zero, and each kind of journal was posted at most once."""
    journals = LedgerEntry.objects.filter(order_id=order_id).values("journal").annotate(total=Sum("amount"))
    assert journals, "no ledger rows"
    assert all(row["total"] == 0 for row in journals), list(journals)
    per_kind = LedgerEntry.objects.filter(order_id=order_id).values("kind").annotate(n=Count("journal", distinct=True))
    assert all(row["n"] == 1 for row in per_kind), list(per_kind)
    assert OutgoingTransfer.objects.filter(order_id=order_id, kind="payout").count() <= 1


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@pytest.fixture(params=["solana", "base"])
def chain(request: Any, chains_up: Any, settings: Any) -> Solana | Base:  # noqa: F811
    settings.CHAIN_RPC_TIMEOUT_SECONDS = RPC_TIMEOUT
    agent = make_agent("Fault Forge")
    if request.param == "solana":
        return Solana(chains_up, make_buyer("solana"), agent)
    return Base(chains_up, make_buyer("base"), agent)


def deliver(chain: Solana | Base, order: dict[str, Any]) -> None:
    # A link: an image deliverable would also queue a fetch of the file, a task these tests do not want.
    response = chain.agent.api.post(
        f"/api/orders/{order['id']}/deliver",
        {"deliverable_url": "https://cdn.example.com/logo.pdf", "deliverable_media_type": "link"},
    )
    assert response.status_code == 200, response.body


# --- the chain RPC down or slow while the buyer pays -------------------------------------------


@pytest.mark.parametrize("fault", ["refused", "dropped", "slow"])
def test_a_chain_rpc_that_is_down_or_slow_during_pay_is_a_503_and_paying_again_later_works(
    chain: Solana | Base, settings: Any, fault: str
) -> None:
    order = order_for(chain, chain.agent)
    tx = chain.pay(order)  # the buyer's USDC is in escrow from here on
    escrow_before = balance(chain.chain, escrow(chain.chain))
    before = order_state(order["id"])
    real_url = getattr(settings, rpc_setting(chain.chain))

    with RpcProxy(real_url).running() as proxy:
        if fault == "refused":
            setattr(settings, rpc_setting(chain.chain), f"http://127.0.0.1:{closed_port()}")
        else:
            setattr(settings, rpc_setting(chain.chain), proxy.url)
            proxy.drop = fault == "dropped"
            proxy.delay = 3 * RPC_TIMEOUT if fault == "slow" else 0.0
        # Slow: the node would answer, after 1.5 s; a 503 means the client gave up at its timeout.
        response = pay(chain, order, tx)
        assert response.status_code == 503, response.body
        assert response.body["code"] == "chain_unavailable"
        assert set(response.body) == {"success", "error", "code", "details"}
        assert order_state(order["id"]) == before  # nothing changed: no payment, no ledger row, no event

        # The RPC is back (through the same proxy, now prompt, or the real URL): the same payment works.
        proxy.drop, proxy.delay = False, 0.0
        if fault == "refused":
            setattr(settings, rpc_setting(chain.chain), real_url)
        paid = pay(chain, order, tx)
    setattr(settings, rpc_setting(chain.chain), real_url)
    assert paid.status_code == 200, paid.body
    assert paid.body["data"]["status"] == "paid"
    assert actions(order["id"]) == ["create", "accept", "pay"]
    assert Payment.objects.filter(order_id=order["id"]).count() == 1
    assert balance(chain.chain, escrow(chain.chain)) == escrow_before  # paid once, nothing moved since
    assert_money_once(order["id"])


# --- the chain RPC down or slow while the worker pays the agent -----------------------------------


@pytest.mark.parametrize("fault", ["down_while_signing", "send_timed_out_but_landed"])
def test_a_chain_rpc_fault_during_a_payout_pays_the_agent_once(chain: Solana | Base, settings: Any, fault: str) -> None:
    order = order_for(chain, chain.agent)
    assert pay(chain, order, chain.pay(order)).status_code == 200
    deliver(chain, order)
    assert chain.buyer.api.patch(f"/api/orders/{order['id']}", {"action": "approve"}).status_code == 200
    transfer = OutgoingTransfer.objects.get(order_id=order["id"], kind="payout")
    real_url = getattr(settings, rpc_setting(chain.chain))

    with RpcProxy(real_url).running() as proxy:
        setattr(settings, rpc_setting(chain.chain), proxy.url)
        if fault == "down_while_signing":
            proxy.drop = True
            assert process_transfer(transfer.pk) == TransferStatus.PENDING  # nothing signed, nothing sent
            transfer.refresh_from_db()
            assert (transfer.raw_tx, transfer.attempts) == (None, 1)
            assert "unreachable" in transfer.last_error
            proxy.drop = False
            assert balance(chain.chain, chain.payout) == 0
        else:
            # The node takes the transaction but answers after the client gave up: the worker cannot
            # know it was sent, keeps the signed bytes, and sends the same bytes again next time.
            proxy.delay, proxy.slow_methods = 3 * RPC_TIMEOUT, SEND_METHODS
            assert process_transfer(transfer.pk) == TransferStatus.SIGNED
            assert proxy.forwarded_late.wait(10), "the slow send never reached the chain"
            chain.settle()
            assert balance(chain.chain, chain.payout) == AGENT_SHARE  # it landed
            proxy.delay = 0.0
        transfer.refresh_from_db()
        signed = bytes(transfer.raw_tx or b"")
        chain.settle()
        status = process_transfer(transfer.pk)
        if status != TransferStatus.CONFIRMED:  # Base: the re-sent bytes need their confirmations
            chain.settle()
            status = process_transfer(transfer.pk)
    setattr(settings, rpc_setting(chain.chain), real_url)
    assert status == TransferStatus.CONFIRMED
    transfer.refresh_from_db()
    if signed:
        assert bytes(transfer.raw_tx or b"") == signed  # the same transaction, not a second one
    assert balance(chain.chain, chain.payout) == AGENT_SHARE
    assert actions(order["id"])[-2:] == ["approve", "payout_sent"]
    assert_money_once(order["id"])


# --- the database connection dropped mid-request ------------------------------------------------


def drop_this_connection() -> None:
    """Cut the request's database connection off, mid-transaction."""
    if connection.vendor != "postgresql":
        # SQLite's test database is in memory: closing it would destroy it (Django ignores the
        # close). Raise what the driver raises when the server goes away, at the same point.
        raise OperationalError("server closed the connection unexpectedly (simulated on SQLite)")
    pid = connection.connection.info.backend_pid
    killer = connections.create_connection("default")
    try:
        with killer.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            for _ in range(100):  # until the backend is gone, so the next query surely fails
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
                if cursor.fetchone()[0] == 0:
                    break
                time.sleep(0.02)
    finally:
        killer.close()


@pytest.mark.django_db(transaction=True)
def test_the_database_dropped_during_approve_writes_nothing_and_the_retry_completes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    buyer, agent = make_buyer("solana"), make_agent("Fault Forge")
    order = make_order(buyer, agent, "delivered")
    before = order_state(order.id)
    real_settle = payment_settlement.settle_release

    def settle_then_lose_the_database(order: Order) -> dict[str, int]:
        settlement = real_settle(order)  # the release journal, the payout row and its task: written...
        drop_this_connection()  # ...and the connection is gone before the transition commits
        return settlement

    monkeypatch.setattr(payment_settlement, "settle_release", settle_then_lose_the_database)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        status, body = wsgi("PATCH", f"/api/orders/{order.id}", {"action": "approve"}, buyer.api.headers)
    assert status == 500
    assert body == {"success": False, "error": body["error"], "code": "server_error", "details": {}}
    assert any("Internal Server Error" in record.getMessage() for record in caplog.records)
    assert order_state(order.id) == before  # nothing half-written

    monkeypatch.setattr(payment_settlement, "settle_release", real_settle)
    status, body = wsgi("PATCH", f"/api/orders/{order.id}", {"action": "approve"}, buyer.api.headers)
    assert status == 200, body
    assert body["data"]["status"] == "completed"
    assert actions(order.id)[-2:] == ["deliver", "approve"]
    assert OutgoingTransfer.objects.filter(order_id=order.id, kind="payout").count() == 1
    assert DBTaskResult.objects.filter(task_path="payments.tasks.send_transfer").count() == 1
    assert Agent.objects.get(pk=agent.id).completed_orders == before["completed_orders"] + 1
    assert_money_once(order.id)


@pytest.mark.django_db(transaction=True)
def test_the_database_dropped_while_recording_a_payment_writes_nothing_and_the_retry_pays(
    chains_up: Any,  # noqa: F811
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain = Solana(chains_up, make_buyer("solana"), make_agent("Fault Forge"))
    order = order_for(chain, chain.agent)
    tx = chain.pay(order)
    escrow_after_paying = balance("solana", escrow("solana"))
    before = order_state(order["id"])
    real_record = binding.payment_record

    def record_then_lose_the_database(*args: Any, **kwargs: Any) -> Payment:
        payment = real_record(*args, **kwargs)  # the payment row and its escrow journal: written...
        drop_this_connection()  # ...and gone before the `pay` transition commits
        return payment

    monkeypatch.setattr(binding, "payment_record", record_then_lose_the_database)
    body = {"action": "pay", "escrow_tx_hash": tx, "payment_chain": "solana"}
    status, reply = wsgi("PATCH", f"/api/orders/{order['id']}", body, chain.buyer.api.headers)
    assert (status, reply["code"]) == (500, "server_error")
    assert order_state(order["id"]) == before  # the hash is not held, nothing in the ledger

    monkeypatch.setattr(binding, "payment_record", real_record)
    status, reply = wsgi("PATCH", f"/api/orders/{order['id']}", body, chain.buyer.api.headers)
    assert status == 200, reply
    assert reply["data"]["status"] == "paid"
    assert actions(order["id"]) == ["create", "accept", "pay"]
    assert balance("solana", escrow("solana")) == escrow_after_paying
    assert_money_once(order["id"])


# --- a real worker killed during a payout -------------------------------------------------------


def worker_env(settings: Any, tmp_path: Path, **faults: str) -> dict[str, str]:
    """The environment of a worker process: the test's database and devchains, nothing else."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="") + (f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else "")
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CHAIN_MODE": "rpc",
        "DEVCHAIN_STATE": str(tmp_path / "no-devchain.json"),
        "SOLANA_RPC_URL": settings.SOLANA_RPC_URL,
        "SOLANA_USDC_MINT": settings.SOLANA_USDC_MINT,
        "SOLANA_ESCROW_SECRET": settings.SOLANA_ESCROW_SECRET,
        "BASE_RPC_URL": settings.BASE_RPC_URL,
        "BASE_USDC_ADDRESS": settings.BASE_USDC_ADDRESS,
        "BASE_ESCROW_PRIVATE_KEY": settings.BASE_ESCROW_PRIVATE_KEY,
        "BASE_CHAIN_ID": str(settings.BASE_CHAIN_ID),
        "BASE_CONFIRMATIONS": str(settings.BASE_CONFIRMATIONS),
        "ATELIER_DATA_DIR": str(tmp_path / "data"),
        "LOG_LEVEL": "WARNING",
        **faults,
    }
    env.pop("CACHE_URL", None)
    return env


def start_worker(env: dict[str, str], *options: str) -> subprocess.Popen[bytes]:
    """`manage.py db_worker` (through tests.fault_worker, which switches on the env's faults)."""
    command = [sys.executable, "-m", "tests.fault_worker", "--queue-name", "*", "--interval", "0.1"]
    return subprocess.Popen(  # noqa: S603
        [*command, "--no-startup-delay", *options],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    done = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def kill(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)


def requeue_stale(env: dict[str, str]) -> None:
    """What `make worker` does before starting one: tasks a dead worker left RUNNING go back in
    the queue (`--older-than 0` here; 300 in production, where a dead worker is not this fresh)."""
    manage(env, "requeue_stale_tasks", "--older-than", "0")


needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the worker is another process, and SQLite's test database lives in this one's memory",
)


@needs_postgres
@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("killed", ["before_send", "after_send"])
def test_a_worker_killed_during_a_payout_and_restarted_pays_the_agent_exactly_once(
    chains_up: Any,  # noqa: F811
    settings: Any,
    tmp_path: Path,
    killed: str,
) -> None:
    chain = Solana(chains_up, make_buyer("solana"), make_agent("Fault Forge"))
    order = order_for(chain, chain.agent)
    assert pay(chain, order, chain.pay(order)).status_code == 200
    deliver(chain, order)
    assert chain.buyer.api.patch(f"/api/orders/{order['id']}", {"action": "approve"}).status_code == 200
    transfer = OutgoingTransfer.objects.get(order_id=order["id"], kind="payout")
    marker = tmp_path / "paused"

    worker = start_worker(worker_env(settings, tmp_path, FAULT_PAUSE=killed, FAULT_MARKER=str(marker)))
    try:
        wait_for(marker.exists, timeout=90, what=f"the worker to pause {killed.replace('_', ' ')}")
        transfer.refresh_from_db()
        assert transfer.status == TransferStatus.SIGNED
        signed = (bytes(transfer.raw_tx or b""), transfer.tx_hash)
        assert signed[0], "the signed bytes are stored before anything is sent"
        kill(worker)
    finally:
        kill(worker)
    assert balance("solana", chain.payout) == (AGENT_SHARE if killed == "after_send" else 0)
    task = DBTaskResult.objects.get(task_path="payments.tasks.send_transfer")
    assert task.status == "RUNNING"  # what a dead worker leaves behind

    env = worker_env(settings, tmp_path)
    requeue_stale(env)
    restarted = start_worker(env, "--batch")
    try:
        restarted.wait(timeout=120)
    finally:
        kill(restarted)
    transfer.refresh_from_db()
    assert transfer.status == TransferStatus.CONFIRMED
    assert (bytes(transfer.raw_tx or b""), transfer.tx_hash) == signed  # the same transaction, sent (again)
    assert balance("solana", chain.payout) == AGENT_SHARE  # exactly once
    assert actions(order["id"]).count("payout_sent") == 1
    assert actions(order["id"])[-2:] == ["approve", "payout_sent"]
    assert_money_once(order["id"])


# --- webhooks: a receiver that hangs, a worker killed while it waits ----------------------------


@needs_postgres
@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_hanging_receiver_times_out_is_retried_and_survives_a_worker_killed_mid_delivery(
    settings: Any, tmp_path: Path
) -> None:
    from tests.webhooks.receiver import Receiver, receiving
    from webhooks.models import WebhookDelivery

    settings.SAFEHTTP_ALLOW_LOOPBACK = True
    buyer, agent = make_buyer("solana"), make_agent("Fault Forge")
    # Phase 1 hangs once, then answers; phase 2 hangs (the worker is killed), then answers.
    receiver = Receiver(script=["hang", 200, "hang", 200], hang_seconds=20)
    with receiving(receiver):
        assert agent.api.patch("/api/agents/me", {"endpoint_url": receiver.url}).status_code == 200
        agent.agent.refresh_from_db()
        receiver.secret = agent.agent.webhook_secret

        # 1. The receiver hangs past the (shortened) timeout: a failed attempt, retried, delivered.
        order = make_order(buyer, agent)
        created = WebhookDelivery.objects.get(order=order, event="order.created")
        env = worker_env(
            settings, tmp_path, FAULT_ALLOW_LOOPBACK="1", FAULT_WEBHOOK_TIMEOUT="1", FAULT_WEBHOOK_RETRY_BASE="1"
        )
        worker = start_worker(env)
        try:
            wait_for(
                lambda: WebhookDelivery.objects.filter(pk=created.pk, status="delivered").exists(),
                timeout=90,
                what="the order.created webhook to be delivered",
            )
        finally:
            worker.terminate()
            kill(worker)
        created.refresh_from_db()
        assert created.attempts == 2
        assert [r.answered for r in receiver.received] == ["hang", 200]

        # 2. A worker killed while the receiver hangs: the task is requeued, the next worker delivers.
        response = agent.api.post(f"/api/orders/{order.id}/quote", {"price_usd": "45.00"})
        assert response.status_code == 200, response.body
        quoted = WebhookDelivery.objects.get(order=order, event="order.quoted")
        env = worker_env(
            settings, tmp_path, FAULT_ALLOW_LOOPBACK="1", FAULT_WEBHOOK_TIMEOUT="60", FAULT_WEBHOOK_LEASE="1"
        )
        worker = start_worker(env)
        try:
            wait_for(lambda: len(receiver.received) == 3, timeout=90, what="the worker to be waiting on the receiver")
            kill(worker)
        finally:
            kill(worker)
        quoted.refresh_from_db()
        assert (quoted.status, quoted.attempts) == ("pending", 1)

        env = worker_env(settings, tmp_path, FAULT_ALLOW_LOOPBACK="1")
        requeue_stale(env)
        restarted = start_worker(env, "--batch")
        try:
            restarted.wait(timeout=120)
        finally:
            kill(restarted)
        quoted.refresh_from_db()
    assert (quoted.status, quoted.attempts) == ("delivered", 2)
    # At least once, never lost: the receiver saw the same webhook-id on both tries, and took one.
    tries = [r for r in receiver.received if r.headers.get("webhook-id") == quoted.pk]
    assert [r.answered for r in tries] == ["hang", 200]
    assert all(r.verified for r in tries)
    assert actions(order.id) == ["create", "quote"]


# --- Redis down for rate limits ----------------------------------------------------------------


def production_caches(monkeypatch: pytest.MonkeyPatch, cache_url: str) -> dict[str, Any]:
    """CACHES exactly as atelier/settings.py builds it from CACHE_URL (its timeouts and retries too)."""
    monkeypatch.setenv("CACHE_URL", cache_url)
    caches: dict[str, Any] = runpy.run_path(str(BASE_DIR / "atelier" / "settings.py"))["CACHES"]
    return caches


@contextmanager
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never answers: a Redis that hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        for sock in accepted:
            sock.close()
        server.close()


@pytest.mark.parametrize("fault", ["refused", "hanging"])
def test_redis_down_for_rate_limits_lets_requests_through_and_logs_it(
    settings: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    pytest.importorskip("redis")
    buyer, agent = make_buyer("solana"), make_agent("Fault Forge")
    with silent_server() as hanging_port:
        port = hanging_port if fault == "hanging" else closed_port()
        settings.CACHES = production_caches(monkeypatch, f"redis://127.0.0.1:{port}/0")
        service_id = make_order(buyer, agent).service_id
        started = time.monotonic()
        with caplog.at_level(logging.WARNING):
            # Rate-limited endpoints, more calls than some of their limits allow.
            created = [
                buyer.api.post("/api/orders", {"service_id": service_id, "brief": "A fox in a lab coat, please."})
                for _ in range(3)
            ]
            polls = [agent.api.get(f"/api/agents/{agent.id}/orders") for _ in range(35)]
        took = time.monotonic() - started
    assert [r.status_code for r in created] == [201] * 3
    assert {r.status_code for r in polls} == {200}  # 35 polls: over the 30 an hour the limit allows
    assert took < 30, f"{took:.1f} s for 38 requests: a Redis that is down must not make each one wait"
    logged = [r for r in caplog.records if r.name.startswith("atelier") and "cache" in r.getMessage().lower()]
    assert logged, "the cache failure is logged"
    assert logged[0].levelno >= logging.WARNING
    # The orders are whole: each was created and recorded once.
    for response in created:
        assert actions(response.body["data"]["id"]) == ["create"]
    assert Order.objects.filter(service_id=service_id).count() == 4
