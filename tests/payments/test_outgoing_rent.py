"""An outgoing transfer never costs the escrow more than a network fee.

The rent farm: an attacker sends 0.01 USDC that cannot pay anything (an unknown memo) from a token
account it closes in the same transaction. A return that re-creates the account pays ~0.00204 SOL of
rent from the escrow hot wallet, which the attacker takes back by closing the account again, every
scan round. Returns and refunds now go only to a token account that exists when the transfer is
built, of an owner who signed the paying transaction; anything else is held for staff.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    close_account,
    get_associated_token_address,
)
from spl.token.models import CloseAccountParams

from orders.checkout.escrow_scan import escrow_scan
from orders.models import Order, OrderEvent
from payments import chains
from payments.models import OutgoingTransfer, Payment, TransferStatus
from payments.tasks import process_transfer, release_held_transfers
from tests.orders.test_order_pages import browser_of, page
from tests.payments import solana_helpers
from tests.payments.solana_helpers import LAMPORTS_PER_SOL, USDC
from tests.payments.test_escrow_scan import reconcile_output
from tests.payments.test_order_payments import Solana, order_for, pay
from webhooks.models import WebhookDelivery

CYCLES = 3
STAKE = 10_000  # 0.01 USDC: at the automatic-return minimum


@pytest.fixture
def fresh_solana(settings: Any, db: None) -> Iterator[Any]:
    with solana_helpers.running_devchain() as solana:
        solana_helpers.use_devchain(settings, solana)
        yield solana


def lamports(url: str, address: Pubkey | str) -> int:
    return int(solana_helpers.rpc(url, "getBalance", str(address), {"commitment": "confirmed"})["value"])


def account_exists(url: str, address: Pubkey) -> bool:
    info = solana_helpers.rpc(url, "getAccountInfo", str(address), {"encoding": "base64"})
    return info["value"] is not None


def farm_once(url: str, attacker: Keypair, memo: str) -> str:
    """Send the whole USDC account's 0.01 to escrow with a memo that pays nothing, and close the
    account in the same transaction (its rent goes back to the attacker)."""
    instructions = chains.client("solana").payment_instructions()
    mint = Pubkey.from_string(instructions.token)
    source = get_associated_token_address(attacker.pubkey(), mint)
    close = close_account(
        CloseAccountParams(
            program_id=TOKEN_PROGRAM_ID, account=source, dest=attacker.pubkey(), owner=attacker.pubkey(), signers=[]
        )
    )
    return solana_helpers.send_instructions(
        url,
        attacker,
        [
            solana_helpers.token_transfer(attacker, mint, Pubkey.from_string(instructions.token_account), STAKE),
            solana_helpers.memo(attacker, memo),
            close,
        ],
    )


def send_everything() -> None:
    for transfer in OutgoingTransfer.objects.exclude(status=TransferStatus.CONFIRMED):
        process_transfer(transfer.pk)
        process_transfer(transfer.pk)


def test_the_rent_farm_costs_the_escrow_nothing_beyond_fees(fresh_solana: Any) -> None:
    url = fresh_solana.url
    escrow = chains.client("solana").payment_instructions().escrow_address
    attacker = solana_helpers.new_wallet(url, sol=LAMPORTS_PER_SOL, usdc=STAKE)
    mint = Pubkey.from_string(chains.client("solana").payment_instructions().token)
    attacker_account = get_associated_token_address(attacker.pubkey(), mint)

    # The attacker's SOL, counting the rent locked in its USDC account (its own to take back).
    def attacker_sol() -> int:
        locked = lamports(url, attacker_account) if account_exists(url, attacker_account) else 0
        return lamports(url, attacker.pubkey()) + locked

    escrow_before, attacker_before = lamports(url, escrow), attacker_sol()

    for cycle in range(CYCLES):
        if not account_exists(url, attacker_account):
            break  # nothing came back to close: the farm has stopped
        farm_once(url, attacker, f"atl-nobody-{cycle}")
        escrow_scan("solana")
        send_everything()

    escrow_spent = escrow_before - lamports(url, escrow)
    attacker_gain = attacker_sol() - attacker_before
    print(f"rent farm over {CYCLES} cycles: escrow spent {escrow_spent} lamports, attacker gained {attacker_gain}")
    assert escrow_spent == 0, f"the escrow paid {escrow_spent} lamports for returns nobody can receive"
    assert attacker_gain < 0, "the attacker paid its own fees and gained nothing"
    held = OutgoingTransfer.objects.get(kind="return")
    assert held.status == TransferStatus.HELD
    assert "no USDC account" in held.held_reason
    assert not account_exists(url, attacker_account)


def test_a_return_goes_to_the_source_account_when_it_is_still_open(fresh_solana: Any) -> None:
    """A plain mistaken transfer (an unknown memo) comes back, and costs only the fee."""
    url = fresh_solana.url
    escrow = chains.client("solana").payment_instructions().escrow_address
    sender = solana_helpers.new_wallet(url, usdc=5 * USDC)
    instructions = chains.client("solana").payment_instructions()
    solana_helpers.pay_order(url, sender, instructions, USDC, "atl-nobodysreference")
    before = lamports(url, escrow)
    escrow_scan("solana")
    send_everything()
    returned = OutgoingTransfer.objects.get(kind="return")
    assert returned.status == TransferStatus.CONFIRMED
    assert chains.client("solana").token_balance(str(sender.pubkey())) == 5 * USDC
    assert before - lamports(url, escrow) == 5000  # one signature's fee, no rent


def test_a_transfer_its_owner_did_not_sign_is_held_with_the_candidates(fresh_solana: Any) -> None:
    """A swap-shaped payment: USDC leaves an account whose owner (a pool) never signed; the signer
    moved it as a delegate. An underpayment is held for staff, never sent to the pool."""
    url = fresh_solana.url
    instructions = chains.client("solana").payment_instructions()
    pool = solana_helpers.new_wallet(url, usdc=50 * USDC)
    buyer = solana_helpers.new_wallet(url, usdc=0)
    signature = solana_helpers.pay_through_pool(url, buyer, pool, instructions, USDC, "atl-nobody")
    escrow_scan("solana")
    payment = Payment.objects.get(tx_hash=signature)
    assert payment.payer == str(pool.pubkey())
    assert not payment.payer_signed
    assert str(buyer.pubkey()) in payment.signers
    send_everything()
    held = OutgoingTransfer.objects.get(kind="return")
    assert held.status == TransferStatus.HELD
    assert "did not sign" in held.held_reason
    assert chains.client("solana").token_balance(str(pool.pubkey())) == 49 * USDC  # nothing went to the pool


# --- over HTTP: orders, refunds, payouts ----------------------------------------------------------


@pytest.fixture
def solana_world(fresh_solana: Any, buyer: Any, agent: Any) -> Any:
    return Solana(type("Chains", (), {"solana": fresh_solana})(), buyer, agent)


def order_view(chain: Solana, order: dict[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = chain.buyer.api.get(f"/api/orders/{order['id']}").body["data"]
    return view


def memo_transfer(url: str, sender: Keypair, amount: int, memo: str) -> str:
    instructions = chains.client("solana").payment_instructions()
    return solana_helpers.pay_order(url, sender, instructions, amount, memo)


def test_dust_with_someone_elses_memo_leaves_their_order_unchanged(solana_world: Any, agent: Any) -> None:
    """Anyone can read an order's memo (the transaction-request endpoint is public) and send it
    0.000001 USDC transfers: recorded for reconcile, attached to no order."""
    chain, url = solana_world, solana_world.url
    order = order_for(chain, agent)
    before = order_view(chain, order)
    griefer = solana_helpers.new_wallet(url, usdc=USDC)
    dust = [memo_transfer(url, griefer, 1, order["payment_reference"]) for _ in range(10)]
    escrow_scan("solana")
    after = order_view(chain, order)
    assert after == before
    assert json.dumps(after) == json.dumps(before)
    recorded = Payment.objects.filter(tx_hash__in=dust)
    assert recorded.count() == 10
    assert set(recorded.values_list("order_id", "status")) == {(None, "unapplied")}
    assert not OutgoingTransfer.objects.exists()  # below the minimum: nothing sent back by itself
    assert "clean" in reconcile_output("solana")


def test_an_order_shows_its_latest_few_unapplied_transfers_and_how_many(solana_world: Any, agent: Any) -> None:
    chain, url = solana_world, solana_world.url
    order = order_for(chain, agent)
    sender = solana_helpers.new_wallet(url, usdc=USDC)
    for _ in range(5):
        memo_transfer(url, sender, 10_000, order["payment_reference"])
    escrow_scan("solana")
    view = order_view(chain, order)
    assert len(view["unapplied_transfers"]) == 3
    assert view["unapplied_transfers_total"] == 5
    html = page(browser_of(chain.buyer), Order.objects.get(pk=order["id"]))
    assert "The latest 3 of 5 are shown." in html


def test_a_refund_to_an_account_closed_in_the_paying_transaction_is_held_until_it_exists(
    solana_world: Any, agent: Any
) -> None:
    """Pay an order from a USDC account closed in the same transaction, then cancel: the refund
    would re-create the account at the escrow's cost. It waits, visibly, and goes once the buyer
    has a USDC account again."""
    chain, url = solana_world, solana_world.url
    buyer = chain.buyer.secret
    order = order_for(chain, agent)
    instructions = chains.client("solana").payment_instructions()
    mint = Pubkey.from_string(instructions.token)
    source = get_associated_token_address(buyer.pubkey(), mint)
    whole = chains.client("solana").token_balance(chain.buyer.wallet)
    close = close_account(
        CloseAccountParams(
            program_id=TOKEN_PROGRAM_ID, account=source, dest=buyer.pubkey(), owner=buyer.pubkey(), signers=[]
        )
    )
    # Everything it holds goes in (the order's price and the rest as an overpayment), then it is closed.
    tx = solana_helpers.send_instructions(
        url,
        buyer,
        [
            solana_helpers.token_transfer(buyer, mint, Pubkey.from_string(instructions.token_account), whole),
            solana_helpers.memo(buyer, order["payment_reference"]),
            close,
        ],
    )
    assert pay(chain, order, tx).body["data"]["status"] == "paid"
    escrow = instructions.escrow_address
    sol_before = lamports(url, escrow)
    assert chain.buyer.api.patch(f"/api/orders/{order['id']}", {"action": "cancel"}).status_code == 200
    send_everything()
    refund = OutgoingTransfer.objects.get(order_id=order["id"], kind="refund")
    assert refund.status == TransferStatus.HELD
    assert lamports(url, escrow) == sol_before  # nothing signed, nothing spent
    view = order_view(chain, order)
    assert view["transfers"][0]["status"] == "held"
    assert "no USDC account" in view["transfers"][0]["held_reason"]
    assert "no USDC account" in page(browser_of(chain.buyer), Order.objects.get(pk=order["id"]))

    assert release_held_transfers() == 0  # still no account: still held, one account read
    solana_helpers.fund_wallet(url, buyer.pubkey(), sol=0, usdc=1)  # the buyer's wallet opens one
    assert release_held_transfers() == 1
    send_everything()
    refund.refresh_from_db()
    assert refund.status == TransferStatus.CONFIRMED
    assert chains.client("solana").token_balance(chain.buyer.wallet) == whole + 1
    assert sol_before - lamports(url, escrow) == 5000  # one fee, no rent
    assert "clean" in reconcile_output("solana")


def test_a_payout_to_a_wallet_without_a_usdc_account_is_held_and_the_agent_hears_of_it(
    solana_world: Any, agent: Any
) -> None:
    """Held rather than created from the platform's fee: the account's rent (~0.002 SOL, about
    $0.40) is more than the whole fee of a small order, and the agent opens it once, for free, by
    receiving any USDC."""
    chain, url = solana_world, solana_world.url
    bare = str(Keypair().pubkey())
    assert agent.api.patch("/api/agents/me", {"payout_chain": "solana", "payout_wallet": bare}).status_code == 200
    agent.agent.endpoint_url = "https://agent.example.com/hooks"
    agent.agent.save(update_fields=["endpoint_url"])
    order = order_for(chain, agent)
    assert pay(chain, order, chain.pay(order)).status_code == 200
    agent.api.post(
        f"/api/orders/{order['id']}/deliver",
        {"deliverable_url": "https://x.example/a", "deliverable_media_type": "link"},
    )
    assert chain.buyer.api.patch(f"/api/orders/{order['id']}", {"action": "approve"}).status_code == 200
    send_everything()
    payout = OutgoingTransfer.objects.get(order_id=order["id"], kind="payout")
    assert payout.status == TransferStatus.HELD
    assert OrderEvent.objects.filter(order_id=order["id"], action="payout_held").exists()
    assert WebhookDelivery.objects.filter(event="order.payout_held", agent=agent.agent).exists()
    solana_helpers.fund_wallet(url, bare, sol=0, usdc=1)
    assert release_held_transfers() == 1
    send_everything()
    payout.refresh_from_db()
    assert payout.status == TransferStatus.CONFIRMED


def test_a_swap_routed_underpayment_is_held_and_the_order_says_so(
    solana_world: Any, agent: Any, django_user_model: Any
) -> None:
    """USDC from an account whose owner (a pool) never signed: the underpayment is not returned to
    the pool; it waits for staff, and the order names the candidates' situation in plain words."""
    chain, url = solana_world, solana_world.url
    order = order_for(chain, agent)
    instructions = chains.client("solana").payment_instructions()
    pool = solana_helpers.new_wallet(url, usdc=50 * USDC)
    pool_account = get_associated_token_address(pool.pubkey(), Pubkey.from_string(instructions.token))
    tx = solana_helpers.pay_through_pool(url, chain.buyer.secret, pool, instructions, USDC, order["payment_reference"])
    escrow_scan("solana")
    send_everything()
    held = OutgoingTransfer.objects.get(payment__tx_hash=tx)
    assert (held.status, held.to_address) == (TransferStatus.HELD, "")
    item = order_view(chain, order)["unapplied_transfers"][0]
    assert (item["reason"], item["return_status"]) == ("underpaid", "held")
    assert "did not sign" in item["message"]
    assert "staff decide where it goes" in item["return_held_reason"]
    assert chains.client("solana").token_balance(str(pool.pubkey())) == 49 * USDC

    # Staff see it first in the queue with the candidates, and send it to the signer (the buyer).
    staff = django_user_model.objects.create_user("cashier", password="pw-for-tests-only", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_outgoingtransfer", "change_outgoingtransfer"])
    )
    desk = Client()
    desk.force_login(staff)
    queue = desk.get(reverse("admin:payments_outgoingtransfer_changelist")).content.decode()
    assert "held" in queue
    detail = desk.get(reverse("admin:payments_outgoingtransfer_change", args=[held.pk])).content.decode()
    assert f"{pool.pubkey()} (owner of {pool_account}; did not sign)" in detail
    assert f"{chain.buyer.wallet} (signed)" in detail
    url = reverse("admin:payments_outgoingtransfer_changelist")
    desk.post(url, {"action": "retry", "_selected_action": [held.pk]})  # nowhere chosen: stays held
    held.refresh_from_db()
    assert held.status == TransferStatus.HELD
    desk.post(url, {"action": "send_to_signer", "_selected_action": [held.pk]})
    send_everything()
    held.refresh_from_db()
    assert (held.status, held.to_address) == (TransferStatus.CONFIRMED, chain.buyer.wallet)
    assert "clean" in reconcile_output("solana")
