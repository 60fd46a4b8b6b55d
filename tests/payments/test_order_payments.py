"""Whole orders paid for real: USDC transfers signed by the buyer's wallet on the devchains, verified
by the server over JSON-RPC, released to the agent (90%) or refunded, with the ledger balanced."""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from solders.keypair import Keypair

from orders.checkout.recheck import UNSEEN_CLAIM_TTL, payment_recheck
from orders.models import Order, OrderEvent, Status
from payments import chains
from payments.models import LedgerEntry, OutgoingTransfer, Payment, TransferStatus
from payments.tasks import process_transfer
from tests.conftest import make_service
from tests.payments import evm_helpers, solana_helpers

# Every test ends with the escrow on chain matching the ledger (payments.reconcile).
pytestmark = pytest.mark.usefixtures("reconciled")

PRICE = Decimal("25.00")
PRICE_UNITS = 25_000_000
AGENT_SHARE = 22_500_000
FEE = 2_500_000


def run_worker() -> int:
    """What `manage.py db_worker --batch` does with each queued, ready task, minus its connection
    housekeeping (which would close the test's transaction)."""
    ran = 0
    while (row := DBTaskResult.objects.ready().first()) is not None:
        row.claim("test-worker")
        result = row.task_result
        row.set_successful(row.task.call(*result.args, **result.kwargs))
        ran += 1
    return ran


def balance(chain: str, owner: str) -> int:
    return chains.client(chain).token_balance(owner)


def escrow(chain: str) -> str:
    return chains.client(chain).payment_instructions().escrow_address


def assert_ledger_balanced(order: Order) -> None:
    journals = LedgerEntry.objects.filter(order=order).values("journal").annotate(total=Sum("amount"))
    assert journals, "no ledger rows"
    assert all(row["total"] == 0 for row in journals), list(journals)


def ledger_snapshot() -> list[tuple[Any, ...]]:
    return list(LedgerEntry.objects.order_by("id").values_list("order_id", "kind", "account", "amount"))


class Solana:
    chain = "solana"

    def __init__(self, devchains: Any, buyer: Any, agent: Any) -> None:
        self.url = devchains.solana.url
        self.buyer, self.agent = buyer, agent
        solana_helpers.fund_wallet(self.url, buyer.wallet, sol=10**9, usdc=100 * 10**6)
        self.payout = solana_helpers.receiving_wallet(self.url)
        assert (
            agent.api.patch("/api/agents/me", {"payout_chain": "solana", "payout_wallet": self.payout}).status_code
            == 200
        )

    def pay(self, order: dict[str, Any], amount: int = PRICE_UNITS, reference: str | None = None) -> str:
        instructions = chains.client("solana").payment_instructions()
        return solana_helpers.pay_order(
            self.url, self.buyer.secret, instructions, amount, reference or order["payment_reference"]
        )

    def settle(self) -> None:
        """Solana devchain blocks are final at once."""


class Base:
    chain = "base"

    def __init__(self, devchains: Any, buyer: Any, agent: Any) -> None:
        self.url = devchains.evm.url
        self.buyer, self.agent = buyer, agent
        evm_helpers.fund(self.url, buyer.wallet, eth=10**18, usdc=100 * 10**6)
        self.payout = evm_helpers.new_wallet(self.url, eth=0).address
        body = {"payout_chain": "base", "payout_address_base": self.payout}
        assert agent.api.patch("/api/agents/me", body).status_code == 200

    def pay(self, order: dict[str, Any], amount: int = PRICE_UNITS, reference: str | None = None) -> str:
        tx = evm_helpers.pay_order(self.url, self.buyer.secret, order["payment"], amount)
        self.settle()
        return tx

    def settle(self) -> None:
        evm_helpers.mine(self.url, 2)  # the tests run with 2 confirmations


@pytest.fixture(params=["solana", "base"])
def chain(request: Any, chains_up: Any, buyer: Any, base_buyer: Any, agent: Any) -> Solana | Base:
    if request.param == "solana":
        return Solana(chains_up, buyer, agent)
    return Base(chains_up, base_buyer, agent)


def order_for(chain: Solana | Base, agent: Any) -> dict[str, Any]:
    service = make_service(agent.agent, price_type="fixed", price=str(PRICE))
    response = chain.buyer.api.post(
        "/api/orders",
        {"service_id": service.id, "brief": "Three logo directions, transparent PNG.", "payment_chain": chain.chain},
    )
    assert response.status_code == 201, response.body
    return response.body["data"]


def pay(chain: Solana | Base, order: dict[str, Any], tx: str) -> Any:
    return chain.buyer.api.patch(
        f"/api/orders/{order['id']}", {"action": "pay", "escrow_tx_hash": tx, "payment_chain": chain.chain}
    )


def test_a_whole_order_pays_the_agent_90_percent_and_escrow_keeps_10(
    chain: Solana | Base, agent: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    order = order_for(chain, agent)
    assert order["status"] == "quoted"
    instructions = order["payment"]
    assert instructions["amount_base_units"] == PRICE_UNITS
    assert instructions["escrow_address"] == escrow(chain.chain)
    escrow_before = balance(chain.chain, escrow(chain.chain))

    paid = pay(chain, order, chain.pay(order))
    assert paid.status_code == 200, paid.body
    assert paid.body["data"]["status"] == "paid"
    assert balance(chain.chain, escrow(chain.chain)) == escrow_before + PRICE_UNITS

    assert agent.api.post(f"/api/orders/{order['id']}/start").status_code == 200
    # A document: an image deliverable would queue its fetch (orders.deliverables.fetching), a second task below.
    delivered = agent.api.post(
        f"/api/orders/{order['id']}/deliver",
        {"deliverable_url": "https://cdn.example.com/logo.pdf", "deliverable_media_type": "document"},
    )
    assert delivered.body["data"]["status"] == "delivered"
    with django_capture_on_commit_callbacks(execute=True):
        approved = chain.buyer.api.patch(f"/api/orders/{order['id']}", {"action": "approve"})
    assert approved.body["data"]["status"] == "completed"

    assert run_worker() == 1
    chain.settle()
    transfer = OutgoingTransfer.objects.get(order_id=order["id"], kind="payout")
    if transfer.status != TransferStatus.CONFIRMED:
        assert process_transfer(transfer.pk) == TransferStatus.CONFIRMED

    assert balance(chain.chain, chain.payout) == AGENT_SHARE
    assert balance(chain.chain, escrow(chain.chain)) == escrow_before + FEE
    view = chain.buyer.api.get(f"/api/orders/{order['id']}").body["data"]
    assert view["transfers"] == [
        {
            "kind": "payout",
            "chain": chain.chain,
            "to_address": chain.payout,
            "amount_base_units": AGENT_SHARE,
            "status": "confirmed",
            "tx_hash": transfer.tx_hash,
            "error": None,
            "held_reason": None,
        }
    ]
    order_row = Order.objects.get(pk=order["id"])
    assert_ledger_balanced(order_row)
    accounts = dict(
        LedgerEntry.objects.filter(order=order_row)
        .values("account")
        .annotate(total=Sum("amount"))
        .values_list("account", "total")
    )
    assert accounts == {
        "escrow_wallet": FEE,
        "order_escrow": 0,
        "agent_payable": 0,
        "platform_revenue": -FEE,
    }
    actions = list(OrderEvent.objects.filter(order=order_row).order_by("id").values_list("action", flat=True))
    assert actions[-1] == "payout_sent"


def test_a_worker_killed_between_signing_and_sending_pays_the_agent_once(
    chain: Solana | Base,
    agent: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    order = order_for(chain, agent)
    assert pay(chain, order, chain.pay(order)).status_code == 200
    agent.api.post(
        f"/api/orders/{order['id']}/deliver",
        {"deliverable_url": "https://x.example/a", "deliverable_media_type": "link"},
    )
    chain.buyer.api.patch(f"/api/orders/{order['id']}", {"action": "approve"})  # its task is not run here
    transfer = OutgoingTransfer.objects.get(order_id=order["id"], kind="payout")

    client_class = type(chains.client(chain.chain))
    real_send = client_class.send_raw

    def die(self: Any, raw: bytes) -> None:
        raise KeyboardInterrupt("worker killed after signing, before sending")

    monkeypatch.setattr(client_class, "send_raw", die)
    with pytest.raises(KeyboardInterrupt):
        process_transfer(transfer.pk)
    transfer.refresh_from_db()
    assert transfer.status == TransferStatus.SIGNED
    assert transfer.raw_tx is not None
    signed_bytes = bytes(transfer.raw_tx)

    monkeypatch.setattr(client_class, "send_raw", real_send)
    process_transfer(transfer.pk)  # the restarted worker sends the stored bytes
    chain.settle()
    process_transfer(transfer.pk)
    process_transfer(transfer.pk)  # and a duplicate run changes nothing
    transfer.refresh_from_db()
    assert transfer.status == TransferStatus.CONFIRMED
    assert transfer.raw_tx is not None
    assert bytes(transfer.raw_tx) == signed_bytes
    assert balance(chain.chain, chain.payout) == AGENT_SHARE
    assert LedgerEntry.objects.filter(order_id=order["id"], kind="payout_out").count() == 2  # one journal, two rows


def test_cancelling_a_paid_order_refunds_the_buyer_in_full(chain: Solana | Base, agent: Any) -> None:
    order = order_for(chain, agent)
    before = balance(chain.chain, chain.buyer.wallet)
    assert pay(chain, order, chain.pay(order)).status_code == 200
    assert balance(chain.chain, chain.buyer.wallet) == before - PRICE_UNITS

    cancelled = chain.buyer.api.patch(f"/api/orders/{order['id']}", {"action": "cancel", "reason": "Changed my mind."})
    assert cancelled.body["data"]["status"] == "cancelled"
    refund = OutgoingTransfer.objects.get(order_id=order["id"])
    assert (refund.kind, refund.to_address, refund.amount_base_units) == ("refund", chain.buyer.wallet, PRICE_UNITS)
    process_transfer(refund.pk)
    chain.settle()
    assert process_transfer(refund.pk) == TransferStatus.CONFIRMED
    assert balance(chain.chain, chain.buyer.wallet) == before
    assert_ledger_balanced(Order.objects.get(pk=order["id"]))


def test_an_overpayment_is_recorded_and_refunded_on_approval(chain: Solana | Base, agent: Any) -> None:
    order = order_for(chain, agent)
    assert pay(chain, order, chain.pay(order, amount=PRICE_UNITS + 1_000_000)).status_code == 200
    agent.api.post(
        f"/api/orders/{order['id']}/deliver",
        {"deliverable_url": "https://x.example/a", "deliverable_media_type": "link"},
    )
    chain.buyer.api.patch(f"/api/orders/{order['id']}", {"action": "approve"})
    transfers = dict(OutgoingTransfer.objects.filter(order_id=order["id"]).values_list("kind", "amount_base_units"))
    assert transfers == {"payout": AGENT_SHARE, "refund": 1_000_000}
    assert LedgerEntry.objects.filter(order_id=order["id"], kind="overpayment_due").exists()
    assert_ledger_balanced(Order.objects.get(pk=order["id"]))


# --- refused payments: a clear 4xx, no ledger row, the order unchanged ----------------------------


def refused(chain: Solana | Base, order: dict[str, Any], tx: str, status: int, code: str) -> None:
    ledger_before = ledger_snapshot()
    response = pay(chain, order, tx)
    assert response.status_code == status, response.body
    assert response.body["code"] == code
    assert ledger_snapshot() == ledger_before
    assert Order.objects.get(pk=order["id"]).status == order["status"]
    assert not Payment.objects.filter(order_id=order["id"], tx_hash=tx).exists()


def test_an_underpayment_is_refused_recorded_and_returned(chain: Solana | Base, agent: Any) -> None:
    """The buyer is told what arrived and what is missing; the money does not sit in escrow unowned."""
    order = order_for(chain, agent)
    before = balance(chain.chain, chain.buyer.wallet)
    tx = chain.pay(order, amount=PRICE_UNITS - 5_000_000)
    response = pay(chain, order, tx)
    assert (response.status_code, response.body["code"]) == (400, "underpaid"), response.body
    details = response.body["details"]
    assert (details["received_base_units"], details["due_base_units"], details["missing_base_units"]) == (
        PRICE_UNITS - 5_000_000,
        PRICE_UNITS,
        5_000_000,
    )
    assert "Received 20 USDC of 25 USDC due (5 USDC missing)" in response.body["error"]
    assert Order.objects.get(pk=order["id"]).status == "quoted"

    view = chain.buyer.api.get(f"/api/orders/{order['id']}").body["data"]
    [unapplied] = view["unapplied_transfers"]
    assert (unapplied["reason"], unapplied["missing_base_units"], unapplied["returned_to"]) == (
        "underpaid",
        5_000_000,
        chain.buyer.wallet,
    )
    agent_view = agent.api.get(f"/api/orders/{order['id']}").body["data"]
    assert agent_view["unapplied_transfers"] == view["unapplied_transfers"]

    again = pay(chain, order, tx)  # the same answer again, nothing more written
    assert (again.status_code, again.body["code"]) == (400, "underpaid")
    returned = OutgoingTransfer.objects.get(payment__tx_hash=tx)
    assert (returned.kind, returned.amount_base_units) == ("return", PRICE_UNITS - 5_000_000)
    process_transfer(returned.pk)
    chain.settle()
    assert process_transfer(returned.pk) == TransferStatus.CONFIRMED
    assert balance(chain.chain, chain.buyer.wallet) == before
    journals = LedgerEntry.objects.filter(payment__tx_hash=tx).values("journal").annotate(total=Sum("amount"))
    assert len(journals) == 2
    assert all(row["total"] == 0 for row in journals)
    # Paying the full price still works.
    assert pay(chain, order, chain.pay(order)).status_code == 200


def test_a_malformed_hash_is_refused(chain: Solana | Base, agent: Any) -> None:
    order = order_for(chain, agent)
    refused(chain, order, "not-a-hash", 400, "malformed_tx_hash")


def test_a_solana_payment_without_the_orders_reference_is_refused(chains_up: Any, buyer: Any, agent: Any) -> None:
    chain = Solana(chains_up, buyer, agent)
    order = order_for(chain, agent)
    refused(chain, order, chain.pay(order, reference="atl-someotherorder"), 400, "memo_mismatch")


def test_a_transaction_pays_one_order_only(chain: Solana | Base, agent: Any) -> None:
    first = order_for(chain, agent)
    tx = chain.pay(first)
    second = order_for(chain, agent)
    assert pay(chain, first, tx).status_code == 200
    refused(chain, second, tx, 409, "tx_hash_used")


def test_a_hash_from_another_buyer_is_refused(chains_up: Any, buyer: Any, other_buyer: Any, agent: Any) -> None:
    victim = Solana(chains_up, buyer, agent)
    order = order_for(victim, agent)
    tx = victim.pay(order)
    thief = Solana(chains_up, other_buyer, agent)
    stolen = order_for(thief, agent)
    refused(thief, stolen, tx, 400, "memo_mismatch")  # its memo binds it to the victim's order
    assert pay(victim, order, tx).status_code == 200  # the rightful buyer can still use it


def test_paying_an_order_already_paid_is_a_conflict(chain: Solana | Base, agent: Any) -> None:
    order = order_for(chain, agent)
    first = chain.pay(order)
    assert pay(chain, order, first).status_code == 200
    again = pay(chain, order, first)
    assert again.status_code == 200  # the same transaction again: a no-op
    second = chain.pay(order)
    response = pay(chain, order, second)
    assert response.status_code == 409
    assert response.body["code"] == "invalid_transition"
    # The second transfer is in escrow all the same: recorded against the order and returned.
    assert response.body["details"]["unapplied"]["reason"] == "order_not_payable"
    assert Payment.objects.filter(order_id=order["id"], status="verified").count() == 1
    unapplied = Payment.objects.get(order_id=order["id"], status="unapplied")
    assert (unapplied.tx_hash, unapplied.return_transfer.amount_base_units) == (second, PRICE_UNITS)


def test_the_chain_being_down_is_a_503_and_changes_nothing(chain: Solana | Base, agent: Any, settings: Any) -> None:
    order = order_for(chain, agent)
    tx = chain.pay(order)
    if chain.chain == "solana":
        settings.SOLANA_RPC_URL = "http://127.0.0.1:9"
    else:
        settings.BASE_RPC_URL = "http://127.0.0.1:9"
    response = pay(chain, order, tx)
    assert response.status_code == 503
    assert response.body["code"] == "chain_unavailable"
    assert Order.objects.get(pk=order["id"]).status == "quoted"
    assert not Payment.objects.exists()


def test_a_payment_not_final_yet_waits_and_a_recheck_pays_it(chains_up: Any, base_buyer: Any, agent: Any) -> None:
    chain = Base(chains_up, base_buyer, agent)
    order = order_for(chain, agent)
    tx = evm_helpers.pay_order(chain.url, base_buyer.secret, order["payment"], PRICE_UNITS)  # 1 confirmation of 2

    waiting = pay(chain, order, tx)
    assert waiting.status_code == 202, waiting.body
    assert waiting.body["data"]["status"] == "quoted"
    assert waiting.body["data"]["payment_pending"] is True
    assert payment_recheck(order["id"]) == "pending"

    evm_helpers.mine(chain.url, 2)
    assert payment_recheck(order["id"]) == "paid"
    view = chain.buyer.api.get(f"/api/orders/{order['id']}").body["data"]
    assert (view["status"], view["payment_pending"]) == ("paid", False)
    actions = list(OrderEvent.objects.filter(order_id=order["id"]).order_by("id").values_list("action", flat=True))
    assert actions == ["create", "payment_pending", "accept", "pay"]


def test_a_hash_the_chain_never_shows_stops_being_checked_after_minutes(chain: Solana | Base, agent: Any) -> None:
    """A typo or another network's hash: pending, then dropped after UNSEEN_CLAIM_TTL, not a day."""
    order = order_for(chain, agent)
    unknown = str(Keypair().sign_message(b"never sent")) if chain.chain == "solana" else "0x" + "ab" * 32

    assert pay(chain, order, unknown).status_code == 202
    claimed = OrderEvent.objects.get(order_id=order["id"], action="payment_pending")
    assert claimed.data["seen"] is False
    assert payment_recheck(order["id"]) == "pending"
    Payment.objects.filter(order_id=order["id"]).update(created_at=timezone.now() - UNSEEN_CLAIM_TTL)
    assert payment_recheck(order["id"]) == "expired"
    assert not Payment.objects.filter(order_id=order["id"]).exists()
    dropped = OrderEvent.objects.get(order_id=order["id"], action="payment_expired")
    assert dropped.data["code"] == "claim_not_found"
    assert Order.objects.get(pk=order["id"]).status == Status.QUOTED


def test_a_transaction_the_chain_has_seen_keeps_waiting_past_the_unseen_limit(
    chains_up: Any, base_buyer: Any, agent: Any
) -> None:
    chain = Base(chains_up, base_buyer, agent)
    order = order_for(chain, agent)
    tx = evm_helpers.pay_order(chain.url, base_buyer.secret, order["payment"], PRICE_UNITS)  # 1 confirmation of 2

    assert pay(chain, order, tx).status_code == 202
    assert OrderEvent.objects.get(order_id=order["id"], action="payment_pending").data["seen"] is True
    Payment.objects.filter(order_id=order["id"]).update(created_at=timezone.now() - 2 * UNSEEN_CLAIM_TTL)
    assert payment_recheck(order["id"]) == "pending"
    evm_helpers.mine(chain.url, 2)
    assert payment_recheck(order["id"]) == "paid"


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_one_hash_raced_on_two_orders_pays_one(chains_up: Any, base_buyer: Any, agent: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks and unique-index waits under real concurrency need PostgreSQL")
    # On Base a transfer carries no memo, so one transaction verifies for both orders of this
    # buyer: only the unique (chain, tx_hash) can stop it paying both.
    chain = Base(chains_up, base_buyer, agent)
    first, second = order_for(chain, agent), order_for(chain, agent)
    tx = chain.pay(first)
    results: list[int] = []
    barrier = threading.Barrier(2)

    def submit(order: dict[str, Any]) -> None:
        try:
            barrier.wait()
            results.append(pay(chain, order, tx).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(order,)) for order in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200, 409]
    assert Payment.objects.filter(tx_hash=tx).count() == 1
    assert Order.objects.filter(status=Status.PAID).count() == 1
    assert LedgerEntry.objects.filter(kind="escrow_in").count() == 2  # one journal
