"""Subscription workspaces (orders.workspaces): paying opens the window, the buyer's prompts take
one unit of quota each, the agent answers them, and the window's close or the used-up quota
delivers the order, which the buyer then approves or disputes as usual.

Payments here are recorded as the payments app records a verified transfer (`make_payment`); the
same flow paid on the devchains is in tests/payments/test_order_kinds.py.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from lib.principal import SYSTEM
from orders.core.transitions import transition
from orders.core.workspace_timer import expire_workspace
from orders.models import Deliverable, Order, OrderEvent, Status
from orders.reads import queries
from payments.models import OutgoingTransfer
from tests.conftest import Api, make_order, make_payment, make_service

S = Status
ANSWER = {"deliverable_url": "https://cdn.example.com/answer.png", "deliverable_media_type": "image"}


def workspace(buyer: Any, agent: Any, *, price_type: str = "weekly", quota: int = 0, status: str = S.IN_PROGRESS):
    service = make_service(agent.agent, price_type=price_type, price="30.00", quota_limit=quota)
    return make_order(buyer, agent, status, service=service)


def generate(api: Api, order: Order, prompt: str = "A fox reading a newspaper, flat colours.") -> Any:
    return api.post(f"/api/orders/{order.id}/generate", {"prompt": prompt})


def answer(api: Api, order: Order, deliverable_id: str, **fields: str) -> Any:
    return api.post(f"/api/orders/{order.id}/deliver", {"deliverable_id": deliverable_id, **ANSWER, **fields})


def actions(order: Order) -> list[str]:
    return list(OrderEvent.objects.filter(order=order).order_by("id").values_list("action", flat=True))


def state(order: Order) -> tuple[Any, ...]:
    """What a refused request must leave as it was."""
    row = Order.objects.filter(pk=order.pk).values("status", "quota_used", "updated_at").get()
    return row, list(Deliverable.objects.filter(order=order).values_list("id", "status")), actions(order)


# --- opening ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price_type", "quota", "window"),
    [("weekly", 0, timedelta(days=7)), ("monthly", 50, timedelta(days=30)), ("fixed", 5, timedelta(hours=24))],
    ids=["weekly", "monthly", "quota pack"],
)
def test_paying_opens_the_workspace_for_its_window(buyer, agent, price_type, quota, window):
    order = workspace(buyer, agent, price_type=price_type, quota=quota, status=S.QUOTED)

    paid = transition(order.id, "pay", buyer.principal, payment=make_payment(order))

    assert paid.status == S.IN_PROGRESS
    assert paid.workspace_expires_at == paid.paid_at + window
    assert (paid.quota_total, paid.quota_used) == (quota, 0)
    events = OrderEvent.objects.filter(order=order).order_by("id")
    assert [(e.action, e.from_status, e.to_status, e.actor_kind) for e in events][1:] == [
        ("accept", S.QUOTED, S.ACCEPTED, "buyer"),
        ("pay", S.ACCEPTED, S.PAID, "buyer"),
        ("open_workspace", S.PAID, S.IN_PROGRESS, "system"),
    ]
    task = DBTaskResult.objects.get(task_path="orders.core.workspace_timer.expire_workspace")
    assert (task.args_kwargs["args"], task.run_after) == ([order.id], paid.workspace_expires_at)


def test_an_ordinary_order_does_not_open_a_workspace(buyer, agent):
    order = make_order(buyer, agent, S.PAID, service=make_service(agent.agent, price="30.00"))

    assert (order.status, order.workspace_expires_at) == (S.PAID, None)
    assert "open_workspace" not in actions(order)


# --- prompts and answers --------------------------------------------------------------------------


def test_a_prompt_takes_one_unit_and_waits_for_the_agent(buyer, agent):
    order = workspace(buyer, agent, quota=3)

    response = generate(buyer.api, order)

    assert response.status_code == 201, response.body
    created = response.body["data"]
    assert (created["status"], created["quota_used"], created["quota_left"], created["quota_total"]) == (
        "pending",
        1,
        2,
        3,
    )
    prompt = Deliverable.objects.get(pk=created["id"])
    assert (prompt.order_id, prompt.status, prompt.url, prompt.media_type) == (order.id, "pending", "", "")
    event = OrderEvent.objects.get(order=order, action="prompt")
    assert (event.actor_kind, event.to_status, event.data["deliverable_id"]) == ("buyer", "", prompt.id)
    view = buyer.api.get(f"/api/orders/{order.id}").body["data"]
    assert (view["status"], view["quota_used"], view["quota_left"], view["is_workspace"]) == ("in_progress", 1, 2, True)
    assert view["deliverables"] == []  # nothing to show until answered
    assert [(p["id"], p["status"], p["result"]) for p in view["prompts"]] == [(prompt.id, "pending", None)]
    # The agent sees the prompt waiting too.
    assert agent.api.get(f"/api/orders/{order.id}").body["data"]["prompts"][0]["prompt"] == prompt.prompt


def test_the_agent_answers_a_prompt_and_the_order_stays_open(buyer, agent):
    order = workspace(buyer, agent, quota=3)
    prompt_id = generate(buyer.api, order).body["data"]["id"]

    response = answer(agent.api, order, prompt_id)

    assert response.status_code == 200, response.body
    view = response.body["data"]
    assert view["status"] == "in_progress"
    assert [(p["id"], p["status"], p["result"]["id"]) for p in view["prompts"]] == [(prompt_id, "delivered", prompt_id)]
    assert [d["id"] for d in view["deliverables"]] == [prompt_id]
    assert actions(order)[-2:] == ["prompt", "prompt_answered"]
    # The same answer again is a retry, not a second answer.
    assert answer(agent.api, order, prompt_id).status_code == 200
    assert actions(order)[-1] == "prompt_answered"
    assert OrderEvent.objects.filter(order=order, action="prompt_answered").count() == 1


def test_the_answer_that_uses_up_the_quota_delivers_the_order_for_approval(buyer, agent):
    order = workspace(buyer, agent, price_type="fixed", quota=2)
    first = generate(buyer.api, order).body["data"]["id"]
    second = generate(buyer.api, order).body["data"]["id"]
    assert generate(buyer.api, order).body["code"] == "quota_exhausted"

    assert answer(agent.api, order, first).body["data"]["status"] == "in_progress"  # one still pending
    delivered = answer(agent.api, order, second).body["data"]

    assert delivered["status"] == "delivered"
    assert delivered["allowed_actions"] == ["deliver"]  # the agent may still add to it
    expire = OrderEvent.objects.get(order=order, action="expire")
    assert (expire.actor_kind, expire.from_status, expire.to_status, expire.data) == (
        "system",
        "in_progress",
        "delivered",
        {"note": "quota used up"},
    )
    assert set(buyer.api.get(f"/api/orders/{order.id}").body["data"]["allowed_actions"]) == {
        "approve",
        "revision",
        "dispute",
    }
    completed = buyer.api.patch(f"/api/orders/{order.id}", {"action": "approve"}).body["data"]
    assert completed["status"] == "completed"
    payout = OutgoingTransfer.objects.get(order=order)
    assert (payout.kind, payout.amount_base_units) == ("payout", 27_000_000)


def test_an_unlimited_workspace_never_runs_out(buyer, agent):
    order = workspace(buyer, agent, price_type="monthly", quota=0)

    codes = [generate(buyer.api, order, f"Prompt number {i}").status_code for i in range(5)]

    assert codes == [201] * 5
    view = buyer.api.get(f"/api/orders/{order.id}").body["data"]
    assert (view["quota_total"], view["quota_used"], view["quota_left"], view["status"]) == (0, 5, None, "in_progress")


def test_a_window_that_has_passed_closes_on_the_next_request(buyer, agent):
    order = workspace(buyer, agent, quota=3)
    Order.objects.filter(pk=order.pk).update(workspace_expires_at=timezone.now() - timedelta(seconds=1))

    view = buyer.api.get(f"/api/orders/{order.id}").body["data"]

    assert view["status"] == "delivered"
    assert view["delivered_at"] is not None
    assert OrderEvent.objects.get(order=order, action="expire").data == {"note": "window closed"}


def test_reading_a_window_that_has_passed_writes_nothing_until_a_request_shows_it(buyer, agent):
    """queries.order_for is a read; the closing on sight is the web layer's (orders.web.lookup)."""
    order = workspace(buyer, agent, quota=3)
    Order.objects.filter(pk=order.pk).update(workspace_expires_at=timezone.now() - timedelta(seconds=1))

    read, _role = queries.order_for(buyer.principal, order.id)

    assert read.status == S.IN_PROGRESS
    assert "expire" not in actions(order)
    assert buyer.api.get(f"/api/orders/{order.id}").body["data"]["status"] == "delivered"
    assert actions(order).count("expire") == 1


def test_the_expiry_task_closes_the_window_and_is_safe_to_run_again(buyer, agent):
    order = workspace(buyer, agent)
    assert expire_workspace.call(order.id) == "not due yet"  # early: queued again for the expiry
    Order.objects.filter(pk=order.pk).update(workspace_expires_at=timezone.now() - timedelta(seconds=1))

    assert expire_workspace.call(order.id) == "expired"
    assert expire_workspace.call(order.id) == "nothing to do"

    assert Order.objects.get(pk=order.pk).status == S.DELIVERED
    assert actions(order).count("expire") == 1


def test_an_agent_buyers_workspace_is_released_when_it_closes(agent, other_agent):
    order = workspace(other_agent, agent, quota=1)
    prompt_id = generate(other_agent.api, order).body["data"]["id"]

    view = answer(agent.api, order, prompt_id).body["data"]

    assert view["status"] == "completed"  # no approval step: expire, then the system's release
    assert actions(order)[-3:] == ["prompt_answered", "expire", "release"]
    assert OutgoingTransfer.objects.get(order=order).kind == "payout"


def test_a_prompt_left_pending_at_the_close_can_still_be_answered(buyer, agent):
    order = workspace(buyer, agent, quota=3)
    prompt_id = generate(buyer.api, order).body["data"]["id"]
    transition(order.id, "expire", SYSTEM)

    view = answer(agent.api, order, prompt_id).body["data"]

    assert (view["status"], view["prompts"][0]["status"]) == ("delivered", "delivered")


# --- refusals: a clear 4xx, nothing half-made --------------------------------------------------------


def refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.body
    assert (response.body["success"], response.body["code"]) == (False, code), response.body


def test_generate_on_an_expired_workspace_is_409_and_takes_nothing(buyer, agent):
    order = workspace(buyer, agent, quota=3)
    Order.objects.filter(pk=order.pk).update(workspace_expires_at=timezone.now() - timedelta(seconds=1))

    refused(generate(buyer.api, order), 409, "workspace_expired")

    row = Order.objects.get(pk=order.pk)
    assert (row.status, row.quota_used) == (S.DELIVERED, 0)  # the request closed the window, took no unit
    assert not Deliverable.objects.filter(order=order).exists()
    assert "prompt" not in actions(order)


def test_generate_on_an_exhausted_workspace_is_409_and_takes_nothing(buyer, agent):
    order = workspace(buyer, agent, quota=1)
    assert generate(buyer.api, order).status_code == 201
    before = state(order)

    refused(generate(buyer.api, order), 409, "quota_exhausted")

    assert state(order) == before


def test_generate_on_an_order_that_is_not_a_workspace_is_409(buyer, agent):
    order = make_order(buyer, agent, S.IN_PROGRESS, service=make_service(agent.agent, price="30.00"))
    before = state(order)

    refused(generate(buyer.api, order), 409, "not_a_workspace")

    assert state(order) == before


def test_generate_before_payment_is_409(buyer, agent):
    order = workspace(buyer, agent, quota=3, status=S.QUOTED)
    before = state(order)

    refused(generate(buyer.api, order), 409, "workspace_not_open")

    assert state(order) == before


def test_generate_by_the_agent_is_403(buyer, agent):
    order = workspace(buyer, agent, quota=3)
    before = state(order)

    refused(generate(agent.api, order), 403, "wrong_role")

    assert state(order) == before


def test_generate_by_a_stranger_is_404(buyer, other_buyer, agent):
    order = workspace(buyer, agent, quota=3)
    before = state(order)

    refused(generate(other_buyer.api, order), 404, "order_not_found")

    assert state(order) == before


@pytest.mark.parametrize(
    "prompt", ["", "   ", "x" * 3001, 42, None], ids=["empty", "blank", "3001 chars", "int", "null"]
)
def test_generate_with_a_bad_prompt_is_400(buyer, agent, prompt):
    order = workspace(buyer, agent, quota=3)
    before = state(order)

    response = buyer.api.post(f"/api/orders/{order.id}/generate", {"prompt": prompt})

    refused(response, 400, "validation_error")
    assert "prompt" in response.body["details"]
    assert state(order) == before


def test_answering_an_unknown_prompt_is_404(buyer, agent):
    order = workspace(buyer, agent, quota=3)
    other = workspace(buyer, agent, quota=3)
    foreign = generate(buyer.api, other).body["data"]["id"]  # a prompt of another order
    before = state(order)

    refused(answer(agent.api, order, foreign), 404, "prompt_not_found")
    refused(answer(agent.api, order, "del_1780278669252_r2oi99c7d"), 404, "prompt_not_found")

    assert state(order) == before


def test_answering_an_answered_prompt_otherwise_is_409(buyer, agent):
    order = workspace(buyer, agent, quota=3)
    prompt_id = generate(buyer.api, order).body["data"]["id"]
    assert answer(agent.api, order, prompt_id).status_code == 200
    before = state(order)

    refused(
        answer(agent.api, order, prompt_id, deliverable_url="https://cdn.example.com/other.png"),
        409,
        "prompt_already_answered",
    )

    assert state(order) == before


def test_deliverable_id_on_an_order_that_is_not_a_workspace_is_409(buyer, agent):
    order = make_order(buyer, agent, S.IN_PROGRESS, service=make_service(agent.agent, price="30.00"))
    before = state(order)

    refused(answer(agent.api, order, "del_1780278669252_r2oi99c7d"), 409, "not_a_workspace")

    assert state(order) == before


def test_deliverable_id_needs_exactly_one_answer(buyer, agent):
    order = workspace(buyer, agent, quota=3)
    prompt_id = generate(buyer.api, order).body["data"]["id"]
    before = state(order)
    url = f"/api/orders/{order.id}/deliver"

    refused(agent.api.post(url, {"deliverable_id": prompt_id}), 400, "validation_error")
    refused(agent.api.post(url, {"deliverable_id": prompt_id, "deliverables": [ANSWER]}), 400, "validation_error")

    assert state(order) == before


def test_a_plain_delivery_to_an_open_workspace_is_409(buyer, agent):
    order = workspace(buyer, agent, quota=3)
    before = state(order)

    refused(agent.api.post(f"/api/orders/{order.id}/deliver", ANSWER), 409, "workspace_open")

    assert state(order) == before


def test_the_buyer_cannot_answer_prompts(buyer, agent):
    order = workspace(buyer, agent, quota=3)
    prompt_id = generate(buyer.api, order).body["data"]["id"]
    before = state(order)

    refused(answer(buyer.api, order, prompt_id), 401, "agent_key_required")

    assert state(order) == before


# --- concurrency ------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: 50 connections racing for one row (SQLite's test database is one shared "
    "in-memory file whose table locks do not wait)",
)
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_prompts_on_a_quota_of_ten_take_exactly_ten(buyer, agent):
    order = workspace(buyer, agent, price_type="fixed", quota=10)
    threads = 50
    barrier = threading.Barrier(threads)
    headers = buyer.api.headers

    def prompt(i: int) -> tuple[int, str]:
        try:
            api = Api(Client(), headers)
            barrier.wait(timeout=30)
            response = generate(api, order, f"Prompt {i}, racing.")
            return response.status_code, response.body.get("code", "")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(prompt, range(threads)))

    assert sorted(results).count((201, "")) == 10, results
    assert sorted(results)[10:] == [(409, "quota_exhausted")] * 40
    row = Order.objects.get(pk=order.pk)
    assert (row.quota_used, row.status) == (10, S.IN_PROGRESS)
    assert Deliverable.objects.filter(order=order, status="pending").count() == 10
    assert OrderEvent.objects.filter(order=order, action="prompt").count() == 10
