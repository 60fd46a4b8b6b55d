"""`make bench`'s lifecycle driver: orders from create to approve, with a real USDC transfer on the
Solana devchain, in 2 client threads; the latency of each step (the writes accept, deliver, approve
among them) and of the bare view asked by the same client between lifecycles, its baseline.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import secrets
import statistics
import threading
import time
from typing import Any

from bench.dataset import make_id

STEPS = ("bare", "create", "accept", "chain_transfer", "pay", "start", "deliver", "approve")
THREADS = 2
_RNG = random.Random()  # noqa: S311 - client addresses for the rate limiter, not security


def wallet_session(db: Any, wallet: str) -> str:
    """A wallet session row, as `identity.wallet_signin.signin_complete` writes it after a signature."""
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


def _ip() -> str:
    return f"{_RNG.randint(11, 223)}.{_RNG.randint(0, 255)}.{_RNG.randint(0, 255)}.{_RNG.randint(1, 254)}"


def lifecycle(
    base: str, url: str, meta: dict[str, Any], creds: dict[str, str], solana_url: str, count: int
) -> dict[str, Any]:
    """`count` lifecycles against the server at `base` (split over THREADS threads): the raw seconds
    of each step, the failures and the wall time. `summarize` merges rounds."""
    import psycopg
    import requests

    from payments.chains import PaymentInstructions
    from tests.payments import solana_helpers

    agent_headers = {"Authorization": f"Bearer {creds['lifecycle_agent_key']}"}
    steps: dict[str, list[float]] = {s: [] for s in STEPS}
    failures: list[str] = []
    lock = threading.Lock()
    per_thread = max(1, count // THREADS)

    def worker() -> None:
        session = requests.Session()
        buyer = solana_helpers.new_wallet(solana_url, usdc=10_000 * 10**6)
        with psycopg.connect(url) as db:
            token = wallet_session(db, str(buyer.pubkey()))
        buyer_headers = {"Authorization": f"Bearer {token}"}

        def call(step: str, method: str, path: str, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
            began = time.perf_counter()
            response = session.request(
                method,
                base + path,
                json=body if method != "GET" else None,
                headers={**headers, "X-Forwarded-For": _ip()},
                timeout=30,
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
                call("bare", "GET", "/bench/bare", {}, {})
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

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "completed": len(steps["approve"]),
        "failures": failures,
        "wall": time.perf_counter() - began,
        "steps": steps,
    }


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds of `lifecycle` against one server, merged: lifecycles per second and per-step latency."""
    completed = sum(r["completed"] for r in rounds)
    wall = sum(r["wall"] for r in rounds)
    steps = {name: [v for r in rounds for v in r["steps"][name]] for name in STEPS}
    return {
        "completed": completed,
        "failures": [f for r in rounds for f in r["failures"]],
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
