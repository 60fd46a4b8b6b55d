"""Bad payment submissions (PATCH /api/orders/{id} with action `pay`, orders.checkout.claims): refused before
any chain is asked, and not one row changed.
"""

from __future__ import annotations

from typing import Any

import pytest

from orders.models import Status
from tests.bad_input_support import ACT, U, V

TX_HASH = "0x" + "ab" * 32


PAY_CASES = [
    pytest.param({"action": "pay"}, V, id="no escrow_tx_hash"),
    pytest.param({"action": "pay", "escrow_tx_hash": ""}, V, id="empty hash"),
    pytest.param({"action": "pay", "escrow_tx_hash": "   "}, V, id="whitespace hash"),
    pytest.param({"action": "pay", "escrow_tx_hash": 123}, V, id="number for hash"),
    pytest.param({"action": "pay", "escrow_tx_hash": "0x" + "a" * 200}, V, id="hash over 128"),
    pytest.param({"action": "pay", "escrow_tx_hash": TX_HASH, "payment_chain": "ethereum"}, V, id="unknown chain"),
    pytest.param({"action": "pay", "escrow_tx_hash": TX_HASH, "feedback": "Paid!"}, V, id="feedback with pay"),
    pytest.param({"action": "pay", "escrow_tx_hash": TX_HASH, "amount": "45.00"}, U, id="unknown field"),
    pytest.param(
        {"action": "pay", "escrow_tx_hash": "0x123", "payment_chain": "base"}, "malformed_tx_hash", id="short base hash"
    ),
    pytest.param(
        {"action": "pay", "escrow_tx_hash": "0x" + "zz" * 32, "payment_chain": "base"},
        "malformed_tx_hash",
        id="non-hex base hash",
    ),
]


@pytest.fixture
def base_configured(settings: Any) -> None:
    """A Base escrow configured (no node runs: these requests are refused before any RPC call)."""
    settings.BASE_USDC_ADDRESS = "0x" + "12" * 20
    settings.BASE_ESCROW_PRIVATE_KEY = "0x" + "01" * 32
    settings.BASE_RPC_URL = "http://127.0.0.1:9"  # discard: nothing may be sent


@pytest.mark.parametrize("status", [Status.QUOTED, Status.ACCEPTED])
@pytest.mark.parametrize(("body", "code"), PAY_CASES)
def test_a_bad_payment_submission_is_400_and_records_nothing(world, base_configured, status, body, code):
    """Refused before any chain is asked: no Payment row, no ledger entry, no event, no status change."""
    world.refuse(ACT, body, 400, code, order_id=world.order(status).id)


def test_paying_on_a_chain_this_server_has_not_configured_is_503(world, settings, tmp_path):
    settings.BASE_USDC_ADDRESS = settings.BASE_ESCROW_PRIVATE_KEY = ""
    settings.DEVCHAIN_STATE = tmp_path / "absent.json"
    body = {"action": "pay", "escrow_tx_hash": TX_HASH, "payment_chain": "base"}
    world.refuse(ACT, body, 503, "chain_unavailable", order_id=world.order(Status.ACCEPTED).id)


@pytest.mark.parametrize("stranger", ["other_buyer", "other_agent"])
def test_paying_someone_elses_order_is_404(world, base_configured, stranger):
    order = world.order(Status.ACCEPTED)
    body = {"action": "pay", "escrow_tx_hash": TX_HASH, "payment_chain": "base"}
    world.refuse(ACT, body, 404, "order_not_found", who=stranger, order_id=order.id)
