"""Reconcile as a real cluster sees it: an escrow funded before the ledger began gets an opening
balance through the command (not only through a test fixture), and the hot wallet's fee coin is a
metric and a readiness warning below its floor."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from atelier import health
from payments import chains
from payments.models import LedgerEntry, Payment, Reconciliation, ScanCursor
from tests.payments import solana_helpers
from tests.payments.solana_helpers import USDC


@pytest.fixture
def fresh_solana(settings: Any, db: None) -> Iterator[Any]:
    with solana_helpers.running_devchain() as solana:
        solana_helpers.use_devchain(settings, solana)
        yield solana


def run_reconcile(*args: str) -> str:
    out = StringIO()
    call_command("reconcile", "--chain", "solana", *args, stdout=out)
    return out.getvalue()


def test_an_escrow_funded_before_the_ledger_began_gets_an_opening_journal(fresh_solana: Any) -> None:
    escrow = chains.client("solana").payment_instructions().escrow_address
    float_owner = solana_helpers.new_wallet(fresh_solana.url, usdc=10 * USDC)
    instructions = chains.client("solana").payment_instructions()
    solana_helpers.pay_order(fresh_solana.url, float_owner, instructions, 7 * USDC, None)  # the float

    output = run_reconcile("--record-opening")
    assert "opening balance 7.000000 USDC booked" in output
    assert "clean" in output
    assert not Payment.objects.exists()  # the float is not taken for a payment to send back
    assert list(LedgerEntry.objects.values_list("kind", "account", "amount").order_by("amount")) == [
        ("opening", "opening_balance", -7 * USDC),
        ("opening", "escrow_wallet", 7 * USDC),
    ]
    assert ScanCursor.objects.get(chain="solana").position

    # Later money is scanned as usual, and the books still balance.
    solana_helpers.pay_order(fresh_solana.url, float_owner, instructions, USDC, "atl-nobody")
    assert "clean" in run_reconcile()
    assert Payment.objects.get().reason == "unknown_reference"
    assert chains.client("solana").token_balance(escrow) == 8 * USDC

    with pytest.raises(CommandError, match="the ledger has begun"):
        run_reconcile("--record-opening")


def test_a_hot_wallet_short_of_fee_coin_is_a_metric_and_a_readiness_warning(fresh_solana: Any, settings: Any) -> None:
    assert "clean" in run_reconcile()
    last = Reconciliation.objects.get()
    assert (
        last.fee_balance
        == solana_helpers.rpc(
            fresh_solana.url, "getBalance", chains.client("solana").payment_instructions().escrow_address
        )["value"]
    )
    settings.METRICS_TOKEN = "metrics-token-for-tests"
    scraped = Client().get("/metrics", headers={"Authorization": "Bearer metrics-token-for-tests"})
    assert 'atelier_hot_wallet_fee_balance{chain="solana"}' in scraped.content.decode()
    assert health.warnings() == {}

    settings.HOT_WALLET_FEE_FLOOR = {"solana": int(last.fee_balance) + 1, "base": 0}
    assert "WARNING: the hot wallet holds" in run_reconcile()
    assert "below the floor" in health.warnings()["hot_wallet_solana"]
