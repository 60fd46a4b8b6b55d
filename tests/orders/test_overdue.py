"""A buyer whose agent never delivers has a way out (seeds: a dispute for "no delivery at all within
the agent's committed turnaround"). An order is due `turnaround_hours` after payment, or after the
latest revision request; once that passes with no delivery it is overdue, and its buyer may dispute
it (the table's `overdue` rows) or, while it is still only `paid`, cancel it for a full refund.
Workspaces are never overdue: their window closes them.

Time is moved by moving the order's stamps back (no time-travel library is installed)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission
from django.db.models import F
from django.test import Client
from django.utils import timezone

from orders.models import Order, OrderEvent, Status
from payments.models import OutgoingTransfer
from tests.conftest import make_order, make_service
from tests.orders.test_order_pages import browser_of, page

S = Status
TURNAROUND = 24
PRICE = 30_000_000  # the services below sell at 30.00
DISPUTE = {"action": "dispute", "reason": "Nothing was delivered within the turnaround."}


def ordinary(buyer: Any, agent: Any, status: str) -> Order:
    service = make_service(agent.agent, price_type="fixed", price="30.00", turnaround_hours=TURNAROUND)
    return make_order(buyer, agent, status, service=service)


def age(order: Order, hours: float) -> None:
    """As if `hours` more had passed since the order was paid and since its latest revision request."""
    shift = timedelta(hours=hours)
    Order.objects.filter(pk=order.pk).update(paid_at=F("paid_at") - shift)
    Order.objects.filter(pk=order.pk, revision_requested_at__isnull=False).update(
        revision_requested_at=F("revision_requested_at") - shift
    )


def view(buyer: Any, order: Order) -> dict[str, Any]:
    response = buyer.api.get(f"/api/orders/{order.id}")
    assert response.status_code == 200, response.body
    return response.body["data"]


def row(order: Order) -> Mapping[str, Any]:
    return Order.objects.filter(pk=order.pk).values().get()


def test_the_order_shows_when_delivery_is_due(buyer, agent):
    order = ordinary(buyer, agent, S.IN_PROGRESS)

    shown = view(buyer, order)

    order.refresh_from_db()
    assert order.paid_at is not None
    assert shown["due_at"] == (order.paid_at + timedelta(hours=TURNAROUND)).isoformat()
    assert shown["overdue"] is False


@pytest.mark.parametrize("status", [S.PENDING_QUOTE, S.QUOTED, S.ACCEPTED])
def test_an_unpaid_order_has_no_due_time(buyer, agent, status):
    service = make_service(agent.agent, price_type="quote", price="0.00")
    order = make_order(buyer, agent, status, service=service)

    shown = view(buyer, order)

    assert (shown["due_at"], shown["overdue"]) == (None, False)


def test_before_the_turnaround_passes_a_dispute_of_an_in_progress_order_is_409(buyer, agent):
    order = ordinary(buyer, agent, S.IN_PROGRESS)
    age(order, TURNAROUND - 1)
    before = row(order)
    events = OrderEvent.objects.filter(order=order).count()

    response = buyer.api.patch(f"/api/orders/{order.id}", DISPUTE)

    assert response.status_code == 409, response.body
    body = response.body
    assert (body["success"], body["code"]) == (False, "not_overdue")
    assert body["details"]["status"] == "in_progress"
    assert "dispute" not in body["details"]["allowed_actions"]
    assert body["details"]["due_at"] == view(buyer, order)["due_at"]
    assert "dispute" not in view(buyer, order)["allowed_actions"]
    assert row(order) == before
    assert OrderEvent.objects.filter(order=order).count() == events


def test_after_the_turnaround_the_buyer_disputes_and_staff_refund_in_full(buyer, agent, django_user_model):
    order = ordinary(buyer, agent, S.IN_PROGRESS)
    age(order, TURNAROUND + 1)
    shown = view(buyer, order)
    assert shown["overdue"] is True
    assert shown["allowed_actions"] == ["dispute"]

    response = buyer.api.patch(f"/api/orders/{order.id}", DISPUTE)

    assert response.status_code == 200, response.body
    assert (response.body["data"]["status"], response.body["data"]["overdue"]) == ("disputed", False)
    event = OrderEvent.objects.get(order=order, action="dispute")
    assert (event.from_status, event.to_status, event.actor_kind) == (S.IN_PROGRESS, S.DISPUTED, "buyer")

    resolver = django_user_model.objects.create_user("resolver", password="pw-resolver-123", is_staff=True)
    resolver.user_permissions.add(
        Permission.objects.get(codename="resolve_dispute"), Permission.objects.get(codename="view_dispute")
    )
    client = Client()
    client.force_login(resolver)
    queue = client.get("/admin/orders/dispute/").content.decode()
    assert f"/admin/orders/dispute/{quote(order.id)}/change/" in queue
    assert "overdue: nothing delivered" in queue
    client.post(  # previewed in net amounts, then confirmed
        f"/admin/orders/dispute/{order.id}/resolve/",
        {"decision": "refund", "note": "Never delivered.", "confirmed": "refund"},
    )
    order.refresh_from_db()
    assert order.status == S.CANCELLED
    assert dict(OutgoingTransfer.objects.filter(order=order).values_list("kind", "amount_base_units")) == {
        "refund": PRICE
    }


def test_a_repeated_overdue_dispute_is_a_no_op(buyer, agent):
    order = ordinary(buyer, agent, S.IN_PROGRESS)
    age(order, TURNAROUND + 1)
    assert buyer.api.patch(f"/api/orders/{order.id}", DISPUTE).status_code == 200
    events = OrderEvent.objects.filter(order=order).count()

    again = buyer.api.patch(f"/api/orders/{order.id}", DISPUTE)

    assert again.status_code == 200, again.body
    assert again.body["data"]["status"] == "disputed"
    assert OrderEvent.objects.filter(order=order).count() == events


def test_my_orders_marks_an_overdue_order(buyer, agent):
    order = ordinary(buyer, agent, S.IN_PROGRESS)
    client = browser_of(buyer)
    assert "status-overdue" not in client.get("/orders/").content.decode()

    age(order, TURNAROUND + 1)

    assert "status-overdue" in client.get("/orders/").content.decode()


def test_an_overdue_paid_order_can_still_be_cancelled_for_a_full_refund(buyer, agent):
    order = ordinary(buyer, agent, S.PAID)
    age(order, TURNAROUND + 1)
    assert set(view(buyer, order)["allowed_actions"]) == {"cancel", "dispute"}

    response = buyer.api.patch(f"/api/orders/{order.id}", {"action": "cancel"})

    assert response.status_code == 200, response.body
    assert response.body["data"]["status"] == "cancelled"
    assert dict(OutgoingTransfer.objects.filter(order=order).values_list("kind", "amount_base_units")) == {
        "refund": PRICE
    }


def test_an_overdue_paid_order_can_be_disputed(buyer, agent):
    order = ordinary(buyer, agent, S.PAID)
    age(order, TURNAROUND + 1)

    response = buyer.api.patch(f"/api/orders/{order.id}", DISPUTE)

    assert response.status_code == 200, response.body
    assert response.body["data"]["status"] == "disputed"


def test_a_revision_request_gives_the_agent_a_fresh_turnaround(buyer, agent):
    order = ordinary(buyer, agent, S.DELIVERED)
    age(order, 10 * TURNAROUND)  # delivered late, long ago: that does not matter any more
    revised = buyer.api.patch(f"/api/orders/{order.id}", {"action": "revision", "feedback": "Darker, please."})
    assert revised.status_code == 200, revised.body
    order.refresh_from_db()
    assert order.revision_requested_at is not None
    shown = view(buyer, order)
    assert shown["due_at"] == (order.revision_requested_at + timedelta(hours=TURNAROUND)).isoformat()
    assert shown["revision_requested_at"] == order.revision_requested_at.isoformat()
    assert shown["overdue"] is False
    assert buyer.api.patch(f"/api/orders/{order.id}", DISPUTE).status_code == 409

    age(order, TURNAROUND + 1)

    assert view(buyer, order)["overdue"] is True
    response = buyer.api.patch(f"/api/orders/{order.id}", DISPUTE)
    assert response.status_code == 200, response.body
    assert response.body["data"]["status"] == "disputed"


def test_a_delivered_order_is_not_overdue_however_late(buyer, agent):
    order = ordinary(buyer, agent, S.DELIVERED)
    age(order, 10 * TURNAROUND)

    shown = view(buyer, order)

    assert shown["overdue"] is False
    assert "dispute" in shown["allowed_actions"]  # what was delivered can be disputed, as always


def test_a_workspace_is_never_overdue(buyer, agent):
    service = make_service(agent.agent, price_type="weekly", price="30.00", turnaround_hours=1)
    order = make_order(buyer, agent, S.IN_PROGRESS, service=service)
    age(order, 48)  # its window (7 days from payment) is still open

    shown = view(buyer, order)

    assert (shown["due_at"], shown["overdue"], shown["status"]) == (None, False, "in_progress")
    response = buyer.api.patch(f"/api/orders/{order.id}", DISPUTE)
    assert response.status_code == 409
    assert response.body["code"] == "not_overdue"


def test_the_agent_can_still_deliver_an_overdue_order(buyer, agent):
    order = ordinary(buyer, agent, S.IN_PROGRESS)
    age(order, TURNAROUND + 1)

    delivered = agent.api.post(
        f"/api/orders/{order.id}/deliver",
        {"deliverable_url": "https://cdn.example.com/logo.pdf", "deliverable_media_type": "document"},
    )

    assert delivered.status_code == 200, delivered.body
    assert (delivered.body["data"]["status"], delivered.body["data"]["overdue"]) == ("delivered", False)


def test_the_order_page_shows_the_due_time_and_offers_the_dispute_once_overdue(buyer, agent):
    order = ordinary(buyer, agent, S.IN_PROGRESS)
    client = browser_of(buyer)

    html = page(client, order)
    assert 'id="due-at"' in html
    assert 'id="overdue"' not in html
    assert 'value="dispute"' not in html

    age(order, TURNAROUND + 1)
    html = page(client, order)
    assert 'id="overdue"' in html
    assert 'id="overdue-notice"' in html
    assert 'value="dispute"' in html

    response = client.post(f"/orders/{order.id}/act", {"action": "dispute", "reason": "Nothing arrived."})
    assert response.status_code == 302
    order.refresh_from_db()
    assert (order.status, order.dispute_reason) == (S.DISPUTED, "Nothing arrived.")


def test_an_agent_buyer_can_dispute_an_overdue_order(agent, other_agent):
    service = make_service(agent.agent, price_type="fixed", price="30.00", turnaround_hours=TURNAROUND)
    order = make_order(other_agent, agent, S.IN_PROGRESS, service=service)
    age(order, TURNAROUND + 1)

    response = other_agent.api.patch(f"/api/orders/{order.id}", DISPUTE)

    assert response.status_code == 200, response.body
    assert response.body["data"]["status"] == "disputed"


def test_an_overdue_time_is_exact_to_the_turnaround(buyer, agent):
    order = ordinary(buyer, agent, S.IN_PROGRESS)
    now = timezone.now()
    Order.objects.filter(pk=order.pk).update(paid_at=now - timedelta(hours=TURNAROUND, seconds=-30))
    order.refresh_from_db()
    assert order.overdue is False
    Order.objects.filter(pk=order.pk).update(paid_at=now - timedelta(hours=TURNAROUND, seconds=1))
    order.refresh_from_db()
    assert order.overdue is True
    assert order.due_at is not None
    assert order.quoted_price_usd == Decimal("30.00")
