"""The agent poll (GET /api/agents/{id}/orders?status=...) is served by an index, not a table scan.

1,000 orders in every status are spread over agents; the SQL the endpoint really runs is captured
from a real request and explained: on SQLite with EXPLAIN QUERY PLAN, on PostgreSQL with EXPLAIN
after ANALYZE. The orders table must never be scanned whole.

- 20 agents with 50 orders each (each agent a small share of the table, as in a marketplace): the
  orders must be reached through an index that leads with agent_id. PostgreSQL picks
  order_agent_poll_idx (agent_id, status, id) for a status filter; SQLite, without statistics,
  may prefer order_agent_list_idx (agent_id, id), which yields the rows already newest first.
- 5 agents with 200 orders each (each agent a fifth of the table): PostgreSQL may instead walk the
  primary key backwards (newest first) and stop after one page, since it expects a page of this
  agent's orders among the newest few hundred rows. That is a cost-based choice, right for this
  spread, and still an index scan; so here any index on the orders table will do, but no Seq Scan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.core.transitions import new_payment_reference
from orders.models import Order, Status
from tests.conftest import AgentPersona, make_agent, make_service

ORDERS = 1000
WALLETS = ("7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU", "0x52908400098527886E0F7030069857D2E4169EE7")
TABLE = Order._meta.db_table


@dataclass(frozen=True)
class Poller:
    agent: AgentPersona
    share: float  # of all orders, this agent's


@pytest.fixture(params=[20, 5], ids=["20-agents", "5-agents"])
def poller(request: Any, db: None) -> Poller:
    """1,000 orders over `param` agents, every agent with every status; polls as the first."""
    agents = [make_agent(f"Poll agent {i}") for i in range(request.param)]
    services = [make_service(a.agent, price_type="quote", price="0.00") for a in agents]
    statuses = list(Status)
    orders = []
    for i in range(ORDERS):
        agent = i % len(agents)  # interleaved, as orders arrive
        status = statuses[(i // len(agents)) % len(statuses)]
        wallet = WALLETS[i % len(WALLETS)]
        quoted = status not in (Status.PENDING_QUOTE, Status.CANCELLED)
        orders.append(
            Order(
                service=services[agent],
                agent=agents[agent].agent,
                buyer_kind="human",
                buyer_wallet=wallet,
                buyer_chain="base" if wallet.startswith("0x") else "solana",
                brief=f"Order number {i}: a fox in a lab coat, flat colours.",
                payment_chain="solana",
                payment_reference=new_payment_reference(),
                status=status,
                quoted_price_usd=Decimal("45.00") if quoted else None,
                platform_fee_usd=Decimal("4.50") if quoted else None,
            )
        )
    Order.objects.bulk_create(orders, batch_size=250)
    return Poller(agents[0], share=1 / len(agents))


def order_indexes(*, leading: str | None = None) -> set[str]:
    """Indexes on the orders table (those whose first column is `leading`), primary key included."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, TABLE)
        names = {
            name
            for name, c in constraints.items()
            if (c["index"] or c["primary_key"]) and (leading is None or c["columns"][:1] == [leading])
        }
        if leading is None and connection.vendor == "sqlite":
            # The primary key's and unique columns' own indexes (sqlite_autoindex_...), which
            # introspection leaves out.
            cursor.execute(f'PRAGMA index_list("{TABLE}")')
            names |= {row[1] for row in cursor.fetchall()}
    return names


def poll_sql(agent: Any, query: str) -> str:
    """The orders query that GET /api/agents/{id}/orders runs, as sent to the database."""
    with CaptureQueriesContext(connection) as captured:
        response = agent.api.get(f"/api/agents/{agent.id}/orders{query}")
    assert response.status_code == 200, response.body
    assert response.body["data"], "the poll found no orders; the plan would say little"
    selects = [q["sql"] for q in captured if q["sql"].startswith("SELECT") and f'FROM "{TABLE}"' in q["sql"]]
    assert len(selects) == 1, selects
    return selects[0]


def plan(sql: str) -> list[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in (TABLE, "agents_agent", "agents_service"):
                cursor.execute(f'ANALYZE "{table}"')  # sees this transaction's own rows
            cursor.execute("EXPLAIN " + sql)
            return [row[0] for row in cursor.fetchall()]
        cursor.execute("EXPLAIN QUERY PLAN " + sql)
        return [row[-1] for row in cursor.fetchall()]


@pytest.mark.slow
@pytest.mark.parametrize("query", ["?status=paid,in_progress", "?status=paid", "?status=delivered&limit=5", ""])
def test_the_agent_poll_reads_orders_through_an_index(poller, query):
    sql = poll_sql(poller.agent, query)
    assert '"agent_id" = ' in sql
    assert ('"orders_order"."status" IN (' in sql) == bool(query)
    assert 'ORDER BY "orders_order"."id" DESC' in sql
    assert re.search(r"LIMIT \d+", sql)
    assert "order_agent_poll_idx" in order_indexes(leading="agent_id")

    lines = plan(sql)
    text = "\n".join(lines)
    if connection.vendor == "postgresql":
        assert f"Seq Scan on {TABLE}" not in text, text
        used = set(re.findall(r"(?:Index Scan|Index Only Scan)(?: Backward)? using (\w+) on " + TABLE, text))
        used |= set(re.findall(r"Bitmap Index Scan on (\w+)", text))
    else:
        table_steps = [line for line in lines if re.match(rf"(SCAN|SEARCH) {TABLE}\b", line)]
        assert table_steps, text
        assert all("INDEX" in line for line in table_steps), f"a scan of {TABLE} without an index:\n{text}"
        used = set(re.findall(rf"(?:SEARCH|SCAN) {TABLE} USING (?:COVERING )?INDEX (\w+)", text))
    # A small share of the table per agent: an index that leads with agent_id. A large share: any index.
    wanted = order_indexes(leading="agent_id") if poller.share < 0.1 else order_indexes()
    assert used & wanted, f"the plan reads {TABLE} through none of {sorted(wanted)}:\n{text}"
