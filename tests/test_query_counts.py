"""Each endpoint runs a fixed number of SQL queries, whatever the number of rows (DESIGN.md section 9).

Every endpoint is measured twice, from the same starting point: in a small world (1 order, 1
message, 1 deliverable, 1 listing) and in a large one (50 orders, 200 messages on the order, 20
deliverables on each order, 50 listings from 50 agents). Lists are asked for a page big enough to
hold every row, so each row is really rendered. Both counts must equal the number in QUERIES,
the measured count (tight: one more query fails; one fewer asks for the table to be lowered).

Counted: everything the request runs on the database, on-commit callbacks included. Not counted:
the rate-limit counters, which live in the cache (Redis in production); the test swaps in an
in-memory cache so the counts are the app's own. API keys are in their steady state (used within
the last minute, so authentication does not write `last_used_at`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.utils import timezone

from agents.models import Agent, ApiKey, Service
from orders.core.transitions import new_payment_reference
from orders.models import Deliverable, Message, Order, SenderRole, Status
from tests.conftest import AgentPersona, Api, WalletBuyer, make_agent, make_order, make_service


@dataclass(frozen=True)
class Scale:
    orders: int
    messages: int
    deliverables: int
    services: int


SMALL = Scale(orders=1, messages=1, deliverables=1, services=1)
LARGE = Scale(orders=50, messages=200, deliverables=20, services=50)

# endpoint -> queries, measured; the same on SQLite and PostgreSQL. "auth" is the one query that
# reads the API key (with its agent) or the wallet session. "order" is the order as the API shows
# it, in one query: the order joined with its service and agent, and its details (orders.reads.details:
# its current deliverables, open payments with their returns, transfers and dispute decisions) as
# one JSON column. A list is the page of orders (with the service's title and the agent's name),
# then one query for the details of all of them ("+1"). A write's transaction is
# SAVEPOINT ... RELEASE here (the test runs inside a transaction), BEGIN ... COMMIT in production.
QUERIES: dict[str, int] = {
    "GET /api/agents/{id}/orders?status=...": 4,  # auth, page of orders+1, last_poll_at (at most every 10 s)
    "GET /api/orders (buyer)": 3,  # auth, page of orders+1
    "GET /api/orders (agent)": 3,  # auth, page of orders+1
    "GET /api/orders/{id}": 2,  # auth, order
    # auth, order (404 check), savepoint, locked order (with service and agent), update, event,
    # release, the details (the answer is the order the transition moved, not read again)
    "PATCH /api/orders/{id} accept": 8,
    # as accept, plus the agent's completed_orders, the payment, the ledger rows, the payout
    # transfer, and (on commit) the payout task
    "PATCH /api/orders/{id} approve": 13,
    "POST /api/orders/{id}/quote": 7,  # auth, savepoint, locked order, update, event, release, details
    "POST /api/orders/{id}/start": 7,  # as quote
    # as quote, plus supersede the old deliverables, one bulk insert, and one task fetching the images
    "POST /api/orders/{id}/deliver": 10,
    # auth, order, savepoint, locked order (with its agent, so the webhook needs no read), quota
    # update, the prompt, event, release
    "POST /api/orders/{id}/generate": 8,
    # an agent buyer's order: the delivery, then the system's release in the same transaction:
    # completed_orders, the payment, the ledger rows, the payout and its task, the order update, the
    # event and its webhook agents
    "POST /api/orders/{id}/deliver (agent buyer)": 19,
    "GET /api/orders/{id}/messages": 3,  # auth, order, page of messages
    # auth, order (with its agent, who hears about it by webhook), savepoint, message, event, release
    "POST /api/orders/{id}/messages": 6,
    # auth, order, savepoint, review, agent rating (lock, update), service rating (lock, update), event, release
    "POST /api/orders/{id}/review": 10,
    "POST /api/orders": 7,  # auth, service, savepoint, order, event, release, order
    # Idempotency-Key: as without, plus the claim (INSERT ... ON CONFLICT DO NOTHING, read back) and
    # the stored answer (UPDATE); a replay is auth and the claim that finds the answer, no view.
    "POST /api/orders (Idempotency-Key)": 10,
    "POST /api/orders (Idempotency-Key replayed)": 3,
    "GET /api/services": 1,  # anonymous: one page of services joined with their agents
    "GET /api/agents/{id}": 1,  # anonymous: the agent
    "GET /api/agents/{id}/services": 3,  # auth, agent exists, services
    "GET /api/agents/me": 1,  # auth
    "PATCH /api/agents/me": 2,  # auth, update
}


# --- the world ----------------------------------------------------------------------------------


@dataclass
class World:
    buyer: WalletBuyer
    agent: AgentPersona
    scale: Scale
    service: Service

    @property
    def agent_api(self) -> Any:
        return self.agent.api

    def url(self, order: Order, suffix: str = "") -> str:
        return f"/api/orders/{order.id}{suffix}"


BACKGROUND_STATUSES = (Status.PAID, Status.IN_PROGRESS, Status.DELIVERED)


def _deliverables(order: Order, count: int) -> list[Deliverable]:
    return [
        Deliverable(order=order, url=f"https://cdn.example.com/{order.id}/{i}.png", media_type="image")
        for i in range(count)
    ]


def populate(buyer: WalletBuyer, agent: AgentPersona, scale: Scale) -> World:
    """`scale.orders` orders between the buyer and the agent, in paid/in_progress/delivered, each
    with `scale.deliverables` deliverables; `scale.services` listings, one per agent."""
    service = make_service(agent.agent, price_type="quote", price="0.00")
    now = timezone.now()
    orders = Order.objects.bulk_create(
        [
            Order(
                service=service,
                agent=agent.agent,
                buyer_kind="human",
                buyer_wallet=buyer.wallet,
                buyer_chain=buyer.chain,
                brief="Draw a fox in a lab coat, flat colours.",
                payment_chain=buyer.chain,
                payment_reference=new_payment_reference(),
                status=BACKGROUND_STATUSES[i % len(BACKGROUND_STATUSES)],
                quoted_price_usd=Decimal("45.00"),
                platform_fee_usd=Decimal("4.50"),
                quoted_at=now,
                accepted_at=now,
                paid_at=now,
            )
            for i in range(scale.orders)
        ]
    )
    Deliverable.objects.bulk_create([d for order in orders for d in _deliverables(order, scale.deliverables)])
    # Listings: the agent's own, and one from each of `services - 1` other agents.
    agents = Agent.objects.bulk_create(
        [
            Agent(name=f"Bulk agent {i}", slug=f"bulk-agent-{i}-{new_payment_reference()}", webhook_secret="whsec_x")
            for i in range(scale.services - 1)
        ]
    )
    Service.objects.bulk_create(
        [
            Service(
                agent=other,
                title=f"Listing number {i}",
                description="A listing made in bulk to fill the catalogue for the query counts.",
                category="design",
                price_usd=Decimal("10.00"),
                price_type="fixed",
            )
            for i, other in enumerate(agents)
        ]
    )
    return World(buyer, agent, scale, service)


def target(world: World, status: str, *, messages: int = 0, deliverables: int = 0) -> Order:
    """One order walked to `status` through the real transitions, then given extra rows."""
    order = make_order(world.buyer, world.agent, status, service=world.service)
    Message.objects.bulk_create(
        [
            Message(order=order, sender_role=SenderRole.BUYER, sender_id=world.buyer.wallet, content=f"Message {i}")
            for i in range(messages)
        ]
    )
    current = order.deliverables.filter(superseded=False).count()
    Deliverable.objects.bulk_create(_deliverables(order, max(0, deliverables - current)))
    return order


# --- the endpoints ------------------------------------------------------------------------------

Call = Callable[[], Any]


def poll(w: World) -> tuple[Call, int]:
    url = f"/api/agents/{w.agent.id}/orders?status=paid,in_progress,delivered&limit=100"
    return (lambda: w.agent_api.get(url)), w.scale.orders


def buyer_list(w: World) -> tuple[Call, int]:
    return (lambda: w.buyer.api.get("/api/orders?limit=100")), w.scale.orders


def agent_list(w: World) -> tuple[Call, int]:
    return (lambda: w.agent_api.get("/api/orders?limit=100")), w.scale.orders


def detail(w: World) -> tuple[Call, int]:
    order = target(w, Status.DELIVERED, messages=w.scale.messages, deliverables=w.scale.deliverables)
    return (lambda: w.buyer.api.get(w.url(order))), w.scale.deliverables


def accept(w: World) -> tuple[Call, int]:
    order = target(w, Status.QUOTED, messages=w.scale.messages)
    return (lambda: w.buyer.api.patch(w.url(order), {"action": "accept"})), 0


def approve(w: World) -> tuple[Call, int]:
    order = target(w, Status.DELIVERED, messages=w.scale.messages, deliverables=w.scale.deliverables)
    return (lambda: w.buyer.api.patch(w.url(order), {"action": "approve"})), w.scale.deliverables


def quote(w: World) -> tuple[Call, int]:
    order = target(w, Status.PENDING_QUOTE)
    return (lambda: w.agent_api.post(w.url(order, "/quote"), {"price_usd": "45.00"})), 0


def start(w: World) -> tuple[Call, int]:
    order = target(w, Status.PAID, messages=w.scale.messages)
    return (lambda: w.agent_api.post(w.url(order, "/start"))), 0


def deliver(w: World) -> tuple[Call, int]:
    # A re-delivery: as many deliverables replaced as sent.
    order = target(w, Status.REVISION_REQUESTED, messages=w.scale.messages, deliverables=w.scale.deliverables)
    items = [
        {"deliverable_url": f"https://cdn.example.com/v2/{i}.png", "deliverable_media_type": "image"}
        for i in range(w.scale.deliverables)
    ]
    return (lambda: w.agent_api.post(w.url(order, "/deliver"), {"deliverables": items})), w.scale.deliverables


def generate(w: World) -> tuple[Call, int]:
    # A workspace with as many prompts already sent as the scale has deliverables.
    service = make_service(w.agent.agent, price_type="weekly", price="20.00")
    order = make_order(w.buyer, w.agent, Status.IN_PROGRESS, service=service)
    Deliverable.objects.bulk_create(
        [Deliverable(order=order, prompt=f"Prompt {i}", status="pending") for i in range(w.scale.deliverables)]
    )
    return (lambda: w.buyer.api.post(w.url(order, "/generate"), {"prompt": "One more fox."})), 0


def deliver_to_an_agent(w: World) -> tuple[Call, int]:
    buyer = make_agent("Buyer bot")
    order = make_order(buyer, w.agent, Status.PAID, service=make_service(w.agent.agent, price="20.00"))
    items = [
        {"deliverable_url": f"https://cdn.example.com/bot/{i}.png", "deliverable_media_type": "image"}
        for i in range(w.scale.deliverables)
    ]
    return (lambda: w.agent_api.post(w.url(order, "/deliver"), {"deliverables": items})), w.scale.deliverables


def messages(w: World) -> tuple[Call, int]:
    order = target(w, Status.PAID, messages=w.scale.messages)
    return (lambda: w.buyer.api.get(w.url(order, "/messages?limit=200"))), w.scale.messages


def message_post(w: World) -> tuple[Call, int]:
    order = target(w, Status.PAID, messages=w.scale.messages)
    return (lambda: w.agent_api.post(w.url(order, "/messages"), {"content": "On it."})), 0


def review(w: World) -> tuple[Call, int]:
    order = target(w, Status.COMPLETED, messages=w.scale.messages, deliverables=w.scale.deliverables)
    return (lambda: w.buyer.api.post(w.url(order, "/review"), {"rating": 5, "comment": "Great."})), 0


def order_create(w: World) -> tuple[Call, int]:
    body = {"service_id": w.service.id, "brief": "Another fox, this time in a spacesuit."}
    return (lambda: w.buyer.api.post("/api/orders", body)), 0


def order_create_keyed(w: World) -> tuple[Call, int]:
    body = {"service_id": w.service.id, "brief": "Another fox, this time in a spacesuit."}
    return (lambda: w.buyer.api.post("/api/orders", body, **{"Idempotency-Key": "k-1"})), 0


def order_create_replayed(w: World) -> tuple[Call, int]:
    call, rows = order_create_keyed(w)
    assert call().status_code == 201
    return call, rows


def catalogue(w: World) -> tuple[Call, int]:
    # The agent's own listing is the quote service made by populate(), plus the bulk ones.
    return (lambda: Api(Client()).get("/api/services?limit=100")), w.scale.services


def agent_public(w: World) -> tuple[Call, int]:
    return (lambda: Api(Client()).get(f"/api/agents/{w.agent.id}")), 0


def agent_services(w: World) -> tuple[Call, int]:
    for i in range(w.scale.services - 1):
        make_service(w.agent.agent, title=f"Own listing {i}")
    return (lambda: w.agent_api.get(f"/api/agents/{w.agent.id}/services")), w.scale.services


def me(w: World) -> tuple[Call, int]:
    return (lambda: w.agent_api.get("/api/agents/me")), 0


def me_update(w: World) -> tuple[Call, int]:
    body = {"description": "Makes things, quickly.", "rotate_webhook_secret": True}
    return (lambda: w.agent_api.patch("/api/agents/me", body)), 0


CASES: dict[str, tuple[Callable[[World], tuple[Call, int]], int]] = {
    "GET /api/agents/{id}/orders?status=...": (poll, 200),
    "GET /api/orders (buyer)": (buyer_list, 200),
    "GET /api/orders (agent)": (agent_list, 200),
    "GET /api/orders/{id}": (detail, 200),
    "PATCH /api/orders/{id} accept": (accept, 200),
    "PATCH /api/orders/{id} approve": (approve, 200),
    "POST /api/orders/{id}/quote": (quote, 200),
    "POST /api/orders/{id}/start": (start, 200),
    "POST /api/orders/{id}/deliver": (deliver, 200),
    "POST /api/orders/{id}/generate": (generate, 201),
    "POST /api/orders/{id}/deliver (agent buyer)": (deliver_to_an_agent, 200),
    "GET /api/orders/{id}/messages": (messages, 200),
    "POST /api/orders/{id}/messages": (message_post, 201),
    "POST /api/orders/{id}/review": (review, 201),
    "POST /api/orders": (order_create, 201),
    "POST /api/orders (Idempotency-Key)": (order_create_keyed, 201),
    "POST /api/orders (Idempotency-Key replayed)": (order_create_replayed, 201),
    "GET /api/services": (catalogue, 200),
    "GET /api/agents/{id}": (agent_public, 200),
    "GET /api/agents/{id}/services": (agent_services, 200),
    "GET /api/agents/me": (me, 200),
    "PATCH /api/agents/me": (me_update, 200),
}


def _rows(body: dict[str, Any]) -> int:
    data = body["data"]
    if isinstance(data, list):
        return len(data)
    return len(data.get("deliverables", []))


@pytest.fixture
def memory_cache(settings: Any) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_the_endpoint_runs_a_fixed_number_of_queries(
    name, buyer, agent, memory_cache, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    setup, status = CASES[name]
    limit = QUERIES[name]
    counts = []
    for scale in (SMALL, LARGE):
        with transaction.atomic():  # each scale starts from the same empty world
            world = populate(buyer, agent, scale)
            call, rows = setup(world)
            ApiKey.objects.update(last_used_at=timezone.now())
            cache.clear()
            with (
                django_assert_max_num_queries(limit) as captured,
                django_capture_on_commit_callbacks(execute=True),
            ):
                response = call()
            assert response.status_code == status, response.body
            assert _rows(response.body) == rows, "the response did not render every row"
            counts.append(len(captured))
            transaction.set_rollback(True)
    assert counts[0] == counts[1], f"{name}: {counts[0]} queries with 1 row, {counts[1]} with many"
    assert counts[1] == limit, f"{name} now runs {counts[1]} queries: lower QUERIES[{name!r}] (and the notes)"
