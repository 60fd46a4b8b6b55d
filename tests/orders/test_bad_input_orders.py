"""Bad input to the order API (orders.web.api): unknown or foreign order ids, what cannot be ordered, and
actions in the wrong state; each refused with its status and code, and not one row changed. Bad
fields: tests/lib/test_bad_input_fields.py.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from agents.models import Agent, Service
from orders.models import Status
from tests.bad_input_support import (
    ACT,
    ACT_CANCEL,
    BRIEF,
    CREATE,
    DELIVER,
    DETAIL,
    MESSAGE,
    MESSAGES,
    QUOTE,
    REVIEW,
    START,
    Call,
    refused,
)
from tests.conftest import make_agent, make_order, make_service

# --- ids that do not exist, and orders that are someone else's ---------------------------------

ORDER_CALLS = [DETAIL, ACT, MESSAGES, MESSAGE, REVIEW, QUOTE, START, DELIVER]


UNKNOWN_IDS = [
    pytest.param("ord_doesnotexist", id="plausible"),
    pytest.param("x" * 300, id="300-chars"),
    pytest.param("заказ-🦊", id="unicode"),
    pytest.param("1' OR '1'='1", id="sql"),
    pytest.param("ord_\x00", id="NUL"),
    pytest.param("..", id="dot-dot"),
]


@pytest.mark.parametrize("call", ORDER_CALLS, ids=str)
@pytest.mark.parametrize("order_id", UNKNOWN_IDS)
def test_an_unknown_order_id_is_404_order_not_found(world, call, order_id):
    world.refuse(call, call.body, 404, "order_not_found", order_id=quote(order_id, safe=""))


ACT_ACCEPT = Call("buyer", "PATCH", "/api/orders/{order}", Status.QUOTED, body={"action": "accept"})


AGENT_ONLY_ORDER_CALLS = (QUOTE, START, DELIVER)


@pytest.mark.parametrize(
    "call", [DETAIL, ACT_ACCEPT, ACT_CANCEL, MESSAGES, MESSAGE, REVIEW, QUOTE, START, DELIVER], ids=str
)
@pytest.mark.parametrize("stranger", ["other_buyer", "other_agent"])
def test_another_partys_order_is_404_never_403(world, call, stranger):
    """Each call would succeed for the order's own party; a stranger learns nothing, not even that it exists."""
    if stranger == "other_buyer" and call in AGENT_ONLY_ORDER_CALLS:
        world.refuse(call, call.body, 401, "agent_key_required", who=stranger)
        return
    theirs = world.refuse(call, call.body, 404, "order_not_found", who=stranger)
    nobodys = world.refuse(call, call.body, 404, "order_not_found", who=stranger, order_id="ord_doesnotexist")
    assert theirs.body == nobodys.body
    # ... and the order's own party may do it (the order was in the right state).
    assert world.send(call, call.body).status_code in (200, 201)


def test_an_agent_buyers_order_is_hidden_from_a_third_agent(agent, other_agent):
    """`other_agent` hires `agent`; a third agent gets 404s."""
    service = make_service(agent.agent)
    outsider = make_agent("Outsider")
    created = other_agent.api.post("/api/orders", {"service_id": service.id, "brief": BRIEF})
    assert created.status_code == 201, created.body
    order_id = created.body["data"]["id"]
    refused(lambda: outsider.api.get(f"/api/orders/{order_id}"), 404, "order_not_found")
    refused(lambda: outsider.api.patch(f"/api/orders/{order_id}", {"action": "cancel"}), 404, "order_not_found")
    refused(lambda: outsider.api.post(f"/api/orders/{order_id}/messages", {"content": "Hi"}), 404, "order_not_found")


def test_ordering_what_cannot_be_ordered(world, agent, buyer):
    own = make_service(agent.agent, title="Own service")
    refused(lambda: agent.api.post("/api/orders", {"service_id": own.id, "brief": BRIEF}), 403, "cannot_hire_self")
    withdrawn = make_service(agent.agent, title="Withdrawn service")
    Service.objects.filter(pk=withdrawn.pk).update(active=False)
    refused(
        lambda: buyer.api.post("/api/orders", {"service_id": withdrawn.id, "brief": BRIEF}), 404, "service_not_found"
    )
    body = world.fill(CREATE.body)  # an active service of an agent that is then deactivated
    Agent.objects.filter(pk=agent.id).update(active=False)
    refused(lambda: buyer.api.post("/api/orders", body), 404, "service_not_found")


# --- the order's state -------------------------------------------------------------------------

WRONG_STATE = [
    (ACT, Status.PENDING_QUOTE, {"action": "accept"}),
    (ACT, Status.PAID, {"action": "approve"}),
    (ACT, Status.IN_PROGRESS, {"action": "revision", "feedback": "Darker."}),
    (ACT, Status.COMPLETED, {"action": "dispute", "reason": "Changed my mind."}),
    (ACT, Status.IN_PROGRESS, {"action": "cancel"}),
    (ACT, Status.CANCELLED, {"action": "accept"}),
    (QUOTE, Status.QUOTED, {"price_usd": "50.00"}),
    (QUOTE, Status.CANCELLED, {"price_usd": "45.00"}),
    (START, Status.ACCEPTED, {}),
    (START, Status.COMPLETED, {}),
    (DELIVER, Status.PENDING_QUOTE, DELIVER.body),
    (DELIVER, Status.COMPLETED, DELIVER.body),
    (DELIVER, Status.CANCELLED, DELIVER.body),
]


@pytest.mark.parametrize(
    ("call", "status", "body"), [pytest.param(*row, id=f"{row[0]} on {row[1]}") for row in WRONG_STATE]
)
def test_an_action_in_the_wrong_state_is_409(world, call, status, body):
    order = world.order(status)
    response = world.refuse(call, body, 409, "invalid_transition", order_id=order.id)
    assert response.body["details"]["status"] == status


def test_a_revision_past_the_limit_is_409(world, buyer, agent):
    service = make_service(agent.agent, price_type="quote", price="0.00", title="No revisions", max_revisions=0)
    order = make_order(buyer, agent, Status.DELIVERED, service=service)
    body = {"action": "revision", "feedback": "Darker, please."}
    refused(lambda: buyer.api.patch(f"/api/orders/{order.id}", body), 409, "revision_limit_reached")


@pytest.mark.parametrize("status", [Status.PENDING_QUOTE, Status.QUOTED, Status.ACCEPTED, Status.CANCELLED])
@pytest.mark.parametrize("who", ["buyer", "agent"])
def test_messages_before_payment_are_409(world, status, who):
    order = world.order(status)
    world.refuse(MESSAGE, {"content": "Hello?"}, 409, "messaging_unavailable", who=who, order_id=order.id)


@pytest.mark.parametrize(
    "status", [Status.PENDING_QUOTE, Status.PAID, Status.DELIVERED, Status.DISPUTED, Status.CANCELLED]
)
def test_a_review_before_completion_is_409(world, status):
    order = world.order(status)
    world.refuse(REVIEW, {"rating": 5}, 409, "review_unavailable", order_id=order.id)


def test_a_second_review_is_409(world, buyer):
    order = world.order(Status.COMPLETED)
    first = buyer.api.post(f"/api/orders/{order.id}/review", {"rating": 4, "comment": "Nice fox."})
    assert first.status_code == 201, first.body
    world.refuse(REVIEW, {"rating": 1, "comment": "Changed my mind."}, 409, "already_reviewed", order_id=order.id)
    world.refuse(REVIEW, {"rating": 4, "comment": "Nice fox."}, 409, "already_reviewed", order_id=order.id)
