"""One whole order through HTTP, as the seeds' curl examples do it (pay through a verified record)."""

from __future__ import annotations

from orders.core.transitions import transition
from orders.models import Order, OrderEvent, Status
from tests.conftest import make_payment, make_service


def test_it_walks_a_quote_order_from_create_to_review(buyer, agent):
    service = make_service(agent.agent, price_type="quote", price="0.00")

    created = buyer.api.post(
        "/api/orders", {"service_id": service.id, "brief": "Draw a fox in a lab coat, flat colours."}
    )
    assert created.status_code == 201, created.body
    order_id = created.body["data"]["id"]
    assert created.body["data"]["status"] == "pending_quote"
    assert created.body["data"]["viewer_role"] == "buyer"
    assert created.body["data"]["allowed_actions"] == ["cancel"]

    polled = agent.api.get(f"/api/agents/{agent.id}/orders?status=pending_quote")
    assert [o["id"] for o in polled.body["data"]] == [order_id]

    quoted = agent.api.post(f"/api/orders/{order_id}/quote", {"price_usd": "45.00"})
    assert quoted.status_code == 200, quoted.body
    assert quoted.body["data"]["quoted_price_usd"] == "45.00"
    assert quoted.body["data"]["platform_fee_usd"] == "4.50"

    accepted = buyer.api.patch(f"/api/orders/{order_id}", {"action": "accept"})
    assert accepted.body["data"]["status"] == "accepted"

    order = Order.objects.get(pk=order_id)
    transition(order_id, "pay", buyer.principal, payment=make_payment(order))

    hello = buyer.api.post(f"/api/orders/{order_id}/messages", {"content": "Any questions?"})
    assert hello.status_code == 201, hello.body
    agent.api.post(f"/api/orders/{order_id}/messages", {"content": "Delivered soon!"})
    thread = buyer.api.get(f"/api/orders/{order_id}/messages")
    assert [m["sender_role"] for m in thread.body["data"]] == ["buyer", "agent"]

    assert agent.api.post(f"/api/orders/{order_id}/start").body["data"]["status"] == "in_progress"
    delivered = agent.api.post(
        f"/api/orders/{order_id}/deliver",
        {"deliverable_url": "https://cdn.example.com/result.png", "deliverable_media_type": "image"},
    )
    assert delivered.status_code == 200, delivered.body
    assert delivered.body["data"]["status"] == "delivered"

    revision = buyer.api.patch(f"/api/orders/{order_id}", {"action": "revision", "feedback": "Darker background."})
    assert revision.body["data"]["status"] == "revision_requested"
    assert revision.body["data"]["revision_count"] == 1

    redelivered = agent.api.post(
        f"/api/orders/{order_id}/deliver",
        {
            "deliverables": [
                {"deliverable_url": "https://cdn.example.com/result2.png", "deliverable_media_type": "image"},
                {"deliverable_url": "https://cdn.example.com/source.psd", "deliverable_media_type": "document"},
            ]
        },
    )
    assert [d["deliverable_url"] for d in redelivered.body["data"]["deliverables"]] == [
        "https://cdn.example.com/result2.png",
        "https://cdn.example.com/source.psd",
    ]

    approved = buyer.api.patch(f"/api/orders/{order_id}", {"action": "approve"})
    assert approved.body["data"]["status"] == "completed"

    review = buyer.api.post(f"/api/orders/{order_id}/review", {"rating": 5, "comment": "Lovely fox."})
    assert review.status_code == 201, review.body
    agent.agent.refresh_from_db()
    service.refresh_from_db()
    assert (agent.agent.avg_rating, agent.agent.rating_count, agent.agent.completed_orders) == (5, 1, 1)
    assert (service.avg_rating, service.rating_count) == (5, 1)

    actions = list(
        OrderEvent.objects.filter(order_id=order_id)
        .exclude(to_status="")
        .order_by("created_at")
        .values_list("action", flat=True)
    )
    assert actions == ["create", "quote", "accept", "pay", "start", "deliver", "revision", "deliver", "approve"]
    assert Order.objects.get(pk=order_id).status == Status.COMPLETED
