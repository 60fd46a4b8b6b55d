"""Agent-to-agent orders: an agent's key buys another agent's service; delivering completes it at
once (the system's `release` follows `deliver`), with no approval step and no watermark.

Paid here as the payments app records a verified transfer; paid on the devchains from the buying
agent's own wallet in tests/payments/test_order_kinds.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from agents.models import Agent
from lib.errors import Conflict
from lib.principal import SYSTEM
from orders.core.transitions import allowed_actions, role_of, transition
from orders.models import Order, OrderEvent, Status
from payments.models import LedgerEntry, OutgoingTransfer
from tests.conftest import make_order, make_service

S = Status
IMAGE = {"deliverable_url": "https://cdn.example.com/robot-dog.png", "deliverable_media_type": "image"}


@pytest.fixture
def bought(agent: Any, other_agent: Any) -> Order:
    """`other_agent` bought `agent`'s fixed-price service and paid for it."""
    service = make_service(agent.agent, price="40.00")
    return make_order(other_agent, agent, S.PAID, service=service)


def test_delivery_completes_an_agent_buyers_order_and_pays_out_at_once(bought, agent, other_agent):
    response = agent.api.post(f"/api/orders/{bought.id}/deliver", IMAGE)

    assert response.status_code == 200, response.body
    view = response.body["data"]
    assert (view["status"], view["buyer_kind"], view["buyer_agent_id"]) == ("completed", "agent", other_agent.id)
    events = OrderEvent.objects.filter(order=bought).order_by("id")
    assert [(e.action, e.from_status, e.to_status, e.actor_kind) for e in events][-2:] == [
        ("deliver", S.PAID, S.DELIVERED, "agent"),
        ("release", S.DELIVERED, S.COMPLETED, "system"),
    ]
    payout = OutgoingTransfer.objects.get(order=bought)
    assert (payout.kind, payout.amount_base_units, payout.to_address) == (
        "payout",
        36_000_000,
        agent.agent.payout_wallet,
    )
    assert LedgerEntry.objects.filter(order=bought, kind="release").exists()
    assert Agent.objects.get(pk=agent.id).completed_orders == 1


def test_the_buying_agent_sees_the_original_at_once(bought, agent, other_agent):
    agent.api.post(f"/api/orders/{bought.id}/deliver", IMAGE)

    seen = other_agent.api.get(f"/api/orders/{bought.id}").body["data"]["deliverables"][0]

    assert (seen["gated"], seen["deliverable_url"]) == (False, IMAGE["deliverable_url"])


def test_the_buying_agent_has_no_approval_step(bought, agent, other_agent):
    buyer_role = role_of(bought, other_agent.principal)
    assert allowed_actions(bought, buyer_role) == ["cancel"]

    agent.api.post(f"/api/orders/{bought.id}/deliver", IMAGE)
    done = Order.objects.select_related("service").get(pk=bought.pk)

    assert allowed_actions(done, buyer_role) == []
    refused = other_agent.api.patch(f"/api/orders/{bought.id}", {"action": "approve"})
    assert (refused.status_code, refused.body["code"]) == (409, "invalid_transition")
    assert other_agent.api.post(f"/api/orders/{bought.id}/review", {"rating": 5}).status_code == 201


def test_the_same_delivery_again_is_a_no_op_and_another_a_conflict(bought, agent):
    first = agent.api.post(f"/api/orders/{bought.id}/deliver", IMAGE)
    events = list(OrderEvent.objects.filter(order=bought).values_list("id", flat=True))

    again = agent.api.post(f"/api/orders/{bought.id}/deliver", IMAGE)
    other = agent.api.post(f"/api/orders/{bought.id}/deliver", {**IMAGE, "deliverable_url": "https://x.example/b"})

    assert (again.status_code, again.body["data"]) == (200, first.body["data"])
    assert (other.status_code, other.body["code"]) == (409, "invalid_transition")
    assert list(OrderEvent.objects.filter(order=bought).values_list("id", flat=True)) == events
    assert OutgoingTransfer.objects.filter(order=bought).count() == 1


def test_a_human_buyers_delivery_still_waits_for_approval(buyer, agent):
    order = make_order(buyer, agent, S.PAID, service=make_service(agent.agent, price="40.00"))

    view = agent.api.post(f"/api/orders/{order.id}/deliver", IMAGE).body["data"]

    assert view["status"] == "delivered"
    assert not OutgoingTransfer.objects.filter(order=order).exists()
    with pytest.raises(Conflict) as refused:
        transition(order.id, "release", SYSTEM)
    assert refused.value.code == "approval_required"
