"""A concurrency soak on PostgreSQL: 16 client threads drive SOAK_ORDERS orders (1,000 unless the
environment says otherwise) through whole lifecycles at once, then the books are checked.

Each order is one client's job, on one of 16 threads, so steps of different orders interleave on
the shared rows (agents' counters and ratings, services, the ledger, the task queue). Clients speak
the JSON API, as buyers and agents do (the Django test client: the whole request stack, no
network), each order from its own client address (so the per-IP rate limits, which stay on, are
those of 1,000 clients and not of one). Along the way: random accepts, revisions (while the order
has some left), disputes resolved by a staff actor through `transition` (release, refund, split or
send back), cancels by either party, and races: the buyer's cancel against the agent's start on a
paid order, and a double-clicked approve.

Paying is real: each buyer's wallet signs a USDC transfer carrying the order's memo on a Solana
devchain of the soak's own, and the buyer submits it with `PATCH action=pay`, verified on chain as
any payment. Settlement runs in full (payout and refund rows, their journals, their queued tasks);
the tasks themselves are not run, so their USDC is still in escrow, as the ledger says.

Afterwards, for every order:
- every ledger journal sums to zero, each kind is posted once, and the order's escrow account is
  back at zero (all of it released or refunded);
- every completed order has exactly one payout (a split also one refund); every cancelled order
  that was paid exactly one refund, and one that was not, none; each transfer has one queued task;
- its OrderEvent chain, replayed from its creation through the transition TABLE, only ever takes
  steps the table allows and ends in the order's status; no event is there twice;
- each agent's `completed_orders` counts exactly its completed orders;
- `manage.py reconcile` finds the escrow wallet's USDC on chain equal to the ledger.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Q, Sum
from django.test import Client
from django_tasks_db.models import DBTaskResult

from agents.models import Agent, Service
from lib.principal import Principal
from orders.core.transitions import TABLE, transition
from orders.models import Order, OrderEvent, Status
from payments import chains
from payments.ledger import usd_to_base_units
from payments.models import LedgerEntry, OutgoingTransfer, Payment
from tests.conftest import WalletBuyer, make_agent, make_buyer, make_service
from tests.payments import solana_helpers

ORDERS = int(os.environ.get("SOAK_ORDERS", "1000"))
CLIENTS = 16
SEED = int(os.environ.get("SOAK_SEED", "20261124"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="16 writers at once: SQLite takes one writer at a time, so there is no concurrency to soak",
    ),
    pytest.mark.django_db(transaction=True),
]


@dataclass
class World:
    agents: list[Any]
    buyers: list[WalletBuyer]
    services: list[Service]
    staff: Principal
    outcomes: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, what: str) -> None:
        with self.lock:
            self.outcomes[what] += 1


class Caller:
    """One party of one order, on one thread: its own test client and client address."""

    def __init__(self, headers: dict[str, str], address: str) -> None:
        self.client = Client()
        self.headers = headers
        self.address = address

    def call(self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200,)) -> dict[str, Any]:
        response = self.client.generic(
            method,
            path,
            json.dumps(body) if body is not None else "",
            content_type="application/json",
            headers=self.headers,
            REMOTE_ADDR=self.address,
        )
        data: dict[str, Any] = response.json()
        assert response.status_code in ok, (method, path, body, response.status_code, data)
        data["status_code"] = response.status_code
        return data


def race(*calls: Any) -> list[dict[str, Any]]:
    """Run the calls at the same moment, each on its own thread; their replies in order."""
    barrier = threading.Barrier(len(calls))
    replies: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            barrier.wait()
            replies[index] = calls[index]()
        except BaseException as exc:  # re-raised on the caller's thread
            replies[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for reply in replies:
        if isinstance(reply, BaseException):
            raise reply
    return replies


def pay(buyer: Caller, url: str, order: dict[str, Any], persona: WalletBuyer) -> str:
    """Sign and send the transfer from the buyer's own wallet, then submit it as the buyer would."""
    instructions = chains.client("solana").payment_instructions()
    amount = usd_to_base_units(Decimal(order["quoted_price_usd"]))
    signature = solana_helpers.pay_order(solana_url(), persona.secret, instructions, amount, order["payment_reference"])
    return str(buyer.call("PATCH", url, {"action": "pay", "escrow_tx_hash": signature})["data"]["status"])


def drive(world: World, number: int) -> str:
    """One order's whole life, as its buyer and agent would live it. Returns the final status."""
    try:
        return _drive(world, number, random.Random(SEED * 100_003 + number))
    finally:
        connection.close()  # each thread's own connection; the test's teardown needs them gone


def _drive(world: World, number: int, rng: random.Random) -> str:
    address = f"127.{(number >> 16) & 255}.{(number >> 8) & 255}.{number & 255}"
    buyer_persona = world.buyers[number % len(world.buyers)]
    service = rng.choice(world.services)
    agent_persona = next(a for a in world.agents if a.id == service.agent_id)
    buyer = Caller(buyer_persona.api.headers, address)
    agent = Caller(agent_persona.api.headers, address)

    created = buyer.call("POST", "/api/orders", {"service_id": service.id, "brief": f"Soak order {number}."}, ok=(201,))
    order_id = created["data"]["id"]
    url = f"/api/orders/{order_id}"
    status = created["data"]["status"]

    def buyer_act(action: str, **extra: Any) -> Any:
        return buyer.call("PATCH", url, {"action": action, **extra})

    def agent_cancel() -> str:
        world.count("agent cancelled")
        return str(agent.call("PATCH", url, {"action": "cancel", "reason": "Cannot take this on."})["data"]["status"])

    # Quoting (or declining).
    if status == Status.PENDING_QUOTE:
        if rng.random() < 0.04:
            return agent_cancel() if rng.random() < 0.5 else buyer_act("cancel")["data"]["status"]
        price = f"{rng.randint(5, 400)}.{rng.randint(0, 99):02d}"
        status = agent.call("POST", f"{url}/quote", {"price_usd": price})["data"]["status"]
    if rng.random() < 0.04:
        return buyer_act("cancel", reason="Changed my mind.")["data"]["status"]
    if rng.random() < 0.5:
        status = buyer_act("accept")["data"]["status"]

    # Paying, then the race between the buyer walking away and the agent starting.
    status = pay(buyer, url, buyer.call("GET", url)["data"], buyer_persona)
    assert status == Status.PAID, status
    if rng.random() < 0.08:
        world.count("race: cancel vs start")
        cancelled, started = race(
            lambda: buyer.call("PATCH", url, {"action": "cancel"}, ok=(200, 409)),
            lambda: Caller(agent.headers, address).call("POST", f"{url}/start", ok=(200, 409)),
        )
        codes = sorted([cancelled["status_code"], started["status_code"]])
        assert codes == [200, 409], (cancelled, started)
        if cancelled["status_code"] == 200:
            return "cancelled"
    elif rng.random() < 0.03:
        return agent_cancel()
    elif rng.random() < 0.7:
        agent.call("POST", f"{url}/start")
        if rng.random() < 0.02:
            return agent_cancel()

    # Delivering, and what the buyer (and staff) make of it.
    for round_ in range(6):
        delivered = agent.call(
            "POST",
            f"{url}/deliver",
            {"deliverable_url": f"https://cdn.example.com/{order_id}/{round_}.pdf", "deliverable_media_type": "link"},
        )["data"]
        # The agent's reply: its allowed_actions are the agent's, the counts are the order's.
        revisions_left = delivered["revision_count"] < delivered["max_revisions"]
        roll = rng.random()
        if round_ == 5 or roll < 0.55:
            if rng.random() < 0.1:
                world.count("race: double approve")
                first, second = race(
                    lambda: buyer_act("approve"),
                    lambda: Caller(buyer.headers, address).call("PATCH", url, {"action": "approve"}),
                )
                assert first["data"]["status"] == second["data"]["status"] == "completed"
                return "completed"
            return buyer_act("approve")["data"]["status"]
        if roll < 0.8 and revisions_left:
            world.count("revision")
            buyer_act("revision", feedback=f"Round {round_}: darker, please.")
            continue
        world.count("dispute")
        buyer_act("dispute", reason="This is not what the brief asked for.")
        resolution = rng.choice(["release", "refund", "split", "send_back"])
        world.count(f"resolved: {resolution}")
        data: dict[str, Any] = {"note": "Resolved by the soak's staff."}
        if resolution == "split":
            quoted_price = Order.objects.values_list("quoted_price_usd", flat=True).get(pk=order_id)
            assert quoted_price is not None  # a paid order was quoted
            data["agent_amount_usd"] = str((quoted_price / 2).quantize(Decimal("0.01")))
        order = transition(order_id, resolution, world.staff, **data)
        if resolution != "send_back":
            return order.status
    raise AssertionError("unreachable: the last round approves")


SOLANA: dict[str, str] = {}


def solana_url() -> str:
    return SOLANA["url"]


@pytest.fixture
def world(settings: Any, django_user_model: Any) -> Iterator[World]:
    # Rate-limit counters in this process's memory: the database cache would add a row write to
    # every request of 16 threads. The limits themselves stay on.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    agents = [make_agent(f"Soak Agent {n}") for n in range(8)]
    services = []
    for seller in agents:
        services.append(make_service(seller.agent, price_type="quote", price="0.00", max_revisions=2))
        services.append(make_service(seller.agent, price_type="fixed", price="49.99", max_revisions=1))
    user = django_user_model.objects.create_user("soak-staff", password="correct horse battery", is_staff=True)
    buyers = [make_buyer("solana") for _ in range(CLIENTS * 2)]
    with solana_helpers.running_devchain() as devchain:  # the soak's own: its escrow starts empty
        solana_helpers.use_devchain(settings, devchain)
        SOLANA["url"] = devchain.url
        for buyer in buyers:
            solana_helpers.fund_wallet(devchain.url, buyer.wallet, sol=10**9, usdc=50_000 * 10**6)
        yield World(agents, buyers, services, Principal(staff_user_id=user.pk))


def test_soak(world: World) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=CLIENTS, thread_name_prefix="soak-client") as pool:
        finals = list(pool.map(lambda number: drive(world, number), range(ORDERS)))
    took = time.monotonic() - started

    orders = {order.id: order for order in Order.objects.all()}
    assert len(orders) == ORDERS
    statuses = Counter(order.status for order in orders.values())
    assert set(statuses) <= {Status.COMPLETED, Status.CANCELLED}, statuses
    assert Counter(finals) == statuses

    checked = [check_ledger(orders), check_transfers(orders), check_events(orders), check_agents()]
    out = StringIO()
    call_command("reconcile", "--chain", "solana", stdout=out)  # raises on an unexplained difference
    print("\n" + out.getvalue())
    print(  # the soak's numbers, for the record (`pytest -s` shows them)
        f"\nsoak: {ORDERS} orders by {CLIENTS} clients in {took:.1f} s ({ORDERS / took:.1f} orders/s); "
        f"{dict(statuses)}; {dict(world.outcomes)}; checked: {'; '.join(checked)}"
    )


def check_ledger(orders: dict[str, Order]) -> str:
    unbalanced = list(LedgerEntry.objects.values("journal").annotate(total=Sum("amount")).exclude(total=0))
    assert unbalanced == [], unbalanced[:5]
    twice = list(
        LedgerEntry.objects.values("order_id", "kind").annotate(n=Count("journal", distinct=True)).filter(n__gt=1)
    )
    assert twice == [], twice[:5]
    escrow_left = list(
        LedgerEntry.objects.filter(account="order_escrow")
        .values("order_id")
        .annotate(total=Sum("amount"))
        .exclude(total=0)
    )
    assert escrow_left == [], escrow_left[:5]
    paid = set(Payment.objects.filter(status="verified").values_list("order_id", flat=True))
    escrowed = set(LedgerEntry.objects.filter(kind="escrow_in").values_list("order_id", flat=True))
    assert paid == escrowed
    assert Payment.objects.values("order_id").annotate(n=Count("id")).filter(n__gt=1).count() == 0
    journals = LedgerEntry.objects.values("journal").distinct().count()
    return f"{journals} journals sum to zero, each kind once per order, every order's escrow back to 0"


def check_transfers(orders: dict[str, Order]) -> str:
    kinds: dict[str, Counter[str]] = {order_id: Counter() for order_id in orders}
    for order_id, kind in OutgoingTransfer.objects.values_list("order_id", "kind"):
        kinds[order_id][kind] += 1
    paid = set(Payment.objects.values_list("order_id", flat=True))
    last_action = dict(
        OrderEvent.objects.exclude(to_status="")
        .filter(to_status__in=[Status.COMPLETED, Status.CANCELLED])
        .values_list("order_id", "action")
    )
    for order_id, order in orders.items():
        found = kinds[order_id]
        if order.status == Status.COMPLETED:
            expected = Counter({"payout": 1, "refund": 1 if last_action[order_id] == "split" else 0})
        elif order_id in paid:
            expected = Counter({"refund": 1})
        else:
            expected = Counter()
        assert +found == +expected, (order_id, order.status, last_action.get(order_id), found)
    tasks = Counter(
        args[0]
        for args in DBTaskResult.objects.filter(task_path="payments.tasks.send_transfer").values_list(
            "args_kwargs__args", flat=True
        )
    )
    transfers = set(OutgoingTransfer.objects.values_list("pk", flat=True))
    assert set(tasks) == transfers
    assert set(tasks.values()) == {1}
    return f"{len(transfers)} transfers: one payout per completed order, one refund per paid cancel, one task each"


def check_events(orders: dict[str, Order]) -> str:
    # An action may have several rows for one actor, from different sources (`Rule.when`).
    by_rule: dict[tuple[str, str], list[Any]] = {}
    for rule in TABLE:
        by_rule.setdefault((rule.action, rule.actor.value), []).append(rule)
    events: dict[str, list[OrderEvent]] = {order_id: [] for order_id in orders}
    for event in OrderEvent.objects.order_by("id"):
        events[event.order_id].append(event)
    for order_id, order in orders.items():
        chain = [event for event in events[order_id] if event.to_status]
        first, steps = chain[0], chain[1:]
        assert first.action == "create"
        assert first.to_status in (Status.PENDING_QUOTE, Status.QUOTED)
        status = first.to_status
        for event in steps:
            rules = by_rule.get((event.action, event.actor_kind))
            assert rules, (order_id, event.action, event.actor_kind)
            rule = next((rule for rule in rules if status in rule.sources), rules[0])
            assert event.from_status == status, (order_id, event.action, event.from_status, status)
            assert status in rule.sources, (order_id, event.action, status)
            assert event.to_status == rule.target, (order_id, event.action, event.to_status)
            status = Status(event.to_status)
        assert status == order.status, (order_id, status, order.status)
        # No event twice: a retried or double-clicked action writes nothing the second time.
        keys = [(e.action, e.from_status, e.to_status, repr(sorted(e.data.items()))) for e in events[order_id]]
        repeats = [a for a, b in itertools.pairwise(keys) if a == b]
        assert repeats == [], (order_id, repeats)
        assert [e.action for e in events[order_id]].count("create") == 1
    replayed = sum(len(chain) for chain in events.values())
    return f"{len(orders)} event chains ({replayed} events) replayed through the table, no repeats"


def check_agents() -> str:
    completed = dict(
        Order.objects.filter(status=Status.COMPLETED)
        .values("agent_id")
        .annotate(n=Count("id"))
        .values_list("agent_id", "n")
    )
    for agent_id, counted in Agent.objects.values_list("id", "completed_orders"):
        assert counted == completed.get(agent_id, 0), (agent_id, counted, completed.get(agent_id, 0))
    assert not Order.objects.filter(~Q(status=Status.COMPLETED), completed_at__isnull=False).exists()
    return f"{len(completed)} agents' completed_orders counters exact"
