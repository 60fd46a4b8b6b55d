"""`make bench`'s data set: agents, services, orders, messages and order events, generated from a fixed
seed and loaded with COPY into a migrated database (bench/run.py decides when).

`load` reads as its steps: each `*_rows` function draws one kind of rows, in a fixed order (the seed
gives the same data every time, so the draws must stay in this order), and the COPYs follow.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import secrets
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

FULL = {"agents": 1_000, "services": 5_000, "orders": 100_000, "messages": 1_000_000}
PAGE_MESSAGES = 200
HEAVY_MESSAGES = 10_000  # on one more order of the hot buyer, at every scale (on top of FULL's messages)
DATA_VERSION = 5  # bump when the generated data changes: older databases are loaded again
HOT_AGENT_SHARE = 0.02  # the polled agent's share of all orders
HOT_AGENT_OPEN = 30  # its newest orders that are paid or in progress (a full page of 20 for the poll)
HOT_BUYER_SHARE = 0.01  # the buyer whose order is read and whose page is rendered
SHOWCASE = 14  # the hot buyer's newest orders that the benchmark reads or writes (fewer at tiny scales)
EVENT_BATCH = 200_000  # order events per COPY (messages go with them)
MESSAGE_COLUMNS = ["id", "order_id", "sender_role", "sender_id", "content", "created_at"]
EVENT_COLUMNS = ["id", "order_id", "action", "actor_kind", "actor_id", "from_status", "to_status", "data", "created_at"]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_counter = 0


def _b36(number: int, width: int) -> str:
    out = []
    for _ in range(width):
        number, digit = divmod(number, 36)
        out.append(_B36[digit])
    return "".join(reversed(out))


def make_id(prefix: str, ms: int) -> str:
    """lib.ids format: `<prefix>_<13-digit ms>_<9 base36>`; a global counter keeps them unique."""
    global _counter
    _counter += 1
    return f"{prefix}_{ms:013d}_{_b36(_counter, 9)}"


def sizes(scale: float) -> dict[str, int]:
    return {
        "agents": max(4, round(FULL["agents"] * scale)),
        "services": max(8, round(FULL["services"] * scale)),
        "orders": max(100, round(FULL["orders"] * scale)),
        "messages": max(PAGE_MESSAGES + 100, round(FULL["messages"] * scale)),
    }


STATUS_WEIGHTS = {
    "pending_quote": 4,
    "quoted": 4,
    "accepted": 3,
    "paid": 5,
    "in_progress": 8,
    "delivered": 6,
    "completed": 55,
    "revision_requested": 3,
    "disputed": 2,
    "cancelled": 10,
}
# Events each status implies (after "create"); fixed-price orders start quoted, so no "quote".
PATHS = {
    "pending_quote": [],
    "quoted": ["quote"],
    "accepted": ["quote", "accept"],
    "paid": ["quote", "accept", "pay"],
    "in_progress": ["quote", "accept", "pay", "start"],
    "delivered": ["quote", "accept", "pay", "start", "deliver"],
    "completed": ["quote", "accept", "pay", "start", "deliver", "approve"],
    "revision_requested": ["quote", "accept", "pay", "start", "deliver", "revision"],
    "disputed": ["quote", "accept", "pay", "start", "deliver", "dispute"],
    "cancelled": ["quote", "cancel"],
}
STATUS_AFTER = {
    "create": "pending_quote",
    "quote": "quoted",
    "accept": "accepted",
    "pay": "paid",
    "start": "in_progress",
    "deliver": "delivered",
    "approve": "completed",
    "revision": "revision_requested",
    "dispute": "disputed",
    "cancel": "cancelled",
}
MESSAGING = {"paid", "in_progress", "delivered", "revision_requested", "completed", "disputed"}
CATEGORIES = ["design", "writing", "code", "video", "research", "data", "audio", "marketing"]
LINES = [
    "Here is the first draft, let me know what you think.",
    "Could you make the logo a little bolder and try a darker blue?",
    "Thanks! Working on the second round now.",
    "The brief mentions three variations; I have attached all of them in the next delivery.",
    "Looks great. One more thing: can the PNG have a transparent background?",
    "Sure. I will also include an SVG version so it scales cleanly on the website and in print.",
    "ok",
    "Quick update: the dataset had duplicates, I removed 312 rows and re-ran the analysis.",
]


def _columns(model: Any) -> list[tuple[str, str, Any, bool]]:
    from django.db.models import JSONField

    columns = []
    for field in model._meta.concrete_fields:
        if field.has_default():
            default = field.get_default()
        elif field.null:
            default = None
        else:
            default = ""
        columns.append((field.column, field.attname, default, isinstance(field, JSONField)))
    return columns


def _copy(cursor: Any, model: Any, rows: list[dict[str, Any]]) -> None:
    columns = _columns(model)
    names = ", ".join(f'"{column}"' for column, *_ in columns)
    with cursor.copy(f'COPY "{model._meta.db_table}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(
                [
                    json.dumps(row.get(attname, default)) if is_json else row.get(attname, default)
                    for _column, attname, default, is_json in columns
                ]
            )


def _copy_tuples(cursor: Any, table: str, names: list[str], rows: Any) -> None:
    with cursor.copy(f'COPY "{table}" ({", ".join(names)}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)


@dataclass(frozen=True)
class Draw:
    """What every step draws from: the seeded generator, the sizes, and the year the orders span."""

    rng: random.Random
    n: dict[str, int]
    start_ms: int
    now_ms: int

    def wallet(self) -> str:
        from solders.pubkey import Pubkey

        return str(Pubkey(self.rng.randbytes(32)))


def at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def load(conninfo: str, scale: float) -> dict[str, Any]:
    """Generate and COPY the data set; returns what the benchmark needs to know about it."""
    import psycopg

    from agents.models import Agent, Service
    from orders.models import Order

    rng = random.Random(7)  # noqa: S311 - synthetic data, reproducible
    now_ms = int(time.time() * 1000) - 3_600_000
    draw = Draw(rng, sizes(scale), start_ms=now_ms - 365 * 86_400_000, now_ms=now_ms)
    started = time.perf_counter()
    agents = agent_rows(draw)
    services, by_agent = service_rows(draw, agents)
    orders, hot_buyer = order_rows(draw, agents, services, by_agent)
    hot = open_hot_orders(orders, agents[0]["id"], hot_buyer)
    counts = message_counts(draw, orders, hot)
    with psycopg.connect(conninfo) as conn, conn.cursor() as cursor:
        _copy(cursor, Agent, agents)
        _copy(cursor, Service, services)
        _copy(cursor, Order, orders)
        log(f"  agents, services, orders copied ({time.perf_counter() - started:.1f} s)")
        copy_messages_and_events(cursor, message_and_event_rows(draw, orders, counts))
        fill_change_stamps(cursor)
        cursor.execute("ANALYZE")
    load_seconds = time.perf_counter() - started
    return {
        "version": DATA_VERSION,
        "scale": scale,
        "sizes": draw.n,
        "load_seconds": round(load_seconds, 1),
        "hot_agent": agents[0]["id"],
        "lifecycle_agent": agents[1]["id"],
        "lifecycle_service": next(
            s["id"] for s in services if s["agent_id"] == agents[1]["id"] and s["price_type"] == "fixed"
        ),
        "hot_buyer": hot_buyer,
        "page_order": hot.page["id"],
        "get_order": hot.get["id"],
        "solana_order": hot.solana["id"],
        "heavy_order": hot.heavy["id"],
        "heavy_messages": HEAVY_MESSAGES,
        "message_orders": [o["id"] for o in hot.messaged],
        "hot_agent_orders": sum(1 for o in orders if o["agent_id"] == agents[0]["id"]),
        "max_messages_per_order": max(count for order_id, count in counts.items() if order_id != hot.heavy["id"]),
    }


def agent_rows(draw: Draw) -> list[dict[str, Any]]:
    rng, n, start_ms = draw.rng, draw.n, draw.start_ms
    agents = []
    for i in range(n["agents"]):
        ms = start_ms - (n["agents"] - i) * 60_000
        agents.append(
            {
                "id": make_id("agt", ms),
                "name": f"Agent {i}",
                "slug": f"bench-agent-{i}",
                "description": "An AI agent that " + rng.choice(CATEGORIES) + "s for you, fast and carefully.",
                "webhook_secret": secrets.token_hex(32),
                "payout_chain": "solana",
                "payout_wallet": draw.wallet(),
                "created_at": at(ms),
            }
        )
    return agents


def service_rows(draw: Draw, agents: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[int, list[int]]]:
    """The services, and which of them (by index) each agent (by index) sells."""
    rng, n, start_ms = draw.rng, draw.n, draw.start_ms
    services: list[dict[str, Any]] = []
    by_agent: dict[int, list[int]] = {}
    for i in range(n["services"]):
        ms = start_ms - (n["services"] - i) * 1_000
        owner = i % n["agents"]
        by_agent.setdefault(owner, []).append(i)
        price_type = "quote" if rng.random() < 0.2 and i != 1 else "fixed"  # agent 1 sells the lifecycle's
        services.append(
            {
                "id": make_id("svc", ms),
                "agent_id": agents[owner]["id"],
                "title": f"{rng.choice(CATEGORIES).title()} service {i}",
                "description": "What you get, how long it takes and what you need to send. " * 3,
                "category": rng.choice(CATEGORIES),
                "price_usd": Decimal(rng.choice(["5.00", "15.00", "25.00", "49.00", "120.00"])),
                "price_type": price_type,
                "created_at": at(ms),
                "updated_at": at(ms),
            }
        )
    return services, by_agent


def order_rows(
    draw: Draw, agents: list[dict[str, Any]], services: list[dict[str, Any]], by_agent: dict[int, list[int]]
) -> tuple[list[dict[str, Any]], str]:
    """The orders (each with `_path`, the steps that led to its status), and the hot buyer's wallet."""
    rng, n, start_ms, now_ms = draw.rng, draw.n, draw.start_ms, draw.now_ms
    # The first agent is the busy one that the poll reads; agent 1 sells the lifecycle's service.
    agent_weights = [max(n["orders"] * HOT_AGENT_SHARE, 2.0 * HOT_AGENT_OPEN)] + [
        1.0 / (k + 1) ** 0.8 for k in range(1, n["agents"])
    ]
    rest = sum(agent_weights[1:])
    agent_weights[1:] = [w / rest * (n["orders"] - agent_weights[0]) for w in agent_weights[1:]]
    order_agents = rng.choices(range(n["agents"]), weights=agent_weights, k=n["orders"])
    buyer_pool = [draw.wallet() for _ in range(max(10, n["orders"] // 5))]
    hot_buyer = buyer_pool[0]
    statuses = list(STATUS_WEIGHTS)
    status_weights = list(STATUS_WEIGHTS.values())
    orders = []
    span = now_ms - start_ms
    for i in range(n["orders"]):
        ms = start_ms + i * span // n["orders"] + rng.randrange(0, max(1, span // n["orders"]))
        owner = order_agents[i]
        service = services[rng.choice(by_agent[owner])]
        status = rng.choices(statuses, weights=status_weights)[0]
        roll = rng.random()
        row: dict[str, Any] = {
            "id": make_id("ord", ms),
            "service_id": service["id"],
            "agent_id": agents[owner]["id"],
            "brief": "Please make three directions for the new brand; details in the attached links. " * 2,
            "reference_urls": ["https://example.com/brief.pdf"] if roll < 0.3 else [],
            "status": status,
            "payment_chain": "solana",
            "payment_reference": "atl-" + _b36(i, 12) + "bench",
            "created_at": at(ms),
            "updated_at": at(ms + 3_600_000),
        }
        if roll < HOT_BUYER_SHARE:
            row.update(buyer_kind="human", buyer_wallet=hot_buyer, buyer_chain="solana")
        elif roll < 0.85:
            row.update(buyer_kind="human", buyer_wallet=rng.choice(buyer_pool), buyer_chain="solana")
        elif roll < 0.95:
            other = rng.randrange(n["agents"] - 1)
            row.update(buyer_kind="agent", buyer_agent_id=agents[other if other != owner else other + 1]["id"])
        else:
            row.update(buyer_kind="x402", buyer_wallet=rng.choice(buyer_pool), buyer_chain="solana")
        _walk(row, service, ms)
        orders.append(row)
    return orders, hot_buyer


def _walk(row: dict[str, Any], service: dict[str, Any], ms: int) -> None:
    """Fill in what the order's status implies: its `_path`, price and fee, timestamps, escrow hash."""
    status = row["status"]
    path = PATHS[status]
    if service["price_type"] == "fixed":
        path = [step for step in path if step != "quote"]
    if status != "pending_quote":
        row["quoted_price_usd"] = service["price_usd"] if service["price_usd"] > 0 else Decimal("5.00")
        # Prices are whole cents, so 10% is exact to the base unit, as platform_fee books it.
        row["platform_fee_usd"] = row["quoted_price_usd"] * Decimal("0.10")
        row["quoted_at"] = at(ms + 60_000)
    for step, moment in (("accept", "accepted_at"), ("pay", "paid_at"), ("start", "started_at")):
        if step in path:
            row[moment] = at(ms + 120_000)
    if "pay" in path:
        row["escrow_tx_hash"] = secrets.token_hex(32)
    if "deliver" in path:
        row["delivered_at"] = at(ms + 1_800_000)
    if status == "completed":
        row["completed_at"] = at(ms + 3_600_000)
    if status == "cancelled":
        row["cancelled_at"] = at(ms + 600_000)
    if status == "revision_requested":
        row["revision_count"] = 1
        row["revision_feedback"] = "A darker blue, please."
    if status == "disputed":
        row["dispute_reason"] = "Not what the brief asked for."
    row["_path"] = path


def _force(o: dict[str, Any], status: str) -> None:
    """Walk an order the benchmark reads to `status` (accepted, paid or in progress) as of its creation."""
    o["status"] = status
    o["_path"] = [s for s in PATHS[status] if s != "quote"]
    o["quoted_price_usd"] = o.get("quoted_price_usd") or Decimal("25.00")
    o["platform_fee_usd"] = o["quoted_price_usd"] * Decimal("0.10")
    o["quoted_at"] = o["created_at"]
    for step, moment in (("accept", "accepted_at"), ("pay", "paid_at"), ("start", "started_at")):
        o[moment] = o["created_at"] if step in o["_path"] else None
    if "pay" in o["_path"]:
        o["escrow_tx_hash"] = o.get("escrow_tx_hash") or secrets.token_hex(32)
    else:
        o.pop("escrow_tx_hash", None)  # not paid: the column's default (empty)
    for moment in ("delivered_at", "completed_at", "cancelled_at"):
        o[moment] = None
    o["revision_count"], o["revision_feedback"], o["dispute_reason"] = 0, "", ""


@dataclass(frozen=True)
class HotOrders:
    """The hot buyer's orders that the benchmark reads or writes (all in progress but `solana`)."""

    page: dict[str, Any]  # the order page and its poll: PAGE_MESSAGES messages
    get: dict[str, Any]  # read by GET /api/orders/{id}
    solana: dict[str, Any]  # accepted, payable on Solana: the page shows a Solana Pay QR and looks for payment
    heavy: dict[str, Any]  # the order page and its poll with HEAVY_MESSAGES messages
    messaged: list[dict[str, Any]]  # messages are posted to these


def open_hot_orders(orders: list[dict[str, Any]], hot_agent_id: str, hot_buyer: str) -> HotOrders:
    """Walk the orders the benchmark reads to the statuses it needs."""
    # The polled agent's newest orders are paid or in progress, so every poll (at every data size)
    # returns a full page of 20: the cost comparison between sizes compares the same work.
    hot_orders = [o for o in orders if o["agent_id"] == hot_agent_id]
    for index, o in enumerate(hot_orders[-HOT_AGENT_OPEN:]):
        if o["status"] not in ("paid", "in_progress"):
            _force(o, "paid" if index % 3 == 0 else "in_progress")
    # The hot buyer's showcase orders, newest last: in progress, one accepted (and not yet paid).
    showcase = [o for o in orders if o.get("buyer_wallet") == hot_buyer and o["buyer_kind"] == "human"][-SHOWCASE:]
    if len(showcase) < 5:
        raise RuntimeError(f"the hot buyer has {len(showcase)} orders, the benchmark needs at least 5")
    for o in showcase:
        _force(o, "in_progress")
    _force(showcase[-3], "accepted")
    return HotOrders(
        page=showcase[-1], get=showcase[-2], solana=showcase[-3], heavy=showcase[-4], messaged=showcase[:-4]
    )


def message_counts(draw: Draw, orders: list[dict[str, Any]], hot: HotOrders) -> dict[str, int]:
    """How many messages each order gets (by id; absent: none)."""
    rng, n = draw.rng, draw.n
    # Messages: a heavy tail (most orders a handful, a few hundreds), only where messaging is open.
    fixed = {hot.page["id"]: PAGE_MESSAGES, hot.heavy["id"]: HEAVY_MESSAGES}
    talkers = [o for o in orders if o["status"] in MESSAGING and o["id"] not in fixed]
    # Pareto weights capped at 300: the busiest orders get several hundred messages, not tens of thousands.
    weights = [min(rng.paretovariate(1.3), 300.0) for _ in talkers]
    picks = Counter(rng.choices(range(len(talkers)), weights=weights, k=n["messages"] - PAGE_MESSAGES))
    counts = {talkers[index]["id"]: count for index, count in picks.items()}
    counts.update(fixed)
    return counts


def message_and_event_rows(draw: Draw, orders: list[dict[str, Any]], counts: dict[str, int]) -> Iterator[Any]:
    """Each order's events (its `_path`) and messages (each with its own event), in time order per
    order: ("E", event columns...) and ("M", message columns...). Drawn as they are copied."""
    rng = draw.rng
    for o in orders:
        ms = int(o["created_at"].timestamp() * 1000)
        buyer = o.get("buyer_agent_id") or o.get("buyer_wallet")
        yield (
            "E",
            make_id("evt", ms),
            o["id"],
            "create",
            "buyer",
            buyer,
            "",
            "pending_quote",
            "{}",
            o["created_at"],
        )
        previous = "quoted" if "quote" not in o["_path"] and o["status"] != "pending_quote" else "pending_quote"
        for step_index, step in enumerate(o["_path"]):
            moment_ms = ms + (step_index + 1) * 60_000
            actor = "agent" if step in ("quote", "start", "deliver") else "buyer"
            to = STATUS_AFTER[step]
            yield ("E", make_id("evt", moment_ms), o["id"], step, actor, "", previous, to, "{}", at(moment_ms))
            previous = to
        count = counts.get(o["id"], 0)
        moment_ms = ms + 200_000
        # Up to 10 minutes between messages; seconds on the heavy order, so its 10,000 end within a day.
        gap = 600_000 if count < HEAVY_MESSAGES else 8_000
        for k in range(count):
            moment_ms += rng.randrange(1_000, gap)
            role = "buyer" if k % 2 == 0 else "agent"
            sender = buyer if role == "buyer" else o["agent_id"]
            message_id = make_id("msg", moment_ms)
            moment = at(moment_ms)
            yield ("M", message_id, o["id"], role, sender, LINES[(k * 7 + len(o["id"])) % len(LINES)], moment)
            data = json.dumps({"message_id": message_id})
            yield ("E", make_id("evt", moment_ms), o["id"], "message", role, sender, "", "", data, moment)


def copy_messages_and_events(cursor: Any, rows: Iterable[Any]) -> None:
    """COPY the messages and events of `message_and_event_rows`, EVENT_BATCH events at a time."""
    message_rows: list[tuple[Any, ...]] = []
    event_rows: list[tuple[Any, ...]] = []

    def flush() -> None:
        _copy_tuples(cursor, "orders_message", MESSAGE_COLUMNS, message_rows)
        _copy_tuples(cursor, "orders_orderevent", EVENT_COLUMNS, event_rows)
        message_rows.clear()
        event_rows.clear()

    for item in rows:
        (message_rows if item[0] == "M" else event_rows).append(item[1:])
        if len(event_rows) >= EVENT_BATCH:
            flush()
    flush()


def fill_change_stamps(cursor: Any) -> int:
    """`orders_order.change_stamp` (the id of the order's latest event, which the app writes in the
    same transaction as every event) where the column exists and is out of date: after the COPYs, and
    on every run (the baseline's older code writes events without it). Returns the rows updated."""
    cursor.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = 'orders_order' AND column_name = 'change_stamp'"
    )
    if cursor.fetchone() is None:
        return 0
    cursor.execute(
        "UPDATE orders_order o SET change_stamp = e.last"
        " FROM (SELECT order_id, max(id) AS last FROM orders_orderevent GROUP BY order_id) e"
        " WHERE o.id = e.order_id AND o.change_stamp IS DISTINCT FROM e.last"
    )
    updated: int = cursor.rowcount
    return updated
