"""Money that lands in escrow is never stranded: the escrow scan pays the order a transfer's memo
names, or records the transfer and returns it to its sender; `manage.py reconcile` then proves the
escrow wallet on chain equals the ledger. Each test runs on its own fresh devchains, so the escrow
holds exactly what the test put there."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from orders.checkout.escrow_scan import escrow_scan
from orders.models import Order, Status
from payments import chains, ledger
from payments.models import LedgerEntry, OutgoingTransfer, Payment, Reconciliation, TransferStatus
from payments.tasks import process_transfer
from tests.payments import evm_helpers, solana_helpers
from tests.payments.test_order_payments import PRICE_UNITS, Base, Solana, order_for, pay


@pytest.fixture
def fresh(settings: Any) -> Iterator[Any]:
    """Both devchains, new for this test only."""
    with solana_helpers.running_devchain() as solana, evm_helpers.running_devchain() as evm:
        solana_helpers.use_devchain(settings, solana)
        evm_helpers.point_settings(settings, evm, confirmations=2)
        yield type("Fresh", (), {"solana": solana, "evm": evm})()


def reconcile_output(*chains_: str) -> str:
    out = StringIO()
    call_command("reconcile", *[arg for chain in chains_ for arg in ("--chain", chain)], stdout=out)
    return out.getvalue()


def send_returns() -> None:
    for transfer in OutgoingTransfer.objects.exclude(status=TransferStatus.CONFIRMED):
        process_transfer(transfer.pk)
        evm_helpers.mine(chains.client("base").config.rpc_url, 2)  # type: ignore[attr-defined]
        process_transfer(transfer.pk)


def escrow_balance(chain: str) -> int:
    client = chains.client(chain)
    return client.token_balance(client.payment_instructions().escrow_address)


def test_a_solana_transfer_carrying_an_orders_memo_pays_it_without_the_buyer_pasting_anything(
    fresh: Any, buyer: Any, agent: Any
) -> None:
    chain = Solana(fresh, buyer, agent)
    order = order_for(chain, agent)
    chain.pay(order)
    assert escrow_scan("solana") == []
    paid = Order.objects.get(pk=order["id"])
    assert paid.status == Status.PAID
    assert Payment.objects.get(order=paid).payer == buyer.wallet
    assert "clean" in reconcile_output("solana")


def test_transfers_that_name_no_order_or_cannot_pay_it_are_returned_and_the_books_balance(
    fresh: Any, buyer: Any, agent: Any
) -> None:
    chain = Solana(fresh, buyer, agent)
    short = order_for(chain, agent)
    cancelled = order_for(chain, agent)
    assert chain.buyer.api.patch(f"/api/orders/{cancelled['id']}", {"action": "cancel"}).status_code == 200
    instructions = chains.client("solana").payment_instructions()
    no_memo = solana_helpers.pay_order(fresh.solana.url, buyer.secret, instructions, 1_000_000, None)
    unknown = chain.pay(short, amount=2_000_000, reference="atl-nobodysreference")
    underpaid = chain.pay(short, amount=PRICE_UNITS - 1)
    late = chain.pay(cancelled)

    assert escrow_scan("solana") == []
    reasons = dict(Payment.objects.filter(status="unapplied").values_list("tx_hash", "reason"))
    assert reasons == {
        no_memo: "no_reference",
        unknown: "unknown_reference",
        underpaid: "underpaid",
        late: "order_not_payable",
    }
    assert escrow_scan("solana") == []  # a second scan decides nothing twice
    assert Payment.objects.filter(status="unapplied").count() == 4
    view = chain.buyer.api.get(f"/api/orders/{short['id']}").body["data"]
    assert [item["reason"] for item in view["unapplied_transfers"]] == ["underpaid"]
    assert view["unapplied_transfers"][0]["missing_base_units"] == 1

    # Before the returns are sent the escrow holds them, and the ledger says so: clean.
    assert "clean" in reconcile_output("solana")
    send_returns()
    assert OutgoingTransfer.objects.filter(kind="return", status=TransferStatus.CONFIRMED).count() == 4
    assert chains.client("solana").token_balance(buyer.wallet) == 100 * 10**6  # what it was funded with
    assert escrow_balance("solana") == 0
    assert "clean" in reconcile_output("solana")


def test_an_unclaimed_base_transfer_waits_for_a_claim_then_goes_back(
    fresh: Any, base_buyer: Any, agent: Any, settings: Any
) -> None:
    chain = Base(fresh, base_buyer, agent)
    order = order_for(chain, agent)
    tx = chain.pay(order)  # never claimed with `pay`
    waiting = escrow_scan("base")
    assert [item.tx_hash for item in waiting] == [tx]
    output = reconcile_output("base")  # in escrow, not in the ledger: named, so still clean
    assert tx in output
    assert "clean" in output

    # The grace is over (eth-tester's block clock runs ahead of ours when it mines several blocks a
    # second, hence a grace well below zero rather than zero).
    settings.UNCLAIMED_TRANSFER_GRACE_SECONDS = -3600
    assert escrow_scan("base") == []
    unapplied = Payment.objects.get(tx_hash=tx)
    assert (unapplied.status, unapplied.reason, unapplied.payer) == ("unapplied", "unclaimed", base_buyer.wallet)
    send_returns()
    assert escrow_balance("base") == 0
    assert "clean" in reconcile_output("base")
    refused = pay(chain, order, tx)  # claimed too late: the answer says where the money went
    assert (refused.status_code, refused.body["code"]) == (409, "tx_hash_used")


def test_a_claimed_base_transfer_is_applied_by_the_scan(fresh: Any, base_buyer: Any, agent: Any) -> None:
    chain = Base(fresh, base_buyer, agent)
    order = order_for(chain, agent)
    tx = evm_helpers.pay_order(chain.url, base_buyer.secret, order["payment"], PRICE_UNITS)
    assert pay(chain, order, tx).status_code == 202  # 1 of 2 confirmations
    evm_helpers.mine(chain.url, 2)
    assert escrow_scan("base") == []
    assert Order.objects.get(pk=order["id"]).status == Status.PAID


def test_reconcile_fails_loudly_on_a_difference_nothing_explains(fresh: Any, buyer: Any, agent: Any) -> None:
    chain = Solana(fresh, buyer, agent)
    order = order_for(chain, agent)
    assert pay(chain, order, chain.pay(order)).status_code == 200
    assert "clean" in reconcile_output("solana")
    paid = Order.objects.get(pk=order["id"])
    # A leak: a line out of the escrow wallet that no journal balances (the ledger is append-only).
    LedgerEntry.objects.create(order=paid, kind="refund_out", account="escrow_wallet", chain="solana", amount=-7)
    with pytest.raises(CommandError) as failed:
        reconcile_output("solana")
    assert failed.value.returncode == 1
    latest = Reconciliation.objects.filter(chain="solana").latest("ran_at")
    assert (latest.is_clean, latest.unexplained) == (False, 7)


def test_a_payout_confirmed_on_chain_but_not_recorded_yet_is_explained(fresh: Any, buyer: Any, agent: Any) -> None:
    chain = Solana(fresh, buyer, agent)
    order = order_for(chain, agent)
    assert pay(chain, order, chain.pay(order)).status_code == 200
    agent.api.post(
        f"/api/orders/{order['id']}/deliver",
        {"deliverable_url": "https://x.example/a", "deliverable_media_type": "link"},
    )
    chain.buyer.api.patch(f"/api/orders/{order['id']}", {"action": "approve"})
    payout = OutgoingTransfer.objects.get(order_id=order["id"], kind="payout")
    # Signs, sends, records: without the record, to stand between send and record.
    with mock.patch.object(ledger, "transfer_out"):
        process_transfer(payout.pk)
    payout.refresh_from_db()
    assert payout.status == TransferStatus.CONFIRMED
    assert not LedgerEntry.objects.filter(order_id=order["id"], kind="payout_out").exists()
    OutgoingTransfer.objects.filter(pk=payout.pk).update(status=TransferStatus.SIGNED)
    output = reconcile_output("solana")
    assert payout.tx_hash in output
    assert "payout sent, not recorded yet" in output
    assert "clean" in output


def test_dust_is_recorded_but_returned_only_when_staff_ask(
    fresh: Any, buyer: Any, agent: Any, client: Any, django_user_model: Any
) -> None:
    """Returning dust would cost the escrow more in fees than it sends, again and again: staff decide."""
    Solana(fresh, buyer, agent)
    instructions = chains.client("solana").payment_instructions()
    dust = solana_helpers.pay_order(fresh.solana.url, buyer.secret, instructions, 9_999, None)
    assert escrow_scan("solana") == []
    payment = Payment.objects.get(tx_hash=dust)
    assert (payment.reason, OutgoingTransfer.objects.filter(payment=payment).exists()) == ("no_reference", False)
    assert "clean" in reconcile_output("solana")

    viewer = django_user_model.objects.create_user("viewer", password="pw-for-tests-only", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_payment"))
    client.force_login(viewer)
    url = reverse("admin:payments_payment_changelist")
    client.post(url, {"action": "return_to_sender", "_selected_action": [payment.pk]})
    assert not OutgoingTransfer.objects.filter(payment=payment).exists()  # a view-only user moves nothing

    cashier = django_user_model.objects.create_user("cashier", password="pw-for-tests-only", is_staff=True)
    cashier.user_permissions.add(*Permission.objects.filter(codename__in=["view_payment", "return_payment"]))
    client.force_login(cashier)
    client.post(url, {"action": "return_to_sender", "_selected_action": [payment.pk]})
    returned = OutgoingTransfer.objects.get(payment=payment)
    assert (returned.kind, returned.to_address, returned.amount_base_units) == ("return", buyer.wallet, 9_999)
    send_returns()
    assert escrow_balance("solana") == 0
    assert "clean" in reconcile_output("solana")
