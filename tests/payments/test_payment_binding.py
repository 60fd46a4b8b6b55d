"""Attacks on the binding between a transfer and an order, replayed over HTTP on the devchains.

The rule (DESIGN.md section 5, README "Binding a payment to its order"): a self-declared address is
never proof of who paid. A transfer binds to an order only through the order's memo (Solana), a
signature by the sending key over the order's reference, or a wallet session of that key; a claim
that is not final yet never blocks the rightful order.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from eth_account import Account
from eth_account.messages import encode_defunct

from orders.checkout.recheck import payment_recheck
from orders.models import Order, Status
from payments.models import LedgerEntry, Payment, PaymentStatus
from tests.conftest import make_service
from tests.payments import evm_helpers
from tests.payments.test_order_payments import PRICE, PRICE_UNITS, Base, Solana, order_for, pay

# Every test ends with the escrow on chain matching the ledger (payments.reconcile).
pytestmark = pytest.mark.usefixtures("reconciled")


@pytest.fixture(params=["solana", "base"])
def either_chain(request: Any, chains_up: Any, buyer: Any, base_buyer: Any, agent: Any) -> Solana | Base:
    if request.param == "solana":
        return Solana(chains_up, buyer, agent)
    return Base(chains_up, base_buyer, agent)


def pay_proof(account: Any, reference: str) -> str:
    """What the sending wallet signs on Base to claim its transfer for an order (EIP-191)."""
    message = encode_defunct(text=f"atelier:pay:{reference}")
    return "0x" + Account.sign_message(message, account.key).signature.hex()


def agent_order(buyer_agent: Any, seller: Any, chain: str) -> dict[str, Any]:
    service = make_service(seller.agent, price_type="fixed", price=str(PRICE))
    response = buyer_agent.api.post(
        "/api/orders", {"service_id": service.id, "brief": "Same price as the victim's.", "payment_chain": chain}
    )
    assert response.status_code == 201, response.body
    return response.body["data"]


def test_an_agent_declaring_a_buyers_base_address_cannot_take_the_buyers_payment(
    chains_up: Any, base_buyer: Any, agent: Any, other_agent: Any
) -> None:
    victim = Base(chains_up, base_buyer, agent)
    order = order_for(victim, agent)
    tx = victim.pay(order)

    # The thief watches the chain, declares the victim's sender address as its own, and claims the hash.
    declared = other_agent.api.patch(
        "/api/agents/me", {"payout_chain": "base", "payout_address_base": base_buyer.wallet}
    )
    assert declared.status_code == 200
    stolen = agent_order(other_agent, agent, "base")
    claim = other_agent.api.patch(
        f"/api/orders/{stolen['id']}", {"action": "pay", "escrow_tx_hash": tx, "payment_chain": "base"}
    )
    assert claim.status_code == 400, claim.body
    assert claim.body["code"] == "payer_proof_required"
    assert not Payment.objects.filter(order_id=stolen["id"]).exists()

    # A made-up proof does not help: the signature must recover to the transaction's sender.
    forged = pay_proof(Account.create(), stolen["payment_reference"])
    claim = other_agent.api.patch(
        f"/api/orders/{stolen['id']}",
        {"action": "pay", "escrow_tx_hash": tx, "payment_chain": "base", "payer_signature": forged},
    )
    assert claim.status_code == 400, claim.body
    assert claim.body["code"] == "buyer_not_sender"

    assert pay(victim, order, tx).status_code == 200
    assert Order.objects.get(pk=stolen["id"]).status == Status.QUOTED


def test_an_agent_buyer_pays_on_base_with_a_proof_signed_by_the_sending_key(
    chains_up: Any, agent: Any, other_agent: Any
) -> None:
    wallet = evm_helpers.new_wallet(chains_up.evm.url, usdc=100 * 10**6)
    order = agent_order(other_agent, agent, "base")
    tx = evm_helpers.pay_order(chains_up.evm.url, wallet, order["payment"], PRICE_UNITS)
    evm_helpers.mine(chains_up.evm.url, 2)
    paid = other_agent.api.patch(
        f"/api/orders/{order['id']}",
        {
            "action": "pay",
            "escrow_tx_hash": tx,
            "payment_chain": "base",
            "payer_signature": pay_proof(wallet, order["payment_reference"]),
        },
    )
    assert paid.status_code == 200, paid.body
    assert paid.body["data"]["status"] == "paid"
    assert Payment.objects.get(order_id=order["id"]).payer == wallet.address


def test_a_stranger_cannot_lock_a_buyers_unconfirmed_transfer_out_of_its_order(
    chains_up: Any, base_buyer: Any, agent: Any, other_agent: Any
) -> None:
    victim = Base(chains_up, base_buyer, agent)
    order = order_for(victim, agent)
    thief_wallet = evm_helpers.new_wallet(victim.url)
    stolen = agent_order(other_agent, agent, "base")
    proof = pay_proof(thief_wallet, stolen["payment_reference"])
    tx = evm_helpers.pay_order(victim.url, base_buyer.secret, order["payment"], PRICE_UNITS)  # 1 of 2 confirmations

    # A decoy hash nobody sent, then the victim's transfer, claimed on the thief's own order.

    def claim(tx_hash: str) -> Any:
        return other_agent.api.patch(
            f"/api/orders/{stolen['id']}",
            {"action": "pay", "escrow_tx_hash": tx_hash, "payment_chain": "base", "payer_signature": proof},
        )

    assert claim("0x" + "ab" * 32).status_code == 202  # not on chain: waits, holds nothing
    refused = claim(tx)  # seen on chain (not final yet): checked now, before anything is held
    assert refused.status_code == 400, refused.body
    assert refused.body["code"] == "buyer_not_sender"

    waiting = pay(victim, order, tx)
    assert waiting.status_code == 202, waiting.body
    evm_helpers.mine(victim.url, 2)
    assert payment_recheck(order["id"]) == "paid"
    assert Order.objects.get(pk=order["id"]).status == Status.PAID
    assert payment_recheck(stolen["id"]) == "pending"  # the decoy waits, holding nothing, for a day
    Payment.objects.filter(order_id=stolen["id"]).update(created_at=timezone.now() - timedelta(hours=25))
    assert payment_recheck(stolen["id"]) == "expired"
    assert not Payment.objects.filter(order_id=stolen["id"]).exists()
    assert Order.objects.get(pk=stolen["id"]).status == Status.QUOTED


def test_a_claim_made_before_the_transfer_lands_does_not_block_its_rightful_order(
    chains_up: Any, base_buyer: Any, agent: Any, other_agent: Any, settings: Any
) -> None:
    """The thief sees the victim's transaction in the mempool and claims its hash before it is mined."""
    victim = Base(chains_up, base_buyer, agent)
    order = order_for(victim, agent)
    thief_wallet = evm_helpers.new_wallet(victim.url)
    stolen = agent_order(other_agent, agent, "base")
    signed, tx = evm_helpers.sign_payment(victim.url, base_buyer.secret, order["payment"], PRICE_UNITS)

    early = other_agent.api.patch(
        f"/api/orders/{stolen['id']}",
        {
            "action": "pay",
            "escrow_tx_hash": tx,
            "payment_chain": "base",
            "payer_signature": pay_proof(thief_wallet, stolen["payment_reference"]),
        },
    )
    assert early.status_code == 202, early.body
    evm_helpers.send_raw(victim.url, signed)
    victim.settle()

    assert pay(victim, order, tx).status_code == 200
    assert Order.objects.get(pk=order["id"]).status == Status.PAID
    assert payment_recheck(stolen["id"]) == "rejected"
    assert not Payment.objects.filter(order_id=stolen["id"]).exists()


def test_every_pending_claim_of_an_order_is_rechecked(chains_up: Any, base_buyer: Any, agent: Any) -> None:
    """The buyer's own decoy first, then its real transfer: the re-check follows both, not the first."""
    chain = Base(chains_up, base_buyer, agent)
    order = order_for(chain, agent)
    assert pay(chain, order, "0x" + "cd" * 32).status_code == 202
    tx = evm_helpers.pay_order(chain.url, base_buyer.secret, order["payment"], PRICE_UNITS)
    assert pay(chain, order, tx).status_code == 202
    evm_helpers.mine(chain.url, 2)
    assert payment_recheck(order["id"]) == "paid"
    assert Order.objects.get(pk=order["id"]).status == Status.PAID


def test_a_solana_transfer_carrying_another_orders_memo_cannot_be_claimed(
    chains_up: Any, buyer: Any, other_buyer: Any, agent: Any
) -> None:
    victim = Solana(chains_up, buyer, agent)
    order = order_for(victim, agent)
    tx = victim.pay(order)
    thief = Solana(chains_up, other_buyer, agent)
    stolen = order_for(thief, agent)
    refused = pay(thief, stolen, tx)
    assert refused.status_code == 400, refused.body
    assert refused.body["code"] == "memo_mismatch"
    assert not Payment.objects.filter(order_id=stolen["id"]).exists()
    assert pay(victim, order, tx).status_code == 200


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_submits_of_one_valid_payment_are_all_the_same_no_op(
    either_chain: Solana | Base, agent: Any
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the test database on SQLite is in memory, where concurrent writers fail at once")
    chain = either_chain
    order = order_for(chain, agent)
    tx = chain.pay(order)
    results: list[tuple[int, str]] = []
    barrier = threading.Barrier(6)

    def submit() -> None:
        try:
            barrier.wait()
            response = pay(chain, order, tx)
            results.append((response.status_code, (response.body or {}).get("code", "")))
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [(200, "")] * 6
    assert Payment.objects.filter(tx_hash=tx, status=PaymentStatus.VERIFIED).count() == 1
    assert LedgerEntry.objects.filter(order_id=order["id"], kind="escrow_in").count() == 2  # one journal
    assert Order.objects.get(pk=order["id"]).status == Status.PAID


@pytest.mark.parametrize(
    ("chain_name", "signature", "code"),
    [
        ("base", "0x1234", "invalid_payer_signature"),
        ("base", "not hex at all", "invalid_payer_signature"),
        ("base", "0x" + "zz" * 65, "invalid_payer_signature"),
        ("solana", "0x" + "ab" * 65, "validation_error"),
    ],
)
def test_a_malformed_payer_signature_is_a_400_and_writes_nothing(
    chains_up: Any, base_buyer: Any, agent: Any, chain_name: str, signature: str, code: str
) -> None:
    chain = Base(chains_up, base_buyer, agent)
    order = order_for(chain, agent)
    tx = "0x" + "ef" * 32 if chain_name == "base" else "5" * 88
    response = base_buyer.api.patch(
        f"/api/orders/{order['id']}",
        {"action": "pay", "escrow_tx_hash": tx, "payment_chain": chain_name, "payer_signature": signature},
    )
    assert response.status_code == 400, response.body
    assert response.body["code"] == code
    assert "payer_signature" in response.body["details"]
    assert not Payment.objects.exists()
