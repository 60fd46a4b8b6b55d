"""What was bought stays bought (DESIGN.md section 5, "Terms as bought"): the revisions, the
workspace kind and quota and the turnaround are copied onto the order when it is quoted (at
creation for auto-quoted services, by `quote` otherwise), and editing the service afterwards never
changes an order already placed."""

from __future__ import annotations

import importlib
from typing import Any

from django.apps import apps

from orders.models import Order, Status, WorkspaceKind
from tests.conftest import make_order, make_service
from tests.orders.test_order_pages import browser_of, page

S = Status
copy_terms = importlib.import_module("orders.migrations.0005_order_terms_as_bought").copy_terms


def edit(agent: Any, service: Any, **fields: Any) -> None:
    response = agent.api.patch(f"/api/services/{service.id}", fields)
    assert response.status_code == 200, response.body


def view(party: Any, order: Order) -> dict[str, Any]:
    response = party.api.get(f"/api/orders/{order.id}")
    assert response.status_code == 200, response.body
    return response.body["data"]


def test_lowering_max_revisions_after_payment_leaves_the_buyer_their_revisions(buyer, agent):
    service = make_service(agent.agent, price_type="fixed", max_revisions=2)
    order = make_order(buyer, agent, S.DELIVERED, service=service)

    edit(agent, service, max_revisions=0)

    shown = view(buyer, order)
    assert shown["max_revisions"] == 2
    assert "revision" in shown["allowed_actions"]
    response = buyer.api.patch(f"/api/orders/{order.id}", {"action": "revision", "feedback": "Darker, please."})
    assert response.status_code == 200, response.body
    assert response.body["data"]["status"] == "revision_requested"
    order.refresh_from_db()
    assert (order.revision_count, order.max_revisions) == (1, 2)


def test_the_order_page_counts_revisions_against_the_terms_bought(buyer, agent):
    service = make_service(agent.agent, price_type="fixed", max_revisions=2)
    order = make_order(buyer, agent, S.DELIVERED, service=service)

    edit(agent, service, max_revisions=0)

    html = page(browser_of(buyer), order)
    assert "0 of 2 used" in html
    assert "revisions are used" not in html


def test_adding_a_quota_limit_after_payment_does_not_turn_the_order_into_a_workspace(buyer, agent):
    service = make_service(agent.agent, price_type="fixed")
    order = make_order(buyer, agent, S.IN_PROGRESS, service=service)

    edit(agent, service, quota_limit=5)

    shown = view(buyer, order)
    assert (shown["is_workspace"], shown["workspace_kind"], shown["quota_total"], shown["quota_left"]) == (
        False,
        "none",
        0,
        None,
    )
    delivered = agent.api.post(
        f"/api/orders/{order.id}/deliver",
        {"deliverable_url": "https://cdn.example.com/logo.pdf", "deliverable_media_type": "document"},
    )
    assert delivered.status_code == 200, delivered.body
    assert delivered.body["data"]["status"] == "delivered"
    assert set(view(buyer, order)["allowed_actions"]) == {"approve", "revision", "dispute"}


def test_changing_price_type_and_turnaround_after_payment_changes_nothing_on_the_order(buyer, agent):
    service = make_service(agent.agent, price_type="fixed", turnaround_hours=48)
    order = make_order(buyer, agent, S.PAID, service=service)
    before = view(buyer, order)

    edit(agent, service, price_type="weekly", turnaround_hours=1, max_revisions=0)

    after = view(buyer, order)
    keep = ("price_type", "turnaround_hours", "due_at", "overdue", "is_workspace", "workspace_kind", "max_revisions")
    assert {key: after[key] for key in keep} == {key: before[key] for key in keep}
    assert (after["price_type"], after["turnaround_hours"], after["is_workspace"]) == ("fixed", 48, False)
    assert after["due_at"] is not None
    assert after["overdue"] is False
    started = agent.api.post(f"/api/orders/{order.id}/start")
    assert started.status_code == 200, started.body
    assert started.body["data"]["status"] == "in_progress"


def test_a_workspace_stays_a_workspace_when_the_service_stops_being_one(buyer, agent):
    service = make_service(agent.agent, price_type="weekly", price="30.00", quota_limit=3)
    order = make_order(buyer, agent, S.IN_PROGRESS, service=service)

    edit(agent, service, price_type="fixed", quota_limit=0)

    response = buyer.api.post(f"/api/orders/{order.id}/generate", {"prompt": "A fox reading a newspaper."})
    assert response.status_code == 201, response.body
    shown = view(buyer, order)
    assert (shown["is_workspace"], shown["workspace_kind"], shown["quota_left"]) == (True, "weekly", 2)


def test_a_quote_priced_order_takes_the_terms_in_force_when_it_is_quoted(buyer, agent):
    service = make_service(agent.agent, price_type="quote", price="0.00", max_revisions=3, turnaround_hours=48)
    order = make_order(buyer, agent, S.PENDING_QUOTE, service=service)
    edit(agent, service, max_revisions=1, turnaround_hours=12)

    quoted = agent.api.post(f"/api/orders/{order.id}/quote", {"price_usd": "45.00"})
    assert quoted.status_code == 200, quoted.body
    edit(agent, service, max_revisions=5, turnaround_hours=100, quota_limit=10)

    shown = view(buyer, order)
    assert (shown["max_revisions"], shown["turnaround_hours"], shown["is_workspace"]) == (1, 12, False)


def test_an_auto_quoted_order_keeps_the_terms_it_was_placed_with(buyer, agent):
    service = make_service(agent.agent, price_type="fixed", max_revisions=3, turnaround_hours=24)
    order = make_order(buyer, agent, S.QUOTED, service=service)

    edit(agent, service, max_revisions=0, turnaround_hours=2, price_type="monthly")

    shown = view(buyer, order)
    assert (shown["max_revisions"], shown["turnaround_hours"], shown["price_type"], shown["is_workspace"]) == (
        3,
        24,
        "fixed",
        False,
    )


def test_the_data_migration_copies_each_orders_terms_from_its_service(buyer, agent):
    plain = make_order(buyer, agent, S.IN_PROGRESS, service=make_service(agent.agent, max_revisions=1))
    pack = make_order(buyer, agent, S.IN_PROGRESS, service=make_service(agent.agent, quota_limit=4, turnaround_hours=6))
    monthly = make_order(buyer, agent, S.IN_PROGRESS, service=make_service(agent.agent, price_type="monthly"))
    # As a row written before the terms were copied looks: the fields' defaults.
    Order.objects.update(max_revisions=3, turnaround_hours=48, workspace_kind="none", price_type="quote")

    copy_terms(apps, None)

    rows = {row["id"]: row for row in Order.objects.values()}
    assert (rows[plain.id]["max_revisions"], rows[plain.id]["workspace_kind"]) == (1, WorkspaceKind.NONE)
    assert (rows[pack.id]["workspace_kind"], rows[pack.id]["turnaround_hours"]) == (WorkspaceKind.QUOTA_PACK, 6)
    assert rows[monthly.id]["workspace_kind"] == WorkspaceKind.MONTHLY
    assert {row["price_type"] for row in rows.values()} == {"fixed", "monthly"}
