"""x402 refusals that need no chain: what an anonymous POST /api/orders answers before any payment
is looked at. Each is a clear 4xx that writes nothing (no intent, no order, no payment). The paid
flow and the refusals that need a transaction are in tests/payments/test_order_kinds.py."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from orders.models import Order, X402Intent
from payments.models import Payment
from tests.conftest import make_service

BRIEF = "Three logo directions for a fox-themed bakery, transparent PNG."
TX = "5" * 87


def header(document: Any) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def payment(**payload: Any) -> dict[str, Any]:
    fields = {
        "transaction": TX,
        "payer": "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM",
        "reference": "atl-0",
        **payload,
    }
    return {"x402Version": 2, "accepted": {"network": "solana"}, "payload": fields}


@pytest.fixture
def fixed(agent: Any) -> Any:
    return make_service(agent.agent, price="25.00")


def refused(response: Any, status: int, code: str) -> None:
    assert (response.status_code, response.body["code"]) == (status, code), response.body
    assert (X402Intent.objects.count(), Order.objects.count(), Payment.objects.count()) == (0, 0, 0)


def test_without_a_configured_chain_x402_is_not_offered(anonymous, fixed):
    refused(anonymous.post("/api/orders", {"service_id": fixed.id, "brief": BRIEF}), 401, "authentication_required")


def test_a_quote_priced_service_needs_credentials(anonymous, agent):
    service = make_service(agent.agent, price_type="quote", price="0.00")

    response = anonymous.post("/api/orders", {"service_id": service.id, "brief": BRIEF})

    refused(response, 401, "authentication_required")
    assert "fixed-price" in response.body["error"]


@pytest.mark.parametrize("price_type", ["weekly", "monthly"])
def test_a_subscription_is_not_sold_by_x402(anonymous, agent, price_type):
    service = make_service(agent.agent, price_type=price_type, price="25.00")
    body = {"service_id": service.id, "brief": BRIEF}

    refused(anonymous.post("/api/orders", body, **{"X-PAYMENT": header(payment())}), 400, "x402_unavailable")


@pytest.mark.parametrize(
    "value",
    [
        "not base64 at all!",
        base64.b64encode(b"not json").decode(),
        header(["a", "list"]),
        header({**payment(), "x402Version": 3}),
        header({**payment(), "payload": "a hash"}),
        header(payment(transaction="")),
        header(payment(payer=7)),
        header(payment(reference=None)),
        header({**payment(), "accepted": {}}),
        header({**payment(), "accepted": {"network": "eip155:1"}}),
    ],
    ids=[
        "not base64",
        "not json",
        "not an object",
        "version 3",
        "payload not an object",
        "empty transaction",
        "payer not a string",
        "no reference",
        "no network",
        "unknown network",
    ],
)
def test_a_malformed_payment_header_is_400(anonymous, fixed, value):
    body = {"service_id": fixed.id, "brief": BRIEF}

    refused(anonymous.post("/api/orders", body, **{"X-PAYMENT": value}), 400, "invalid_payment")


def test_a_reference_no_402_gave_is_400(anonymous, fixed):
    body = {"service_id": fixed.id, "brief": BRIEF}

    refused(anonymous.post("/api/orders", body, **{"X-PAYMENT": header(payment())}), 400, "unknown_payment_reference")


def test_v2s_payment_signature_header_is_read_too(anonymous, fixed):
    body = {"service_id": fixed.id, "brief": BRIEF}

    refused(
        anonymous.post("/api/orders", body, **{"PAYMENT-SIGNATURE": header(payment())}),
        400,
        "unknown_payment_reference",
    )


def test_a_signed_in_buyer_cannot_pay_by_x402(buyer, fixed):
    body = {"service_id": fixed.id, "brief": BRIEF}

    refused(buyer.api.post("/api/orders", body, **{"X-PAYMENT": header(payment())}), 400, "invalid_payment")


def test_a_wallet_without_its_signature_is_not_an_x402_caller(anonymous, fixed, buyer):
    body = {"service_id": fixed.id, "brief": BRIEF, "wallet": buyer.wallet}

    refused(anonymous.post("/api/orders", body), 401, "authentication_required")
