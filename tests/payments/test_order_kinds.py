"""The three order kinds of the seeds, paid for real on the devchains and driven through HTTP:
a subscription workspace, an agent hiring an agent, and an anonymous x402 purchase. Each ends
with the agent's payout confirmed on chain and the ledger balanced.

Also here: x402's refusals that need a chain (a reused hash, an underpaid or wrongly referenced
payment, a Base payment without the payer's proof), and each refusal leaves no row behind.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from eth_account import Account
from eth_account.messages import encode_defunct
from solders.keypair import Keypair

from atelier.openapi import document
from orders.models import Order, X402Intent
from payments.chains import PaymentInstructions
from payments.models import OutgoingTransfer, Payment, TransferStatus
from payments.tasks import process_transfer
from tests.conftest import Api, make_service
from tests.payments import evm_helpers, solana_helpers
from tests.payments.test_order_payments import assert_ledger_balanced, balance, ledger_snapshot
from tests.test_openapi import Contract

# Every test ends with the escrow on chain matching the ledger (payments.reconcile).
pytestmark = pytest.mark.usefixtures("reconciled")

USDC = 10**6
BRIEF = "Three logo directions for a fox-themed bakery, transparent PNG."
IMAGE = {"deliverable_url": "https://cdn.example.com/logo.png", "deliverable_media_type": "image"}


# --- measuring ------------------------------------------------------------------------------------


@contextmanager
def measured(name: str, *, max_queries: int) -> Iterator[CaptureQueriesContext]:
    """Count the queries of one request and time it (in process, the chains over loopback HTTP);
    printed for the closing note (`pytest -s`), and bounded so an N+1 fails here."""
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        yield queries
        elapsed = (time.perf_counter() - started) * 1000
    print(f"\n[measure] {name}: {len(queries)} queries, {elapsed:.1f} ms")
    assert len(queries) <= max_queries, [query["sql"] for query in queries.captured_queries]


@pytest.fixture(autouse=True)
def _memory_cache(settings: Any) -> None:
    # Rate-limit counters and the Solana genesis hash live in the cache: Redis in production, so
    # the measured queries are the app's own.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache.clear()  # locmem outlives the test: start each with fresh rate-limit counters


def settle_payout(chains: Any, order_id: str) -> OutgoingTransfer:
    """What the worker does with the payout queued on completion, to finality."""
    transfer = OutgoingTransfer.objects.get(order_id=order_id, kind="payout")
    for _ in range(3):
        if process_transfer(transfer.pk) == TransferStatus.CONFIRMED:
            break
        evm_helpers.mine(chains.evm.url, 2)  # Base needs 2 confirmations; Solana is final at once
    transfer.refresh_from_db()
    assert transfer.status == TransferStatus.CONFIRMED, transfer.last_error
    return transfer


@pytest.fixture
def chains(chains_up: Any) -> Any:
    return chains_up


def solana_payout(chains: Any, agent: Any) -> str:
    payout = solana_helpers.receiving_wallet(chains.solana.url)
    response = agent.api.patch("/api/agents/me", {"payout_chain": "solana", "payout_wallet": payout})
    assert response.status_code == 200, response.body
    return payout


# --- 1. a subscription workspace, on Solana ---------------------------------------------------------


def test_a_quota_pack_workspace_paid_on_solana_prompted_answered_delivered_and_paid_out(chains, buyer, agent):
    url = chains.solana.url
    payout = solana_payout(chains, agent)
    solana_helpers.fund_wallet(url, buyer.wallet, sol=10**9, usdc=100 * USDC)
    service = make_service(agent.agent, price_type="fixed", price="30.00", quota_limit=3)
    order = buyer.api.post("/api/orders", {"service_id": service.id, "brief": BRIEF, "payment_chain": "solana"})
    assert order.status_code == 201, order.body
    order = order.body["data"]
    instructions = PaymentInstructions(
        **{k: order["payment"][k] for k in ("chain", "escrow_address", "token_account", "token")}
    )
    tx = solana_helpers.pay_order(url, buyer.secret, instructions, 30 * USDC, order["payment_reference"])

    opened = buyer.api.patch(f"/api/orders/{order['id']}", {"action": "pay", "escrow_tx_hash": tx})

    assert opened.status_code == 200, opened.body
    opened = opened.body["data"]
    assert (opened["status"], opened["quota_left"]) == ("in_progress", 3)
    assert opened["workspace_expires_at"] is not None
    for i in range(3):
        with measured("POST /api/orders/{id}/generate", max_queries=15):
            prompt = buyer.api.post(f"/api/orders/{order['id']}/generate", {"prompt": f"Logo idea {i + 1}"})
        assert prompt.status_code == 201, prompt.body
        answer = {**IMAGE, "deliverable_url": f"https://cdn.example.com/idea-{i + 1}.png"}
        answered = agent.api.post(
            f"/api/orders/{order['id']}/deliver", {"deliverable_id": prompt.body["data"]["id"], **answer}
        )
        assert answered.status_code == 200, answered.body

    delivered = answered.body["data"]
    assert (delivered["status"], delivered["quota_left"]) == ("delivered", 0)
    assert [p["status"] for p in delivered["prompts"]] == ["delivered"] * 3
    seen = buyer.api.get(f"/api/orders/{order['id']}").body["data"]
    assert [p["prompt"] for p in seen["prompts"]] == ["Logo idea 1", "Logo idea 2", "Logo idea 3"]
    assert all(p["result"]["gated"] for p in seen["prompts"])  # a human buyer: previews until approval

    approved = buyer.api.patch(f"/api/orders/{order['id']}", {"action": "approve"})
    assert approved.body["data"]["status"] == "completed"
    settle_payout(chains, order["id"])
    assert balance("solana", payout) == 27 * USDC
    assert_ledger_balanced(Order.objects.get(pk=order["id"]))


# --- 2. an agent hiring an agent, on Base ------------------------------------------------------------


def test_an_agent_pays_another_agent_from_its_own_base_wallet_and_delivery_pays_out(chains, agent, other_agent):
    url = chains.evm.url
    seller_payout = evm_helpers.new_wallet(url, eth=0).address
    assert (
        agent.api.patch("/api/agents/me", {"payout_chain": "base", "payout_address_base": seller_payout}).status_code
        == 200
    )
    wallet = evm_helpers.new_wallet(url, usdc=100 * USDC)  # the buying agent's own wallet, funded
    body = {"payout_chain": "base", "payout_address_base": wallet.address}
    assert other_agent.api.patch("/api/agents/me", body).status_code == 200
    service = make_service(agent.agent, price="40.00")

    created = other_agent.api.post("/api/orders", {"service_id": service.id, "brief": BRIEF})
    assert created.status_code == 201, created.body
    order = created.body["data"]
    assert (order["buyer_kind"], order["payment_chain"]) == ("agent", "base")
    tx = evm_helpers.pay_order(url, wallet, order["payment"], 40 * USDC)
    evm_helpers.mine(url, 2)
    # Its declared payout address proves nothing: the sending key signs the order's reference.
    unproven = other_agent.api.patch(f"/api/orders/{order['id']}", {"action": "pay", "escrow_tx_hash": tx})
    assert (unproven.status_code, unproven.body["code"]) == (400, "payer_proof_required")
    proof = "0x" + wallet.sign_message(encode_defunct(text=order["payment"]["payer_proof_message"])).signature.hex()
    paid = other_agent.api.patch(
        f"/api/orders/{order['id']}", {"action": "pay", "escrow_tx_hash": tx, "payer_signature": proof}
    )
    assert paid.body["data"]["status"] == "paid", paid.body

    with measured("POST /api/orders/{id}/deliver (agent buyer: deliver + release)", max_queries=30):
        delivered = agent.api.post(f"/api/orders/{order['id']}/deliver", IMAGE)

    assert delivered.status_code == 200, delivered.body
    assert delivered.body["data"]["status"] == "completed"
    seen = other_agent.api.get(f"/api/orders/{order['id']}").body["data"]
    assert seen["deliverables"][0]["gated"] is False  # no watermark for an agent buyer
    settle_payout(chains, order["id"])
    assert balance("base", seller_payout) == 36 * USDC
    assert_ledger_balanced(Order.objects.get(pk=order["id"]))
    assert Payment.objects.get(order_id=order["id"]).payer == wallet.address


# --- 3. x402 --------------------------------------------------------------------------------------


def x402_header(accepted: dict[str, Any], tx: str, payer: str, signature: str = "") -> str:
    payload = {"transaction": tx, "payer": payer, "reference": accepted["extra"]["reference"]}
    if signature:
        payload["signature"] = signature
    document = {"x402Version": 2, "accepted": accepted, "payload": payload}
    return base64.b64encode(json.dumps(document).encode()).decode()


def requirements(response: Any, prefix: str) -> dict[str, Any]:
    assert response.status_code == 402, response.body
    header = json.loads(base64.b64decode(response["PAYMENT-REQUIRED"]))
    assert header["accepts"] == response.body["accepts"]
    assert header["x402Version"] == response.body["x402Version"] == 2
    return next(item for item in response.body["accepts"] if item["network"].startswith(prefix))


def pay_solana(url: str, accepted: dict[str, Any], payer: Keypair, amount: int | None = None, memo: str = "") -> str:
    instructions = PaymentInstructions(
        chain="solana",
        escrow_address=accepted["extra"]["payToOwner"],
        token_account=accepted["payTo"],
        token=accepted["asset"],
    )
    amount = int(accepted["amount"]) if amount is None else amount
    return solana_helpers.pay_order(url, payer, instructions, amount, memo or accepted["extra"]["reference"])


def funded_solana_payer(url: str) -> Keypair:
    return solana_helpers.new_wallet(url, sol=10**9, usdc=100 * USDC)


def test_x402_a_machine_pays_on_solana_and_gets_a_paid_order_completed_on_delivery(chains, agent, anonymous):
    url = chains.solana.url
    payout = solana_payout(chains, agent)
    service = make_service(agent.agent, price="25.00")
    body = {"service_id": service.id, "brief": BRIEF}

    with measured("POST /api/orders (x402: 402)", max_queries=6):
        required = anonymous.post("/api/orders", body)
    accepted = requirements(required, "solana:")
    contract = Contract(document())  # the 402 and the paid answer are what the OpenAPI document says
    contract.check(required, "POST", "/api/orders", body)
    genesis = solana_helpers.rpc(url, "getGenesisHash")
    assert accepted["network"] == f"solana:{genesis[:32]}"
    assert (accepted["amount"], accepted["maxTimeoutSeconds"], accepted["scheme"]) == ("25000000", 900, "exact")
    assert accepted["payTo"] != accepted["extra"]["payToOwner"]  # the escrow's USDC token account
    base_entry = requirements(required, "eip155:")
    assert base_entry["network"] == f"eip155:{chains.evm.chain.chain_id}"
    assert X402Intent.objects.get(pk=accepted["extra"]["reference"]).brief == BRIEF

    payer = funded_solana_payer(url)
    tx = pay_solana(url, accepted, payer)
    with measured("POST /api/orders (x402: paid retry, verified on chain)", max_queries=30):
        paid = anonymous.post("/api/orders", body, **{"X-PAYMENT": x402_header(accepted, tx, str(payer.pubkey()))})

    assert paid.status_code == 201, paid.body
    contract.check(paid, "POST", "/api/orders", body)
    order = paid.body["data"]
    assert (order["status"], order["buyer_kind"], order["buyer_wallet"]) == ("paid", "x402", str(payer.pubkey()))
    assert (order["escrow_tx_hash"], order["payment_reference"]) == (tx, accepted["extra"]["reference"])
    settlement = json.loads(base64.b64decode(paid["PAYMENT-RESPONSE"]))
    assert settlement == {
        "success": True,
        "transaction": tx,
        "network": accepted["network"],
        "payer": str(payer.pubkey()),
    }
    # The same paid retry again is the same order.
    again = anonymous.post("/api/orders", body, **{"X-PAYMENT": x402_header(accepted, tx, str(payer.pubkey()))})
    assert (again.status_code, again.body["data"]["id"]) == (201, order["id"])
    assert Order.objects.count() == 1

    delivered = agent.api.post(f"/api/orders/{order['id']}/deliver", IMAGE).body["data"]
    assert delivered["status"] == "completed"
    settle_payout(chains, order["id"])
    assert balance("solana", payout) == 22_500_000
    assert_ledger_balanced(Order.objects.get(pk=order["id"]))
    # The payer's wallet follows its order by signing requests (the product's per-request form).
    ts = str(int(time.time()))
    signature = str(payer.sign_message(f"atelier:{payer.pubkey()}:{ts}".encode()))
    query = urlencode({"wallet": str(payer.pubkey()), "wallet_sig": signature, "wallet_sig_ts": ts})
    followed = Api(Client()).get(f"/api/orders/{order['id']}?{query}")
    assert (followed.status_code, followed.body["data"]["viewer_role"]) == (200, "buyer")
    assert followed.body["data"]["deliverables"][0]["gated"] is False


def test_x402_on_base_needs_the_payers_proof_and_then_pays(chains, agent, anonymous):
    url = chains.evm.url
    service = make_service(agent.agent, price="25.00")
    body = {"service_id": service.id, "brief": BRIEF}
    accepted = requirements(anonymous.post("/api/orders", body), "eip155:")
    payer = evm_helpers.new_wallet(url, usdc=100 * USDC)
    tx = evm_helpers.pay_order(url, payer, {"token": accepted["asset"], "escrow_address": accepted["payTo"]}, 25 * USDC)
    evm_helpers.mine(url, 2)
    before = ledger_snapshot()

    unproven = anonymous.post("/api/orders", body, **{"X-PAYMENT": x402_header(accepted, tx, payer.address)})
    thief = Account.create()  # someone else's signature over the reference
    stolen_proof = (
        "0x"
        + Account.sign_message(
            encode_defunct(text=f"atelier:x402:{accepted['extra']['reference']}"), thief.key
        ).signature.hex()
    )
    stolen = anonymous.post(
        "/api/orders", body, **{"X-PAYMENT": x402_header(accepted, tx, payer.address, stolen_proof)}
    )

    for refused in (unproven, stolen):
        assert (refused.status_code, refused.body["code"]) == (400, "invalid_payment"), refused.body
    assert (Order.objects.count(), Payment.objects.count(), ledger_snapshot()) == (0, 0, before)

    proof = (
        "0x"
        + Account.sign_message(
            encode_defunct(text=f"atelier:x402:{accepted['extra']['reference']}"), payer.key
        ).signature.hex()
    )
    paid = anonymous.post("/api/orders", body, **{"X-PAYMENT": x402_header(accepted, tx, payer.address, proof)})
    assert paid.status_code == 201, paid.body
    assert (paid.body["data"]["status"], paid.body["data"]["buyer_chain"]) == ("paid", "base")


# --- x402 refusals ------------------------------------------------------------------------------------


@pytest.fixture
def x402_world(chains: Any, agent: Any, anonymous: Any) -> Any:
    class World:
        url = chains.solana.url
        service = make_service(agent.agent, price="25.00")
        body = {"service_id": service.id, "brief": BRIEF}

        def quote(self) -> dict[str, Any]:
            return requirements(anonymous.post("/api/orders", self.body), "solana:")

        def retry(self, header: str, body: dict[str, Any] | None = None) -> Any:
            return anonymous.post("/api/orders", body or self.body, **{"X-PAYMENT": header})

    return World()


def nothing_made(call: Callable[[], Any], status: int, code: str) -> Any:
    before = (ledger_snapshot(), list(Payment.objects.values_list("tx_hash", flat=True)), Order.objects.count())
    response = call()
    assert (response.status_code, response.body["code"]) == (status, code), response.body
    assert (ledger_snapshot(), list(Payment.objects.values_list("tx_hash", flat=True)), Order.objects.count()) == before
    return response


def test_x402_a_hash_pays_once_across_all_orders(x402_world, buyer, agent):
    accepted = x402_world.quote()
    payer = funded_solana_payer(x402_world.url)
    tx = pay_solana(x402_world.url, accepted, payer)
    assert x402_world.retry(x402_header(accepted, tx, str(payer.pubkey()))).status_code == 201

    second = x402_world.quote()  # a new reference, the old transaction
    nothing_made(lambda: x402_world.retry(x402_header(second, tx, str(payer.pubkey()))), 409, "tx_hash_used")
    # Nor can a signed-in buyer pay an order of its own with it.
    order = buyer.api.post("/api/orders", {**x402_world.body, "payment_chain": "solana"}).body["data"]
    refused = buyer.api.patch(f"/api/orders/{order['id']}", {"action": "pay", "escrow_tx_hash": tx})
    assert (refused.status_code, refused.body["code"]) == (409, "tx_hash_used")


def test_x402_an_underpaid_hash_is_402_with_the_requirements_again(x402_world):
    accepted = x402_world.quote()
    payer = funded_solana_payer(x402_world.url)
    tx = pay_solana(x402_world.url, accepted, payer, amount=int(accepted["amount"]) - 1)

    refused = x402_world.retry(x402_header(accepted, tx, str(payer.pubkey())))
    assert (refused.status_code, refused.body["code"]) == (402, "underpaid"), refused.body
    assert refused.body["accepts"][0]["extra"]["reference"] == accepted["extra"]["reference"]
    assert X402Intent.objects.get(pk=accepted["extra"]["reference"]).order_id is None
    assert Order.objects.count() == 0
    # The USDC is in escrow all the same: accounted for, and on its way back to the payer.
    unapplied = Payment.objects.get(tx_hash=tx)
    assert (unapplied.status, unapplied.reason, unapplied.order_id) == ("unapplied", "underpaid", None)
    assert unapplied.return_transfer.to_address == str(payer.pubkey())
    assert "returned to" in refused.body["error"]
    again = x402_world.retry(x402_header(accepted, tx, str(payer.pubkey())))
    assert (again.status_code, again.body["code"]) == (402, "underpaid")
    assert Payment.objects.filter(tx_hash=tx).count() == 1


def test_x402_a_payment_without_the_reference_memo_is_402(x402_world):
    accepted = x402_world.quote()
    payer = funded_solana_payer(x402_world.url)
    tx = pay_solana(x402_world.url, accepted, payer, memo="atl-someoneelses")

    nothing_made(lambda: x402_world.retry(x402_header(accepted, tx, str(payer.pubkey()))), 402, "memo_mismatch")


def test_x402_someone_elses_transfer_is_402(x402_world):
    accepted = x402_world.quote()
    payer = funded_solana_payer(x402_world.url)
    tx = pay_solana(x402_world.url, accepted, payer)
    claimed_by = str(Keypair().pubkey())

    nothing_made(lambda: x402_world.retry(x402_header(accepted, tx, claimed_by)), 402, "buyer_not_signer")


def test_x402_a_retry_with_another_request_is_409(x402_world):
    accepted = x402_world.quote()
    payer = funded_solana_payer(x402_world.url)
    tx = pay_solana(x402_world.url, accepted, payer)
    other = {**x402_world.body, "brief": "Something else entirely, please."}

    nothing_made(
        lambda: x402_world.retry(x402_header(accepted, tx, str(payer.pubkey())), other), 409, "x402_request_mismatch"
    )


def test_x402_for_a_quote_priced_service_is_refused(chains, agent, anonymous):
    service = make_service(agent.agent, price_type="quote", price="0.00")
    body = {"service_id": service.id, "brief": BRIEF}

    nothing_made(lambda: anonymous.post("/api/orders", body), 401, "authentication_required")
    header = x402_header({"network": "solana", "extra": {"reference": "atl-0000"}}, "1" * 88, str(Keypair().pubkey()))
    nothing_made(lambda: anonymous.post("/api/orders", body, **{"X-PAYMENT": header}), 400, "x402_unavailable")
    assert not X402Intent.objects.exists()


def test_x402_a_transaction_not_final_yet_is_402_pending_and_later_pays(chains, agent, anonymous):
    url = chains.evm.url
    service = make_service(agent.agent, price="25.00")
    body = {"service_id": service.id, "brief": BRIEF}
    accepted = requirements(anonymous.post("/api/orders", body), "eip155:")
    payer = evm_helpers.new_wallet(url, usdc=100 * USDC)
    tx = evm_helpers.pay_order(url, payer, {"token": accepted["asset"], "escrow_address": accepted["payTo"]}, 25 * USDC)
    proof = (
        "0x"
        + Account.sign_message(
            encode_defunct(text=f"atelier:x402:{accepted['extra']['reference']}"), payer.key
        ).signature.hex()
    )
    header = x402_header(accepted, tx, payer.address, proof)

    pending = nothing_made(lambda: anonymous.post("/api/orders", body, **{"X-PAYMENT": header}), 402, "payment_pending")
    assert int(pending["Retry-After"]) > 0

    evm_helpers.mine(url, 2)
    assert anonymous.post("/api/orders", body, **{"X-PAYMENT": header}).status_code == 201


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_x402_one_hash_raced_on_two_references_pays_one(chains, agent):
    if connection.vendor != "postgresql":
        pytest.skip("row locks and unique-index waits under real concurrency need PostgreSQL")
    # On Base the payer signs each reference it claims a transfer for; a payer (or a client bug)
    # racing one transfer on two references is stopped by the unique (chain, tx_hash) alone.
    url = chains.evm.url
    service = make_service(agent.agent, price="25.00")
    body = {"service_id": service.id, "brief": BRIEF}
    first, second = (requirements(Api(Client()).post("/api/orders", body), "eip155:") for _ in range(2))
    payer = evm_helpers.new_wallet(url, usdc=100 * USDC)
    tx = evm_helpers.pay_order(url, payer, {"token": first["asset"], "escrow_address": first["payTo"]}, 25 * USDC)
    evm_helpers.mine(url, 2)
    headers = []
    for accepted in (first, second):
        proof = (
            "0x"
            + Account.sign_message(
                encode_defunct(text=f"atelier:x402:{accepted['extra']['reference']}"), payer.key
            ).signature.hex()
        )
        headers.append(x402_header(accepted, tx, payer.address, proof))
    barrier = threading.Barrier(2)
    results: list[int] = []

    def submit(header: str) -> None:
        try:
            barrier.wait(timeout=30)
            results.append(Api(Client()).post("/api/orders", body, **{"X-PAYMENT": header}).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(header,)) for header in headers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [201, 409]
    assert Payment.objects.filter(tx_hash=tx).count() == 1
    assert Order.objects.count() == 1
    assert X402Intent.objects.filter(order__isnull=False).count() == 1
