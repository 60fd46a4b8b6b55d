"""The platform fee has one definition (payments.ledger.split_fee, in USDC base units: the agent's
90% rounded down to the base unit, the fee the rest), and what the buyer is shown is what is booked."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Sum

from orders.core.transitions import platform_fee
from orders.models import Order, Status
from payments.ledger import split_fee, usd_to_base_units
from payments.models import LedgerEntry, OutgoingTransfer
from tests.conftest import make_order, make_service
from tests.orders.test_order_pages import browser_of, page


@pytest.mark.parametrize(
    ("price", "fee"),
    [
        ("100.05", "10.005"),
        ("25.00", "2.50"),
        ("0.01", "0.001"),
        ("0.07", "0.007"),
        ("999999.99", "99999.999"),
        ("1000000.00", "100000.00"),
    ],
)
def test_the_fee_shown_is_the_ledgers_split(price: str, fee: str) -> None:
    shown = platform_fee(Decimal(price))

    assert shown == Decimal(fee)
    _agent_share, booked = split_fee(usd_to_base_units(Decimal(price)))
    assert usd_to_base_units(shown) == booked


def test_a_100_05_order_shows_a_10_005_fee_and_books_exactly_that(buyer: Any, agent: Any) -> None:
    agent.agent.payout_wallet = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
    agent.agent.save(update_fields=["payout_wallet"])
    service = make_service(agent.agent, price_type="fixed", price="100.05")
    order = make_order(buyer, agent, Status.DELIVERED, service=service)

    shown = buyer.api.get(f"/api/orders/{order.id}").body["data"]
    assert (shown["quoted_price_usd"], shown["platform_fee_usd"]) == ("100.05", "10.005")
    assert Order.objects.get(pk=order.id).platform_fee_usd == Decimal("10.005")

    approved = buyer.api.patch(f"/api/orders/{order.id}", {"action": "approve"})

    assert approved.status_code == 200, approved.body
    assert approved.body["data"]["platform_fee_usd"] == "10.005"
    booked = dict(
        LedgerEntry.objects.filter(order=order)
        .values("account")
        .annotate(total=Sum("amount"))
        .values_list("account", "total")
    )
    assert booked["platform_revenue"] == -10_005_000
    payout = OutgoingTransfer.objects.get(order=order, kind="payout")
    assert payout.amount_base_units == 90_045_000
    assert usd_to_base_units(Decimal(shown["platform_fee_usd"])) + payout.amount_base_units == 100_050_000


def test_the_quote_on_the_order_page_shows_the_exact_fee(buyer: Any, agent: Any) -> None:
    service = make_service(agent.agent, price_type="fixed", price="100.05")
    order = make_order(buyer, agent, Status.QUOTED, service=service)

    html = page(browser_of(buyer), order)

    assert "incl. $10.005 platform fee" in html
