"""What the bad-input tests share: `refused()`, the world a test acts in, and the calls it sends.

Bad input anywhere: a 4xx in the error envelope, with the exact status and code, and not one row changed.
Every refused request goes through `refused()`: it snapshots every row of every model of the agents,
orders and payments apps before and after the request, and checks the envelope
`{"success": false, "error": <sentence>, "code": <snake_case>, "details": {...}}`. The Django test
client re-raises a view's exception, so a 500 fails loudly as well.

The `world` fixture is registered for the whole suite by `pytest_plugins` in tests/conftest.py. The
tests: tests/lib/test_bad_input_envelope.py (bodies, query strings, paths, methods, sizes),
tests/test_bad_input_auth.py (credentials, who may call what), tests/orders/test_bad_input_orders.py,
tests/orders/test_bad_input_paying.py, tests/agents/test_bad_input_agents.py,
tests/payments/test_bad_input_signin.py, and every endpoint's bad fields in tests/lib/test_bad_input_fields.py.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pytest
from django.apps import apps
from django.db import connection
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from agents.models import Service
from orders.models import Order, Status
from tests.conftest import Api, make_order, make_service

# --- the two helpers: the envelope, and "nothing changed" ---------------------------------------

SNAPSHOT_APPS = ("agents", "orders", "payments")
# Bookkeeping a refused request may touch by design: when a key was last used, a nonce burned by a
# failed sign-in (asserted where it happens).
VOLATILE = {"ApiKey": {"last_used_at"}, "SignInChallenge": {"used_at"}}
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


@functools.cache
def _snapshot_queries() -> tuple[tuple[str, str], ...]:
    """One plain SELECT per table (the ORM's per-row overhead, twice per refused request, adds up)."""
    quote_name = connection.ops.quote_name
    queries = []
    for label in SNAPSHOT_APPS:
        for model in apps.get_app_config(label).get_models():
            if model._meta.proxy:
                continue
            skip = VOLATILE.get(model.__name__, set())
            # A concrete field is one with a column (Field.concrete); the stubs type every column as optional.
            columns = ", ".join(
                quote_name(f.column) for f in model._meta.concrete_fields if f.attname not in skip and f.column
            )
            pk_column = model._meta.pk.column
            assert pk_column is not None
            table, pk = quote_name(model._meta.db_table), quote_name(pk_column)
            queries.append((model.__name__, f"SELECT {columns} FROM {table} ORDER BY {pk}"))  # noqa: S608
    return tuple(queries)


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row (every column but the volatile ones) of Agent, ApiKey, Service, Order, OrderEvent,
    Message, Review, Deliverable, WalletSession, SignInChallenge, Payment, LedgerEntry, ..."""
    state = {}
    with connection.cursor() as cursor:
        for name, sql in _snapshot_queries():
            cursor.execute(sql)
            state[name] = cursor.fetchall()
    return state


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.body)
    assert response["Content-Type"] == "application/json"
    body = response.body
    assert set(body) == {"success", "error", "code", "details"}, body
    assert body["success"] is False
    assert isinstance(body["error"], str), body
    assert body["error"].strip(), body
    assert isinstance(body["code"], str), body
    assert SNAKE_CASE.match(body["code"]), body
    assert isinstance(body["details"], dict), body
    assert body["code"] == code, body


def refused(send: Callable[[], Any], status: int, code: str) -> Any:
    """Send a request that must be refused with `status` and `code`, and change nothing."""
    before = snapshot()
    response = send()
    assert_error(response, status, code)
    assert snapshot() == before, "a refused request changed the database"
    return response


# --- the world a test acts in ------------------------------------------------------------------

SERVICE = "<service>"  # in a body: replaced by the id of the world's fixed-price service
BRIEF = "Draw a fox in a lab coat, flat colours."
URL = "https://cdn.example.com/result.png"
SOLANA_WALLET = str(Keypair().pubkey())
EVM_ADDRESS = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55's own example
EVM_BAD_CHECKSUM = EVM_ADDRESS[:-1] + "D"
EVM_ZERO = "0x" + "0" * 40
# Off the ed25519 curve, as every program-derived address is: nobody can sign for it.
PDA = str(Pubkey.find_program_address([b"atelier"], Pubkey.from_string("11111111111111111111111111111111"))[0])
SYSTEM_PROGRAM = "11111111111111111111111111111111"


@dataclass(frozen=True)
class Call:
    who: str  # the fixture name of the caller
    method: str
    path: str  # may hold {order}, {agent}, {service}
    status: str = Status.PENDING_QUOTE  # the status {order} is walked to
    body: Any = None  # a body the endpoint accepts (for tests about something else)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


class World:
    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.request = request
        self.orders: dict[str, Order] = {}

    def persona(self, name: str) -> Any:
        return self.request.getfixturevalue(name)

    def api(self, name: str) -> Api:
        persona = self.persona(name)
        return persona if isinstance(persona, Api) else persona.api

    @cached_property
    def service(self) -> Service:
        """A fixed-price service of `agent` (orders of it start `quoted`)."""
        return make_service(self.persona("agent").agent)

    def order(self, status: str) -> Order:
        """An order of `buyer` with `agent`, walked to `status` (one per status per test)."""
        if status not in self.orders:
            self.orders[status] = make_order(self.persona("buyer"), self.persona("agent"), status)
        return self.orders[status]

    def path(self, call: Call, order_id: str | None = None) -> str:
        fill = {}
        if "{order}" in call.path:
            fill["order"] = order_id if order_id is not None else self.order(call.status).id
        if "{agent}" in call.path:
            fill["agent"] = self.persona("agent").id
        if "{service}" in call.path:
            fill["service"] = self.service.id
        return call.path.format(**fill)

    def fill(self, body: Any) -> Any:
        if isinstance(body, dict):
            return {key: self.service.id if value == SERVICE else value for key, value in body.items()}
        return body

    def send(self, call: Call, body: Any = None, *, who: str | None = None, order_id: str | None = None) -> Any:
        api = self.api(who or call.who)
        path = self.path(call, order_id)
        return api.call(call.method, path, self.fill(body))

    def refuse(self, call: Call, body: Any, status: int, code: str, **kwargs: Any) -> Any:
        # Build everything the request needs first, then snapshot around the request alone.
        path = self.path(call, kwargs.get("order_id"))
        body = self.fill(body)
        api = self.api(kwargs.get("who") or call.who)
        return refused(lambda: api.call(call.method, path, body), status, code)


@pytest.fixture
def world(request: pytest.FixtureRequest, db: None) -> World:
    return World(request)


CREATE = Call("buyer", "POST", "/api/orders", body={"service_id": SERVICE, "brief": BRIEF})
DETAIL = Call("buyer", "GET", "/api/orders/{order}")
ACT = Call("buyer", "PATCH", "/api/orders/{order}", Status.DELIVERED, body={"action": "approve"})
QUOTE = Call("agent", "POST", "/api/orders/{order}/quote", Status.PENDING_QUOTE, body={"price_usd": "45.00"})
START = Call("agent", "POST", "/api/orders/{order}/start", Status.PAID, body={})
DELIVER = Call(
    "agent",
    "POST",
    "/api/orders/{order}/deliver",
    Status.IN_PROGRESS,
    body={"deliverable_url": URL, "deliverable_media_type": "image"},
)
MESSAGES = Call("buyer", "GET", "/api/orders/{order}/messages", Status.PAID)
MESSAGE = Call("buyer", "POST", "/api/orders/{order}/messages", Status.PAID, body={"content": "Any questions?"})
REVIEW = Call("buyer", "POST", "/api/orders/{order}/review", Status.COMPLETED, body={"rating": 5, "comment": "Good."})
REGISTER = Call("anonymous", "POST", "/api/agents/register", body={"name": "Sketchbot"})
ME = Call("agent", "GET", "/api/agents/me")
ME_EDIT = Call("agent", "PATCH", "/api/agents/me", body={"name": "Renamed Forge"})
POLL = Call("agent", "GET", "/api/agents/{agent}/orders")
SERVICE_NEW = Call(
    "agent",
    "POST",
    "/api/agents/{agent}/services",
    body={
        "title": "Portrait in oils",
        "description": "A portrait of your pet in the style of the Dutch masters, as a PNG.",
        "category": "design",
        "price_usd": "25.00",
        "price_type": "fixed",
    },
)
SERVICE_EDIT = Call("agent", "PATCH", "/api/services/{service}", body={"title": "Logo in four styles"})
SERVICE_DELETE = Call("agent", "DELETE", "/api/services/{service}")
NONCE = Call("anonymous", "POST", "/api/auth/nonce", body={"wallet": SOLANA_WALLET, "chain": "solana"})
VERIFY = Call("anonymous", "POST", "/api/auth/verify", body={"nonce": "0" * 32, "signature": "1" * 88})
SIGNOUT = Call("buyer", "POST", "/api/auth/signout", body={})
ACT_CANCEL = Call("buyer", "PATCH", "/api/orders/{order}", Status.PENDING_QUOTE, body={"action": "cancel"})

# --- fields: the codes a bad field gets, and one case of the field tables -------------------------

V = "validation_error"
U = "unknown_field"


def case(call: Call, body: dict[str, Any], code: str = V, status: int = 400, *, id: str) -> Any:
    return pytest.param(call, body, status, code, id=f"{call.method} {call.path.split('/', 2)[2]}: {id}")
