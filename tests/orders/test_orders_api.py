"""Placing orders, listing them (buyer list, agent poll), messages and reviews, over HTTP."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.models import Agent, Service
from orders.models import BuyerKind, Message, Order, OrderEvent, Review, Status
from tests.conftest import Api, make_agent, make_buyer, make_order, make_service

BRIEF = "Draw a fox in a lab coat, flat colours."


def place(api: Api, service: Service, **fields: Any) -> Any:
    return api.post("/api/orders", {"service_id": service.id, "brief": BRIEF, **fields})


def ids_of(response: Any) -> list[str]:
    assert response.status_code == 200, response.body
    return [item["id"] for item in response.body["data"]]


def walk(api: Api, path: str, limit: int, cursor_param: str = "before") -> tuple[list[str], int]:
    """Follow next_cursor to the end; returns every id seen and the number of pages."""
    separator = "&" if "?" in path else "?"
    seen: list[str] = []
    pages = 0
    url = f"{path}{separator}limit={limit}"
    while url:
        response = api.get(url)
        page = ids_of(response)
        assert len(page) <= limit
        seen += page
        pages += 1
        cursor = response.body["next_cursor"]
        url = f"{path}{separator}limit={limit}&{cursor_param}={cursor}" if cursor else ""
    return seen, pages


# --- creating orders -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "fee"), [("25.00", "2.50"), ("19.99", "1.999"), ("0.01", "0.001"), ("100.05", "10.005")]
)
def test_a_fixed_price_order_is_auto_quoted_at_the_listed_price(buyer, agent, price, fee):
    service = make_service(agent.agent, price_type="fixed", price=price)

    response = place(buyer.api, service, reference_urls=["https://example.com/fox.png"])

    assert response.status_code == 201, response.body
    data = response.body["data"]
    assert (data["status"], data["quoted_price_usd"], data["platform_fee_usd"]) == ("quoted", price, fee)
    assert (data["buyer_kind"], data["buyer_wallet"], data["buyer_chain"]) == ("human", buyer.wallet, "solana")
    assert data["allowed_actions"] == ["accept", "pay", "cancel"]
    order = Order.objects.get(pk=data["id"])
    assert order.status == Status.QUOTED
    assert order.quoted_price_usd == Decimal(price)
    assert order.platform_fee_usd == Decimal(fee)
    # The agent's share is 90% rounded down to the USDC base unit; the fee is the rest.
    assert order.quoted_price_usd - order.platform_fee_usd == (Decimal(price) * Decimal("0.9")).quantize(
        Decimal("0.000001"), rounding="ROUND_DOWN"
    )
    assert order.quoted_at is not None
    assert (order.agent_id, order.service_id, order.reference_urls) == (
        agent.id,
        service.id,
        ["https://example.com/fox.png"],
    )
    assert order.payment_reference.startswith("atl-")
    assert list(OrderEvent.objects.filter(order=order).values_list("action", "to_status")) == [("create", "quoted")]


@pytest.mark.parametrize(("price_type", "quota"), [("weekly", 50), ("monthly", 200), ("monthly", 0)])
def test_a_subscription_order_is_quoted_with_the_services_quota(buyer, agent, price_type, quota):
    service = make_service(agent.agent, price_type=price_type, price="49.00", quota_limit=quota)

    response = place(buyer.api, service)

    assert response.status_code == 201, response.body
    data = response.body["data"]
    assert (data["status"], data["quoted_price_usd"], data["platform_fee_usd"]) == ("quoted", "49.00", "4.90")
    assert (data["quota_total"], data["quota_used"], data["price_type"]) == (quota, 0, price_type)
    order = Order.objects.get(pk=data["id"])
    assert (order.status, order.quota_total, order.quota_used) == (Status.QUOTED, quota, 0)
    assert order.quoted_price_usd == Decimal("49.00")


def test_a_quote_priced_order_waits_for_a_quote_without_a_price(base_buyer, agent):
    service = make_service(agent.agent, price_type="quote", price="0.00")

    response = place(base_buyer.api, service)

    assert response.status_code == 201, response.body
    data = response.body["data"]
    assert (data["status"], data["quoted_price_usd"], data["platform_fee_usd"]) == ("pending_quote", None, None)
    assert (data["buyer_wallet"], data["buyer_chain"], data["payment_chain"]) == (base_buyer.wallet, "base", "base")
    order = Order.objects.get(pk=data["id"])
    assert order.status == Status.PENDING_QUOTE
    assert (order.quoted_price_usd, order.platform_fee_usd, order.quoted_at) == (None, None, None)


def test_an_agent_can_order_another_agents_service_as_an_agent_buyer(agent, other_agent):
    service = make_service(agent.agent, price_type="fixed", price="30.00")

    response = place(other_agent.api, service, payment_chain="base")

    assert response.status_code == 201, response.body
    data = response.body["data"]
    assert (data["buyer_kind"], data["buyer_agent_id"], data["buyer_wallet"]) == ("agent", other_agent.id, None)
    assert (data["viewer_role"], data["payment_chain"]) == ("buyer", "base")
    order = Order.objects.get(pk=data["id"])
    assert (order.buyer_kind, order.buyer_agent_id, order.buyer_wallet, order.agent_id) == (
        BuyerKind.AGENT,
        other_agent.id,
        "",
        agent.id,
    )
    # The selling agent sees it as its own work.
    assert agent.api.get(f"/api/orders/{order.id}").body["data"]["viewer_role"] == "agent"


def test_an_agent_cannot_hire_itself(agent):
    service = make_service(agent.agent)

    response = place(agent.api, service)

    assert response.status_code == 403
    assert response.body["code"] == "cannot_hire_self"
    assert not Order.objects.exists()


def test_ordering_an_inactive_service_is_404(buyer, agent):
    withdrawn = make_service(agent.agent)
    Service.objects.filter(pk=withdrawn.pk).update(active=False)
    retired = make_agent("Retired Agent")
    orphan = make_service(retired.agent)
    Agent.objects.filter(pk=retired.id).update(active=False)

    for service_id in (withdrawn.id, orphan.id, "svc_1780278669252_000000000"):
        response = buyer.api.post("/api/orders", {"service_id": service_id, "brief": BRIEF})
        assert response.status_code == 404, service_id
        assert response.body["code"] == "service_not_found"
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"brief": "too short"}, "brief"),
        ({"brief": "x" * 3001}, "brief"),
        ({"reference_urls": [f"https://example.com/{n}.png" for n in range(6)]}, "reference_urls"),
        ({"reference_urls": ["file:///etc/passwd"]}, "reference_urls"),
        ({"payment_chain": "ethereum"}, "payment_chain"),
        ({"status": "completed"}, "status"),
    ],
)
def test_bad_order_input_is_400_naming_the_field(buyer, agent, fields, bad_field):
    service = make_service(agent.agent)

    response = place(buyer.api, service, **fields)

    assert response.status_code == 400, response.body
    assert bad_field in response.body["details"]
    assert not Order.objects.exists()


def test_ordering_needs_credentials(anonymous, agent):
    # A fixed-price service answers 402 instead (x402: tests/orders/test_x402.py).
    response = place(anonymous, make_service(agent.agent, price_type="quote", price="0.00"))

    assert response.status_code == 401
    assert not Order.objects.exists()


# --- GET /api/orders -------------------------------------------------------------------------


def test_the_order_list_shows_only_the_callers_orders_newest_first(buyer, other_buyer, agent):
    mine = [make_order(buyer, agent, status).id for status in (Status.PENDING_QUOTE, Status.QUOTED, Status.CANCELLED)]
    theirs = make_order(other_buyer, agent, Status.QUOTED).id

    response = buyer.api.get("/api/orders")

    assert ids_of(response) == list(reversed(mine))
    assert response.body["next_cursor"] is None
    assert all(order["viewer_role"] == "buyer" for order in response.body["data"])
    assert ids_of(other_buyer.api.get("/api/orders")) == [theirs]
    # The agent sees every order it sells.
    assert ids_of(agent.api.get("/api/orders")) == [theirs, *reversed(mine)]


def test_an_agent_sees_orders_it_sells_and_orders_it_bought(agent, other_agent, buyer):
    sold = make_order(buyer, agent, Status.PENDING_QUOTE).id
    bought = place(agent.api, make_service(other_agent.agent)).body["data"]["id"]

    response = agent.api.get("/api/orders")

    assert ids_of(response) == [bought, sold]
    roles = {order["id"]: order["viewer_role"] for order in response.body["data"]}
    assert roles == {bought: "buyer", sold: "agent"}
    assert ids_of(other_agent.api.get("/api/orders")) == [bought]


def test_the_order_list_paginates_with_next_cursor(buyer, agent):
    service = make_service(agent.agent)
    for _ in range(5):
        assert place(buyer.api, service).status_code == 201

    seen, pages = walk(buyer.api, "/api/orders", limit=2)

    assert pages == 3
    assert seen == list(Order.objects.order_by("-id").values_list("id", flat=True))


def test_the_order_list_filters_by_status(buyer, agent):
    pending = make_order(buyer, agent, Status.PENDING_QUOTE).id
    quoted = make_order(buyer, agent, Status.QUOTED).id
    cancelled = make_order(buyer, agent, Status.CANCELLED).id

    assert ids_of(buyer.api.get("/api/orders?status=quoted")) == [quoted]
    assert ids_of(buyer.api.get("/api/orders?status=cancelled,pending_quote")) == [cancelled, pending]
    assert ids_of(buyer.api.get("/api/orders?status=completed")) == []


def test_the_order_list_refuses_an_unknown_status(buyer):
    response = buyer.api.get("/api/orders?status=quoted,shipped")

    assert response.status_code == 400
    assert "status" in response.body["details"]


# --- the agent poll --------------------------------------------------------------------------


@pytest.fixture
def work(buyer, agent, other_agent) -> dict[str, Any]:
    """Orders of `agent` in several statuses, oldest first, and one of another agent."""
    orders = {
        "pending": make_order(buyer, agent, Status.PENDING_QUOTE),
        "paid_old": make_order(buyer, agent, Status.PAID),
        "delivered": make_order(buyer, agent, Status.DELIVERED),
        "started": make_order(buyer, agent, Status.IN_PROGRESS),
        "cancelled": make_order(buyer, agent, Status.CANCELLED),
        "paid_new": make_order(buyer, agent, Status.PAID),
        "elsewhere": make_order(buyer, other_agent, Status.PAID),
    }
    return {name: order.id for name, order in orders.items()}


def poll(agent: Any, query: str = "status=paid,in_progress") -> Any:
    return agent.api.get(f"/api/agents/{agent.id}/orders?{query}")


def test_the_poll_returns_only_the_requested_statuses_newest_first(agent, work):
    response = poll(agent)

    assert ids_of(response) == [work["paid_new"], work["started"], work["paid_old"]]
    assert [order["status"] for order in response.body["data"]] == ["paid", "in_progress", "paid"]
    assert all(order["viewer_role"] == "agent" for order in response.body["data"])
    assert response.body["next_cursor"] is None


def test_the_poll_without_a_filter_returns_all_the_agents_orders(agent, work):
    expected = [work[name] for name in ("paid_new", "cancelled", "started", "delivered", "paid_old", "pending")]

    assert ids_of(poll(agent, "")) == expected


def test_the_poll_paginates(agent, work):
    seen, pages = walk(agent.api, f"/api/agents/{agent.id}/orders?status=paid,in_progress", limit=2)

    assert pages == 2
    assert seen == [work["paid_new"], work["started"], work["paid_old"]]


def test_the_poll_records_when_the_agent_last_polled(agent, work):
    assert Agent.objects.get(pk=agent.id).last_poll_at is None
    before = timezone.now()

    poll(agent)

    last_poll = Agent.objects.get(pk=agent.id).last_poll_at
    assert last_poll is not None
    assert before <= last_poll <= timezone.now()
    assert agent.api.get("/api/agents/me").body["data"]["last_poll_at"] == last_poll.isoformat()


def test_the_poll_names_the_orders_whose_buyer_spoke_last_in_any_status(agent, buyer, work):
    def say(order_id: str, who: Any, text: str) -> str:
        response = who.api.post(f"/api/orders/{order_id}/messages", {"content": text})
        assert response.status_code == 201, response.body
        return str(response.body["data"]["id"])

    asked = say(work["delivered"], buyer, "Could the fox wear a hat?")
    say(work["started"], buyer, "Any news?")
    say(work["started"], agent, "Tomorrow.")  # answered: the agent spoke last

    response = poll(agent, "status=paid,in_progress&needs_reply=true")
    assert response.status_code == 200
    assert ids_of(response) == [work["paid_new"], work["started"], work["paid_old"]]
    assert response.body["needs_reply"] == [{"order_id": work["delivered"], "message_id": asked}]
    assert "needs_reply" not in poll(agent).body  # only when asked for


def test_the_poll_refuses_an_unknown_status(agent, work):
    response = poll(agent, "status=paid,shipped")

    assert response.status_code == 400
    assert response.body["code"] == "validation_error"
    assert "status" in response.body["details"]
    assert "shipped" in response.body["error"]


def test_an_agent_cannot_poll_another_agents_orders(agent, other_agent, work):
    Agent.objects.filter(pk=other_agent.id).update(last_poll_at=None)

    response = agent.api.get(f"/api/agents/{other_agent.id}/orders")
    unknown = agent.api.get("/api/agents/agt_1780278669252_000000000/orders")

    assert response.status_code == 403
    assert response.body["code"] == "not_your_agent"
    assert unknown.status_code == 404
    assert Agent.objects.get(pk=other_agent.id).last_poll_at is None


def test_the_poll_needs_an_agent_key(agent, buyer, work):
    response = buyer.api.get(f"/api/agents/{agent.id}/orders")

    assert response.status_code == 401
    assert response.body["code"] == "agent_key_required"
    assert Agent.objects.get(pk=agent.id).last_poll_at is None


def test_the_poll_is_limited_to_30_per_hour_per_ip(agent):
    for _ in range(30):
        assert poll(agent).status_code == 200
    Agent.objects.filter(pk=agent.id).update(last_poll_at=timezone.now() - timedelta(hours=1))
    stale = Agent.objects.get(pk=agent.id).last_poll_at

    limited = poll(agent)

    assert limited.status_code == 429
    assert limited.body["code"] == "rate_limited"
    # Up to two windows: the rest of this hour, then until enough of its count has slid out.
    assert 1 <= int(limited["Retry-After"]) <= 2 * 3600
    assert limited["X-RateLimit-Limit"] == "30"
    assert limited["X-RateLimit-Remaining"] == "0"
    # A refused poll is not a poll.
    assert Agent.objects.get(pk=agent.id).last_poll_at == stale


# --- messages --------------------------------------------------------------------------------


def test_messages_are_readable_by_both_parties_and_page_with_after(buyer, agent, other_buyer, other_agent):
    order = make_order(buyer, agent, Status.PAID)
    path = f"/api/orders/{order.id}/messages"
    contents = ["Any questions?", "  Which fox?  ", "The red one.", "On it.", "Thanks!"]
    senders = [buyer, agent, buyer, agent, buyer]
    for sender, content in zip(senders, contents, strict=True):
        assert sender.api.post(path, {"content": content}).status_code == 201

    for party in (buyer, agent):
        response = party.api.get(path)
        assert response.status_code == 200
        assert [m["content"] for m in response.body["data"]] == [c.strip() for c in contents]
        assert [m["sender_role"] for m in response.body["data"]] == ["buyer", "agent", "buyer", "agent", "buyer"]
        seen, pages = walk(party.api, path, limit=2, cursor_param="after")
        assert pages == 3
        assert seen == list(Message.objects.filter(order=order).order_by("id").values_list("id", flat=True))

    stored = list(Message.objects.filter(order=order).order_by("id").values_list("sender_role", "sender_id"))
    assert stored[:2] == [("buyer", buyer.wallet), ("agent", agent.id)]
    for stranger in (other_buyer, other_agent):
        assert stranger.api.get(path).status_code == 404
        assert stranger.api.post(path, {"content": "Hello?"}).status_code == 404
    assert Message.objects.filter(order=order).count() == 5


def test_messages_after_a_cursor_skip_what_was_read(buyer, agent):
    order = make_order(buyer, agent, Status.IN_PROGRESS)
    path = f"/api/orders/{order.id}/messages"
    first = buyer.api.post(path, {"content": "First"}).body["data"]["id"]
    agent.api.post(path, {"content": "Second"})

    response = agent.api.get(f"{path}?after={first}")

    assert [m["content"] for m in response.body["data"]] == ["Second"]
    assert response.body["next_cursor"] is None


def test_messaging_opens_only_once_the_order_is_paid(buyer, agent):
    order = make_order(buyer, agent, Status.QUOTED)

    response = buyer.api.post(f"/api/orders/{order.id}/messages", {"content": "Hello?"})

    assert response.status_code == 409
    assert response.body["code"] == "messaging_unavailable"
    assert not Message.objects.exists()


@pytest.mark.parametrize("content", ["", "   ", "x" * 2001])
def test_a_message_must_be_1_to_2000_characters(buyer, agent, content):
    order = make_order(buyer, agent, Status.PAID)

    response = buyer.api.post(f"/api/orders/{order.id}/messages", {"content": content})

    assert response.status_code == 400
    assert "content" in response.body["details"]
    assert not Message.objects.exists()


# --- reviews ---------------------------------------------------------------------------------


def test_reviews_update_the_agents_and_the_services_rating(buyer, other_buyer, agent, anonymous):
    service = make_service(agent.agent, price_type="quote", price="0.00")
    first = make_order(buyer, agent, Status.COMPLETED, service=service)
    second = make_order(other_buyer, agent, Status.COMPLETED, service=service)

    five = buyer.api.post(f"/api/orders/{first.id}/review", {"rating": 5, "comment": "Lovely fox."})
    four = other_buyer.api.post(f"/api/orders/{second.id}/review", {"rating": 4})

    assert five.status_code == four.status_code == 201, (five.body, four.body)
    assert (five.body["data"]["rating"], five.body["data"]["comment"]) == (5, "Lovely fox.")
    agent_row = Agent.objects.get(pk=agent.id)
    service_row = Service.objects.get(pk=service.id)
    assert (agent_row.avg_rating, agent_row.rating_count, agent_row.rating_total) == (Decimal("4.50"), 2, 9)
    assert (service_row.avg_rating, service_row.rating_count, service_row.rating_total) == (Decimal("4.50"), 2, 9)
    assert Review.objects.filter(agent=agent.agent).count() == 2
    assert anonymous.get(f"/api/agents/{agent.id}").body["data"]["avg_rating"] == "4.50"
    listed = anonymous.get(f"/api/services?agent_id={agent.id}").body["data"][0]
    assert (listed["avg_rating"], listed["agent"]["avg_rating"], listed["agent"]["rating_count"]) == ("4.50", "4.50", 2)


def test_a_second_review_of_an_order_is_409_and_leaves_the_ratings(buyer, agent):
    order = make_order(buyer, agent, Status.COMPLETED)
    assert buyer.api.post(f"/api/orders/{order.id}/review", {"rating": 5}).status_code == 201

    again = buyer.api.post(f"/api/orders/{order.id}/review", {"rating": 1})

    assert again.status_code == 409
    assert again.body["code"] == "already_reviewed"
    agent_row = Agent.objects.get(pk=agent.id)
    assert (agent_row.avg_rating, agent_row.rating_count) == (Decimal("5.00"), 1)
    assert Review.objects.get(order=order).rating == 5


def test_the_database_holds_one_review_per_order(buyer, agent):
    order = make_order(buyer, agent, Status.COMPLETED)
    Review.objects.create(order=order, agent_id=order.agent_id, service_id=order.service_id, rating=5)

    with pytest.raises(IntegrityError), transaction.atomic():
        Review.objects.create(order=order, agent_id=order.agent_id, service_id=order.service_id, rating=1)

    assert Review.objects.filter(order=order).count() == 1


def test_only_a_completed_order_can_be_reviewed(buyer, agent):
    order = make_order(buyer, agent, Status.DELIVERED)

    response = buyer.api.post(f"/api/orders/{order.id}/review", {"rating": 5})

    assert response.status_code == 409
    assert response.body["code"] == "review_unavailable"
    assert not Review.objects.exists()
    assert Agent.objects.get(pk=agent.id).rating_count == 0


def test_only_the_buyer_reviews(buyer, agent, other_buyer):
    order = make_order(buyer, agent, Status.COMPLETED)

    by_agent = agent.api.post(f"/api/orders/{order.id}/review", {"rating": 5})
    by_stranger = other_buyer.api.post(f"/api/orders/{order.id}/review", {"rating": 1})

    assert by_agent.status_code == 403
    assert by_stranger.status_code == 404
    assert not Review.objects.exists()


@pytest.mark.parametrize("body", [{"rating": 0}, {"rating": 6}, {"rating": "5"}, {"rating": 4, "comment": "x" * 501}])
def test_a_review_needs_a_rating_1_to_5_and_a_short_comment(buyer, agent, body):
    order = make_order(buyer, agent, Status.COMPLETED)

    response = buyer.api.post(f"/api/orders/{order.id}/review", body)

    assert response.status_code == 400
    assert not Review.objects.exists()


def test_an_agent_buyer_can_review_what_it_bought(agent, other_agent):
    service = make_service(agent.agent, price_type="quote", price="0.00")
    order = make_order(other_agent, agent, Status.COMPLETED, service=service)

    response = other_agent.api.post(f"/api/orders/{order.id}/review", {"rating": 4})

    assert response.status_code == 201, response.body
    assert Agent.objects.get(pk=agent.id).avg_rating == Decimal("4.00")
    assert Agent.objects.get(pk=other_agent.id).rating_count == 0


def test_base_buyers_see_their_orders_too(agent):
    base = make_buyer("base")
    order = make_order(base, agent, Status.PENDING_QUOTE)

    assert ids_of(base.api.get("/api/orders")) == [order.id]
