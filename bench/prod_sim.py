"""`make prod-sim`: the production layout on loopback, under load, with failures.

Starts two gunicorn app servers (deploy/gunicorn.conf.py, 2 workers each), two `db_worker`s and the
scheduler over one PostgreSQL database (a scratch `wtprod_sim_*`, dropped afterwards), one Redis
(db 12, keys prefixed by the run), moto's S3 server and the devchains. Then drives PRODSIM_ORDERS orders (200) through
both app servers alternately, each paid by a real USDC transfer on the Solana devchain, delivered as
an uploaded file (stored in S3) and approved. Halfway, it SIGKILLs one app server (its whole process
group) and one worker, and starts them again. A client whose request fails moves to the other
server and retries with the same Idempotency-Key, as a load balancer and a careful client would.

At the end it checks: every order completed; exactly one payout per order, confirmed; every
deliverable's original readable from S3 by its agent and buyer and by no one else; the rate limit
counted across both servers; `manage.py reconcile` clean; /metrics agreeing. It prints the figures
(orders per second, client errors during the kills, time to recover) as JSON and exits 1 on any
failed check.

Environment: PRODSIM_ORDERS (200), PRODSIM_THREADS (4), PRODSIM_PG (postgres://postgres@127.0.0.1:5432),
PRODSIM_REDIS (redis://127.0.0.1:6379/12; keys prefixed by the run).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
ORDERS = int(os.environ.get("PRODSIM_ORDERS", "200"))
THREADS = int(os.environ.get("PRODSIM_THREADS", "4"))
PG = os.environ.get("PRODSIM_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("PRODSIM_REDIS", "redis://127.0.0.1:6379/12")
PRICE = "5.00"
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def log(message: str) -> None:
    print(f"[prod-sim {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(check: Callable[[], bool], *, timeout: float, what: str) -> float:
    began = time.monotonic()
    last: Exception | None = None
    while time.monotonic() - began < timeout:
        try:
            if check():
                return time.monotonic() - began
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what} ({last!r})")


class Processes:
    """Every process the sim starts, each in its own process group (a kill takes its children too)."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs, self.env = logs, env
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.commands: dict[str, tuple[list[str], dict[str, str]]] = {}

    def start(self, name: str, command: list[str], **extra: str) -> None:
        self.commands[name] = (command, extra)
        with (self.logs / f"{name}.log").open("ab") as out:
            self.running[name] = subprocess.Popen(  # noqa: S603 - our own commands, fixed arguments
                command,
                cwd=ROOT,
                env={**self.env, **extra},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, name: str) -> None:
        process = self.running.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def restart(self, name: str) -> None:
        command, extra = self.commands[name]
        self.start(name, command, **extra)

    def stop_all(self) -> None:
        for process in self.running.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


class Client:
    """HTTP through both app servers alternately; on a connection error or a 502/503 it counts an
    error and retries on the other server, with the same Idempotency-Key for writes."""

    def __init__(self, servers: list[str]) -> None:
        import requests

        self.servers = servers
        self.session = requests.Session()
        self.turn = 0
        self.errors: list[tuple[float, str]] = []
        self.lock = threading.Lock()

    def call(self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        import requests

        headers = dict(headers or {})
        if method != "GET":
            headers.setdefault("Idempotency-Key", uuid.uuid4().hex)
        with self.lock:
            self.turn += 1
            first = self.turn
        for attempt in range(200):
            base = self.servers[(first + attempt) % len(self.servers)]
            try:
                response = self.session.request(
                    method, base + path, headers=headers, timeout=30, allow_redirects=False, **kwargs
                )
            except requests.RequestException as exc:
                with self.lock:
                    self.errors.append((time.monotonic(), f"{method} {path}: {type(exc).__name__}"))
                time.sleep(0.2)
                continue
            if response.status_code in (502, 503) and attempt < 199:
                with self.lock:
                    self.errors.append((time.monotonic(), f"{method} {path}: {response.status_code}"))
                time.sleep(0.5)
                continue
            if response.status_code == 409 and '"idempotency_in_progress"' in response.text and attempt < 199:
                # The first try died with its server; its lease on the key runs out, then this
                # retry runs the request (or replays its response).
                time.sleep(float(response.json()["details"].get("retry_after", 1)))
                continue
            return response
        raise RuntimeError(f"{method} {path}: no server answered")


def ip() -> str:
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


def staff_money_paths(
    client: Any,
    expect: Callable[..., dict[str, Any]],
    sign_in: Callable[[Any], str],
    service_id: str,
    agent_auth: dict[str, str],
    env: dict[str, str],
) -> dict[str, Any]:
    """Cancels with refunds, disputes decided through `orders.disputes.decisions.dispute_resolve` (as
    the desk decides them), and a Base payment refunded on Base; waits for every transfer they make
    to be confirmed. Runs in this process against the simulation's database (django is set up)."""
    from django.contrib.auth import get_user_model
    from eth_account import Account
    from eth_account.messages import encode_defunct

    from orders.disputes.decisions import dispute_resolve
    from payments.chains import PaymentInstructions
    from payments.models import OutgoingTransfer
    from tests.payments import evm_helpers, solana_helpers

    solana, base = env["SOLANA_RPC_URL"], env["BASE_RPC_URL"]
    failures: list[str] = []
    agent = {**agent_auth, "X-Forwarded-For": ip()}

    def base_sign_in(account: Any) -> str:
        challenge = expect(
            client.call("POST", "/api/auth/nonce", json={"wallet": account.address, "chain": "base"}), 200, 201
        )
        signature = "0x" + Account.sign_message(encode_defunct(text=challenge["message"]), account.key).signature.hex()
        verified = expect(
            client.call("POST", "/api/auth/verify", json={"nonce": challenge["nonce"], "signature": signature}),
            200,
            201,
        )
        return str(verified["token"])

    def paid_order(chain: str) -> tuple[str, dict[str, str]]:
        if chain == "solana":
            wallet = solana_helpers.new_wallet(solana, usdc=100 * 10**6)
            buyer = {"Authorization": f"Bearer {sign_in(wallet)}", "X-Forwarded-For": ip()}
        else:
            account = evm_helpers.new_wallet(base, usdc=100 * 10**6)
            buyer = {"Authorization": f"Bearer {base_sign_in(account)}", "X-Forwarded-For": ip()}
        order = expect(
            client.call(
                "POST",
                "/api/orders",
                json={"service_id": service_id, "brief": "A report on the money paths.", "payment_chain": chain},
                headers=buyer,
            ),
            201,
        )
        payment = order["payment"]
        if chain == "solana":
            instructions = PaymentInstructions(
                chain="solana",
                escrow_address=payment["escrow_address"],
                token_account=payment["token_account"],
                token=payment["token"],
            )
            tx = solana_helpers.pay_order(
                solana, wallet, instructions, payment["amount_base_units"], payment["payment_reference"]
            )
        else:
            tx = evm_helpers.pay_order(base, account, payment, payment["amount_base_units"])
        path = f"/api/orders/{order['id']}"
        paid = expect(
            client.call(
                "PATCH", path, json={"action": "pay", "escrow_tx_hash": tx, "payment_chain": chain}, headers=buyer
            ),
            200,
            202,
        )
        deadline = time.monotonic() + 90
        while paid["status"] != "paid":
            if time.monotonic() > deadline:
                raise RuntimeError(f"{order['id']} ({chain}) not paid: {paid['status']}")
            if chain == "base":
                evm_helpers.mine(base, 1)
            time.sleep(0.5)
            paid = expect(client.call("GET", path, headers=buyer), 200)
        return order["id"], buyer

    orders: dict[str, str] = {}
    try:
        for chain in ("solana", "base"):
            order_id, buyer = paid_order(chain)
            cancelled = expect(
                client.call("PATCH", f"/api/orders/{order_id}", json={"action": "cancel"}, headers=buyer), 200
            )
            if cancelled["status"] != "cancelled":
                failures.append(f"cancel of {order_id} left it {cancelled['status']}")
            orders[order_id] = f"cancel ({chain})"
        staff = get_user_model().objects.create_user("prodsim-staff", is_staff=True)
        for decision in ("release", "refund", "split"):
            order_id, buyer = paid_order("solana")
            path = f"/api/orders/{order_id}"
            expect(client.call("POST", f"{path}/start", headers=agent), 200)
            expect(
                client.call(
                    "POST",
                    f"{path}/deliver",
                    json={"deliverable_url": "https://example.com/report", "deliverable_media_type": "link"},
                    headers=agent,
                ),
                200,
            )
            expect(
                client.call(
                    "PATCH", path, json={"action": "dispute", "reason": "Not the report asked for."}, headers=buyer
                ),
                200,
            )
            dispute_resolve(
                order_id=order_id,
                decision=decision,
                staff_user_id=staff.pk,
                note=f"Decided by the simulation: {decision}.",
                agent_amount_usd=Decimal("2.50") if decision == "split" else None,
            )
            orders[order_id] = f"dispute {decision}"
    except Exception as exc:
        failures.append(f"money paths: {type(exc).__name__}: {exc}")

    def unsettled() -> list[tuple[str, str, str]]:
        rows = OutgoingTransfer.objects.filter(order_id__in=orders).values_list("order_id", "kind", "status")
        return [row for row in rows if row[2] != "confirmed"]

    expected = {"cancel (solana)": 1, "cancel (base)": 1, "dispute release": 1, "dispute refund": 1, "dispute split": 2}

    def settled() -> bool:
        evm_helpers.mine(base, 1)  # Base counts confirmations in blocks; the devchain mines on demand
        return not unsettled()

    try:
        wait_until(settled, timeout=180, what="every refund and dispute transfer confirmed")
    except RuntimeError:
        failures.append(f"money paths: transfers not confirmed: {unsettled()[:5]}")
    made = dict.fromkeys(orders.values(), 0)
    for order_id in OutgoingTransfer.objects.filter(order_id__in=orders).values_list("order_id", flat=True):
        made[orders[order_id]] += 1
    if made != expected:
        failures.append(f"money paths: transfers per path {made}, expected {expected}")
    return {
        "orders": orders,
        "transfers_per_path": made,
        "completed": sum(path in ("dispute release", "dispute split") for path in orders.values()),
        "failures": failures,
    }


def main() -> int:
    import boto3
    import psycopg

    database = f"wtprod_sim_{secrets.token_hex(4)}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    work = Path(tempfile.mkdtemp(prefix="atelier-prodsim-"))
    logs = work / "logs"
    logs.mkdir()
    s3_port, solana_port, evm_port = free_port(), free_port(), free_port()
    s3 = f"http://127.0.0.1:{s3_port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_"))},
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": f"{PG}/{database}?conn_max_age=60&conn_health_checks=true",
        "CACHE_URL": f"{REDIS}?key_prefix=prodsim-{database}",  # this run's counters only
        "STORAGE_BACKEND": "s3",
        "S3_ENDPOINT_URL": s3,
        "S3_BUCKET": "atelier-private",
        "S3_ACCESS_KEY_ID": "prodsim-key-id",
        "S3_SECRET_ACCESS_KEY": "prodsim-secret-access-key",
        "CHAIN_MODE": "local",
        "ALLOW_LOCAL_CHAIN": "true",
        "DEVCHAIN_STATE": str(work / "devchain.json"),
        "SOLANA_RPC_URL": f"http://127.0.0.1:{solana_port}",
        "BASE_RPC_URL": f"http://127.0.0.1:{evm_port}",
        "ATELIER_DATA_DIR": str(work),
        "TRUSTED_PROXY_COUNT": "1",
        "STATIC_MANIFEST": "false",
        "LOG_LEVEL": "WARNING",
        "REQUEUE_STALE_AFTER_SECONDS": "15",
        "WEB_CONCURRENCY": "2",
        "BASE_CONFIRMATIONS": "2",
        # /metrics is never served without it when DEBUG is off (the servers sit behind a proxy).
        "METRICS_TOKEN": secrets.token_urlsafe(24),
    }
    procs = Processes(logs, env)
    figures: dict[str, Any] = {"orders": ORDERS, "database": database, "logs": str(logs)}
    failures: list[str] = []
    try:
        subprocess.run(  # noqa: S603
            [PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=300
        )
        procs.start("s3", [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)])
        procs.start(
            "devchain",
            [PYTHON, "manage.py", "devchain", "--solana-port", str(solana_port), "--evm-port", str(evm_port)],
        )
        wait_until(lambda: Path(env["DEVCHAIN_STATE"]).exists(), timeout=90, what="the devchains")
        bucket = boto3.client(
            "s3",
            endpoint_url=s3,
            aws_access_key_id=env["S3_ACCESS_KEY_ID"],
            aws_secret_access_key=env["S3_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        )
        wait_until(lambda: bucket.list_buckets() is not None, timeout=30, what="moto S3")
        bucket.create_bucket(Bucket=env["S3_BUCKET"])

        # Least privilege: the app servers (ATELIER_ROLE=app, by gunicorn.conf.py) get the escrow's
        # public addresses alone and load no key; the workers sign with the devchain's keys.
        from eth_account import Account
        from solders.keypair import Keypair as EscrowKeypair

        state = json.loads(Path(env["DEVCHAIN_STATE"]).read_text())
        public = {
            "SOLANA_ESCROW_ADDRESS": str(EscrowKeypair.from_base58_string(state["solana"]["escrow_secret"]).pubkey()),
            "BASE_ESCROW_ADDRESS": Account.from_key(state["base"]["escrow_private_key"]).address,
        }
        keyed_app = subprocess.run(  # noqa: S603 - an app server given a key must not start
            [PYTHON, "-c", "import django; django.setup()"],
            cwd=ROOT,
            env={**env, "ATELIER_ROLE": "app", "SOLANA_ESCROW_SECRET": state["solana"]["escrow_secret"]},
            capture_output=True,
            timeout=120,
            check=False,
        )
        figures["app_server_with_a_key_refused"] = keyed_app.returncode != 0
        if keyed_app.returncode == 0:
            failures.append("an app server started with a hot-wallet key")
        ports = [free_port(), free_port()]
        for number, port in enumerate(ports):
            metrics = work / f"metrics-{number}"
            metrics.mkdir()
            procs.start(
                f"app{number}",
                [PYTHON, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "atelier.wsgi:application"],
                GUNICORN_BIND=f"127.0.0.1:{port}",
                PROMETHEUS_MULTIPROC_DIR=str(metrics),
                **public,
            )
        for number in range(2):
            procs.start(f"worker{number}", [PYTHON, "manage.py", "db_worker", "--queue-name", "*", "--interval", "0.2"])
        procs.start("scheduler", [PYTHON, "manage.py", "scheduler", "--tick", "1"])
        servers = [f"http://127.0.0.1:{port}" for port in ports]
        import requests

        def ready(server: str) -> Callable[[], bool]:
            return lambda: requests.get(f"{server}/readyz", timeout=5).status_code == 200

        for server in servers:
            wait_until(ready(server), timeout=120, what=server)
        log(f"up: app servers {ports}, S3 {s3_port}, devchains {solana_port}/{evm_port}, database {database}")

        os.environ.update({k: env[k] for k in ("DATABASE_URL", "CHAIN_MODE", "ALLOW_LOCAL_CHAIN", "DEVCHAIN_STATE")})
        os.environ.update({"SECRET_KEY": env["SECRET_KEY"], "LOG_LEVEL": "WARNING"})
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atelier.settings")
        import django

        django.setup()
        from solders.keypair import Keypair

        from payments.chains import PaymentInstructions
        from tests.payments import solana_helpers

        client = Client(servers)
        solana = env["SOLANA_RPC_URL"]

        # The rate limit, counted across both servers: registration is 5 an hour per client address.
        same_client = {"X-Forwarded-For": "203.0.113.77"}
        statuses = []
        for number in range(8):
            response = requests.post(
                f"{servers[number % 2]}/api/agents/register",
                json={"name": f"Limit {number}", "description": "Counts the limit.", "payout_chain": "solana"},
                headers=same_client,
                timeout=30,
            )
            statuses.append(response.status_code)
        figures["register_statuses_across_servers"] = statuses
        if statuses.count(201) != 5 or statuses.count(429) != 3:
            failures.append(f"rate limit not shared across servers: {statuses}")

        # One agent selling a fixed-price service; its payouts go to a fresh Solana wallet with a USDC
        # account (a payout never creates one: it would be held).
        payout = solana_helpers.receiving_wallet(solana)
        registered = client.call(
            "POST",
            "/api/agents/register",
            json={
                "name": "Sim Forge",
                "description": "Delivers a PDF for every order of the simulation.",
                "payout_chain": "solana",
                "payout_wallet": payout,
            },
            headers={"X-Forwarded-For": ip()},
        ).json()["data"]
        agent_id, key = registered["agent"]["id"], registered["api_key"]
        agent_auth = {"Authorization": f"Bearer {key}"}
        service = client.call(
            "POST",
            f"/api/agents/{agent_id}/services",
            json={
                "title": "Simulated report",
                "category": "writing",
                "price_type": "fixed",
                "price_usd": PRICE,
                "description": "A one-page PDF report, delivered as an uploaded file for the simulation.",
            },
            headers={**agent_auth, "X-Forwarded-For": ip()},
        ).json()["data"]

        def sign_in(wallet: Keypair) -> str:
            address = str(wallet.pubkey())
            challenge = client.call(
                "POST",
                "/api/auth/nonce",
                json={"wallet": address, "chain": "solana"},
                headers={"X-Forwarded-For": ip()},
            ).json()["data"]
            verified = client.call(
                "POST",
                "/api/auth/verify",
                json={
                    "nonce": challenge["nonce"],
                    "signature": str(wallet.sign_message(challenge["message"].encode())),
                },
                headers={"X-Forwarded-For": ip()},
            ).json()["data"]
            return str(verified["token"])

        buyers = []
        for _ in range(THREADS):
            wallet = solana_helpers.new_wallet(solana, usdc=10_000 * 10**6)
            buyers.append((wallet, {"Authorization": f"Bearer {sign_in(wallet)}"}))
        stranger = {"Authorization": f"Bearer {sign_in(solana_helpers.new_wallet(solana, usdc=0))}"}

        done: list[dict[str, Any]] = []
        problems: list[str] = []
        lock = threading.Lock()
        counter = iter(range(ORDERS))
        half = threading.Event()

        def expect(response: Any, *codes: int) -> dict[str, Any]:
            if response.status_code not in codes:
                raise RuntimeError(
                    f"{response.request.method} {response.request.path_url}: {response.status_code} {response.text[:300]}"
                )
            return dict(response.json()["data"])

        def one_order(wallet: Keypair, buyer_auth: dict[str, str]) -> dict[str, Any]:
            buyer = {**buyer_auth, "X-Forwarded-For": ip()}
            agent = {**agent_auth, "X-Forwarded-For": ip()}
            order = expect(
                client.call(
                    "POST",
                    "/api/orders",
                    json={
                        "service_id": service["id"],
                        "brief": "A one-page report on foxes in lab coats.",
                        "payment_chain": "solana",
                    },
                    headers=buyer,
                ),
                201,
            )
            path = f"/api/orders/{order['id']}"
            payment = order["payment"]
            tx = solana_helpers.pay_order(
                solana,
                wallet,
                PaymentInstructions(
                    chain="solana",
                    escrow_address=payment["escrow_address"],
                    token_account=payment["token_account"],
                    token=payment["token"],
                ),
                payment["amount_base_units"],
                payment["payment_reference"],
            )
            paid = expect(
                client.call(
                    "PATCH",
                    path,
                    json={"action": "pay", "escrow_tx_hash": tx, "payment_chain": "solana"},
                    headers=buyer,
                ),
                200,
                202,
            )
            deadline = time.monotonic() + 60
            while paid["status"] != "paid":  # the scan or the re-check task settles a pending claim
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{order['id']} not paid: {paid['status']}")
                time.sleep(0.5)
                paid = expect(client.call("GET", path, headers=buyer), 200)
            expect(client.call("POST", f"{path}/start", headers=agent), 200)
            upload = expect(
                client.call(
                    "POST", "/api/upload", files={"file": ("report.pdf", PDF, "application/pdf")}, headers=agent
                ),
                201,
            )
            expect(
                client.call(
                    "POST",
                    f"{path}/deliver",
                    json={"deliverable_url": upload["url"], "deliverable_media_type": "document"},
                    headers=agent,
                ),
                200,
            )
            approved = expect(client.call("PATCH", path, json={"action": "approve"}, headers=buyer), 200)
            if approved["status"] != "completed":
                raise RuntimeError(f"{order['id']} left {approved['status']}")
            return {"id": order["id"], "buyer": buyer_auth}

        def driver(wallet: Keypair, buyer_auth: dict[str, str]) -> None:
            for _number in counter:
                try:
                    result = one_order(wallet, buyer_auth)
                except Exception as exc:
                    with lock:
                        problems.append(str(exc))
                    continue
                with lock:
                    done.append(result)
                    if len(done) >= ORDERS // 2:
                        half.set()

        began = time.monotonic()
        threads = [threading.Thread(target=driver, args=buyer) for buyer in buyers]
        for thread in threads:
            thread.start()
        half.wait(timeout=600)
        # Kill one app server and one worker mid-run, then bring them back.
        killed_at = time.monotonic()
        procs.kill("app0")
        procs.kill("worker0")
        log(f"killed app0 and worker0 after {len(done)} orders")
        time.sleep(3)
        procs.restart("app0")
        procs.restart("worker0")
        back = wait_until(
            lambda: requests.get(f"{servers[0]}/readyz", timeout=5).status_code == 200, timeout=120, what="app0 again"
        )
        figures["app_server_back_after_s"] = round(time.monotonic() - killed_at, 2)
        figures["app_server_start_s"] = round(back, 2)
        for thread in threads:
            thread.join()
        wall = time.monotonic() - began
        figures["orders_completed"] = len(done)
        figures["orders_per_second"] = round(len(done) / wall, 2)
        figures["wall_s"] = round(wall, 1)
        figures["client_errors_total"] = len(client.errors)
        figures["client_errors_during_kills"] = len([e for e in client.errors if e[0] >= killed_at])
        figures["client_error_samples"] = [e[1] for e in client.errors[:5]]
        figures["orders_failed"] = len(problems)
        if problems:
            failures.append(f"{len(problems)} orders failed, e.g. {problems[:3]}")
        if len(done) != ORDERS:
            failures.append(f"{len(done)} of {ORDERS} orders completed")

        # Payouts: exactly one per completed order, all confirmed (the worker killed mid-run included).
        with psycopg.connect(env["DATABASE_URL"].split("?")[0]) as db:

            def payouts() -> list[tuple[str, str, int]]:
                return db.execute(
                    "SELECT o.id, t.status, count(*) OVER (PARTITION BY o.id) FROM orders_order o "
                    "LEFT JOIN payments_outgoingtransfer t ON t.order_id = o.id AND t.kind = 'payout'"
                ).fetchall()

            try:
                from payments.tasks import RECHECK_CAP

                # A transfer re-checked many times (a busy chain) may wait up to the re-check cap.
                settled = wait_until(
                    lambda: all(status == "confirmed" for _, status, _ in payouts()),
                    timeout=RECHECK_CAP.total_seconds() + 60,
                    what="every payout confirmed",
                )
            except RuntimeError:
                # Say which payouts are stuck and why, and what their tasks are doing.
                figures["unsettled_payouts"] = db.execute(
                    "SELECT o.id, o.status, t.id, t.status, t.chain, t.attempts, t.last_error, t.held_reason "
                    "FROM orders_order o LEFT JOIN payments_outgoingtransfer t "
                    "ON t.order_id = o.id AND t.kind = 'payout' WHERE t.status IS DISTINCT FROM 'confirmed' LIMIT 5"
                ).fetchall()
                figures["task_statuses"] = db.execute(
                    "SELECT status, count(*) FROM django_tasks_database_dbtaskresult GROUP BY status"
                ).fetchall()
                raise
            figures["payouts_settled_after_run_s"] = round(settled, 1)
            figures["all_settled_after_kill_s"] = round(time.monotonic() - killed_at, 1)
            rows = payouts()
            if any(count != 1 for _, _, count in rows) or len(rows) != ORDERS:
                failures.append(f"payouts per order not exactly one: {[r for r in rows if r[2] != 1][:5]}")
            statuses_db: dict[str, int] = dict(
                db.execute("SELECT status, count(*) FROM orders_order GROUP BY status").fetchall()
            )
            figures["orders_by_status"] = statuses_db
            if statuses_db != {"completed": ORDERS}:
                failures.append(f"orders by status: {statuses_db}")
            stuck = db.execute(
                "SELECT count(*) FROM django_tasks_database_dbtaskresult WHERE status = 'RUNNING'"
            ).fetchone()
            figures["tasks_left_running"] = stuck[0] if stuck else 0

        # The money paths staff touch, beside the 200 approvals: buyers cancelling paid orders (full
        # refunds), disputes resolved through the desk's own function (release, refund, split), and
        # Base payments (a Base buyer's order paid on Base, then cancelled: its refund goes back on Base).
        money_paths = staff_money_paths(client, expect, sign_in, service["id"], agent_auth, env)
        figures["money_paths"] = money_paths
        failures.extend(money_paths.pop("failures"))

        # Deliverables: the original from S3 for the agent and the buyer, nobody else.
        checked = 0
        for item in done:
            order = expect(client.call("GET", f"/api/orders/{item['id']}", headers=agent_auth), 200)
            deliverable = order["deliverables"][0]["id"]
            original = f"/api/deliverables/{deliverable}/original"
            for who in (agent_auth, item["buyer"]):
                redirect = client.call("GET", original, headers={**who, "X-Forwarded-For": ip()})
                if redirect.status_code != 302 or requests.get(redirect.headers["Location"], timeout=30).content != PDF:
                    failures.append(f"{deliverable}: the original is not readable by a party ({redirect.status_code})")
            if client.call("GET", original, headers={**stranger, "X-Forwarded-For": ip()}).status_code != 404:
                failures.append(f"{deliverable}: a stranger reached the original")
            if client.call("GET", original, headers={"X-Forwarded-For": ip()}).status_code != 401:
                failures.append(f"{deliverable}: an anonymous caller reached the original")
            checked += 1
        figures["deliverables_checked"] = checked
        stored = bucket.list_objects_v2(Bucket=env["S3_BUCKET"]).get("KeyCount", 0)
        figures["s3_objects"] = stored

        reconcile = subprocess.run(  # noqa: S603
            [PYTHON, "manage.py", "reconcile"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        figures["reconcile_exit"] = reconcile.returncode
        if reconcile.returncode != 0:
            failures.append(
                f"reconcile: exit {reconcile.returncode}\n{reconcile.stdout[-2000:]}{reconcile.stderr[-2000:]}"
            )

        scrape = {"Authorization": f"Bearer {env['METRICS_TOKEN']}"}
        if requests.get(f"{servers[1]}/metrics", timeout=30).status_code != 403:
            failures.append("/metrics answered without its token")
        text = requests.get(f"{servers[1]}/metrics", headers=scrape, timeout=30).text
        completed_line = next(
            (line for line in text.splitlines() if line.startswith('atelier_orders{status="completed"}')), ""
        )
        figures["metrics_completed"] = completed_line
        if not completed_line.endswith(f" {float(ORDERS + money_paths['completed'])}"):
            failures.append(f"/metrics disagrees: {completed_line!r}")
    except Exception as exc:
        failures.append(f"{type(exc).__name__}: {exc}")
    finally:
        procs.stop_all()
        try:
            with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        except Exception as exc:
            log(f"could not drop {database}: {exc}")
    figures["failures"] = failures
    print(json.dumps(figures, indent=2, default=str))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
