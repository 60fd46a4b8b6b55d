"""Bad input anywhere: a 4xx in the error envelope, with the exact status and code, and not one row changed.

Every refused request goes through `refused()`: it snapshots every row of every model of the agents,
orders and payments apps before and after the request, and checks the envelope
`{"success": false, "error": <sentence>, "code": <snake_case>, "details": {...}}`. The Django test
client re-raises a view's exception, so a 500 fails loudly as well.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.utils import timezone
from eth_account import Account
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from agents.models import Agent, ApiKey, Service
from agents.services import api_key_revoke
from orders.models import Order, Status
from payments.models import SignInChallenge, WalletSession
from payments.services import signin_challenge_create
from tests.conftest import Api, make_agent, make_order, make_service

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
            columns = ", ".join(quote_name(f.column) for f in model._meta.concrete_fields if f.attname not in skip)
            table, pk = quote_name(model._meta.db_table), quote_name(model._meta.pk.column)
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


# --- bodies that are not JSON objects ----------------------------------------------------------

BODY_ENDPOINTS = [
    CREATE,
    ACT,
    QUOTE,
    START,
    DELIVER,
    MESSAGE,
    REVIEW,
    REGISTER,
    ME_EDIT,
    SERVICE_NEW,
    SERVICE_EDIT,
    NONCE,
    VERIFY,
    SIGNOUT,
]
NOT_JSON = [
    pytest.param('{"a":', id="truncated"),
    pytest.param('{"a": 1,}', id="trailing-comma"),
    pytest.param("{'a': 1}", id="single-quotes"),
    pytest.param('{"a": 1} {"b": 2}', id="two-documents"),
    pytest.param("action=approve", id="form-encoded"),
    pytest.param(b'{"a": "\xff"}', id="not-utf8"),
    pytest.param("[" * 100_000, id="nested-100k-deep"),
    pytest.param('{"a": ' + "9" * 5000 + "}", id="5000-digit-int"),
    pytest.param('{"a": "\\ud800"}', id="lone-surrogate"),
]
NOT_AN_OBJECT = [
    pytest.param("[]", id="empty-array"),
    pytest.param('[{"action": "approve"}]', id="array-of-object"),
    pytest.param('"approve"', id="string"),
    pytest.param("42", id="number"),
    pytest.param("null", id="null"),
    pytest.param("true", id="true"),
]


# The body is parsed in one place, before anything endpoint-specific: every bad body against a
# buyer POST, a buyer PATCH and an anonymous POST; every endpoint against one of each kind.
SHAPE_ENDPOINTS = [CREATE, ACT, REGISTER]


@pytest.mark.parametrize("call", SHAPE_ENDPOINTS, ids=str)
@pytest.mark.parametrize("raw", NOT_JSON)
def test_a_body_that_is_not_json_is_400_invalid_json(world, call, raw):
    world.refuse(call, raw, 400, "invalid_json")


@pytest.mark.parametrize("call", SHAPE_ENDPOINTS, ids=str)
@pytest.mark.parametrize("raw", NOT_AN_OBJECT)
def test_a_body_that_is_not_an_object_is_400_invalid_body(world, call, raw):
    world.refuse(call, raw, 400, "invalid_body")


@pytest.mark.parametrize("call", BODY_ENDPOINTS, ids=str)
def test_every_endpoint_refuses_bodies_that_are_not_json_objects(world, call):
    world.refuse(call, '{"a":', 400, "invalid_json")
    world.refuse(call, "[" * 100_000, 400, "invalid_json")
    world.refuse(call, '{"a": "\\ud800"}', 400, "invalid_json")
    world.refuse(call, '[{"a": 1}]', 400, "invalid_body")  # 4 requests: register allows 5 an hour


def test_a_lone_surrogate_in_a_known_field_is_refused_before_it_reaches_the_database(world):
    world.refuse(MESSAGE, '{"content": "Hello \\ud83e"}', 400, "invalid_json")
    world.refuse(CREATE, '{"service_id": "svc_1", "brief": "Draw a fox \\udc00 in a lab coat."}', 400, "invalid_json")


# --- fields: types, unknown names, empty, too long, out of range -------------------------------

V = "validation_error"
U = "unknown_field"


def case(call: Call, body: dict[str, Any], code: str = V, status: int = 400, *, id: str) -> Any:
    return pytest.param(call, body, status, code, id=f"{call.method} {call.path.split('/', 2)[2]}: {id}")


def create(**fields: Any) -> dict[str, Any]:
    return {**CREATE.body, **fields}


def deliverable(url: Any = URL, media_type: Any = "image") -> dict[str, Any]:
    return {"deliverable_url": url, "deliverable_media_type": media_type}


def new_service(**fields: Any) -> dict[str, Any]:
    return {**SERVICE_NEW.body, **fields}


BAD_URLS = [
    "javascript:alert(1)",
    "ftp://files.example.com/result.png",
    "file:///etc/passwd",
    "data:text/html,<b>hi</b>",
    "http://",
    "https://exa mple.com/result.png",
    "cdn.example.com/result.png",
    "http://cdn.example.com:99999/result.png",
    "https://[::1/result.png",
    "https://cdn.example.com/\x00.png",
    "",
    "   ",
]
BAD_PRICES = [45.0, 45, "0", "0.00", "-1", "-0.01", "1000000.01", "1e9", "NaN", "nan", "sNaN", "Infinity"]
BAD_PRICES += ["-Infinity", "45.001", "", "   ", "abc", "45,00", "$45", "0x2D", True, ["45.00"], {"usd": "45.00"}]
SERVICE_BAD_PRICES = ["-1", "-0.01", "1000000.01", "1e9", "NaN", "Infinity", "45.001", 45.0, 45, "", None]

FIELD_CASES = [
    # POST /api/orders
    case(CREATE, {}, id="empty object"),
    case(CREATE, create(service_id=123), id="number for service_id"),
    case(CREATE, create(service_id=None), id="null service_id"),
    case(CREATE, create(brief=12345678901), id="number for brief"),
    case(CREATE, create(brief=True), id="true for brief"),
    case(CREATE, create(brief=["Draw a fox in a lab coat."]), id="list for brief"),
    case(CREATE, create(brief=""), id="empty brief"),
    case(CREATE, create(brief=" \t\n  \u00a0 "), id="whitespace brief"),
    case(CREATE, create(brief="Draw fox"), id="brief under 10"),
    case(CREATE, create(brief="x" * 3001), id="brief over 3000"),
    case(CREATE, create(brief="Draw a fox\x00 in a lab coat"), id="NUL in brief"),
    case(CREATE, create(reference_urls=[f"https://example.com/{i}.png" for i in range(6)]), id="6 reference_urls"),
    case(CREATE, create(reference_urls="https://example.com/a.png"), id="string for reference_urls"),
    case(CREATE, create(reference_urls=[42]), id="number in reference_urls"),
    *[case(CREATE, create(reference_urls=[url]), id=f"reference_url {url!r}") for url in BAD_URLS],
    case(CREATE, create(payment_chain="ethereum"), id="unknown payment_chain"),
    case(CREATE, create(payment_chain=1), id="number for payment_chain"),
    case(CREATE, create(price_usd="10.00"), U, id="unknown field"),
    case(CREATE, create(service_id="svc_doesnotexist"), "service_not_found", 404, id="unknown service"),
    # PATCH /api/orders/{id} (a delivered order)
    case(ACT, {}, id="no action"),
    case(ACT, {"action": "destroy"}, id="unknown action"),
    case(ACT, {"action": "APPROVE"}, id="action in capitals"),
    case(ACT, {"action": 1}, id="number for action"),
    case(ACT, {"action": ""}, id="empty action"),
    case(ACT, {"action": "revision"}, id="revision without feedback"),
    case(ACT, {"action": "revision", "feedback": ""}, id="empty feedback"),
    case(ACT, {"action": "revision", "feedback": "  \n "}, id="whitespace feedback"),
    case(ACT, {"action": "revision", "feedback": "x" * 2001}, id="feedback over 2000"),
    case(ACT, {"action": "revision", "feedback": 5}, id="number for feedback"),
    case(ACT, {"action": "approve", "feedback": "Lovely."}, id="feedback with approve"),
    case(ACT, {"action": "approve", "reason": "Because."}, id="reason with approve"),
    case(ACT, {"action": "dispute"}, id="dispute without reason"),
    case(ACT, {"action": "dispute", "reason": "x" * 2001}, id="reason over 2000"),
    case(ACT, {"action": "cancel", "feedback": "Never mind."}, id="feedback with cancel"),
    case(ACT, {"action": "accept", "escrow_tx_hash": "5" * 88}, id="tx hash with accept"),
    case(ACT, {"action": "approve", "rating": 5}, U, id="unknown field"),
    case(ACT, {"action": "accept"}, "invalid_transition", 409, id="accept a delivered order"),
    case(ACT, {"action": "cancel"}, "invalid_transition", 409, id="cancel a delivered order"),
    # POST /api/orders/{id}/quote (a pending_quote order)
    case(QUOTE, {}, id="no price"),
    case(QUOTE, {"price_usd": None}, id="null price"),
    *[case(QUOTE, {"price_usd": price}, id=f"price {price!r}") for price in BAD_PRICES],
    case(QUOTE, {"price_usd": "45.00", "currency": "USD"}, U, id="unknown field"),
    # POST /api/orders/{id}/deliver (an in_progress order)
    case(DELIVER, {}, id="neither form"),
    case(DELIVER, {**deliverable(), "deliverables": [deliverable()]}, id="both forms"),
    case(DELIVER, {"deliverable_url": URL}, id="url without media type"),
    case(DELIVER, {"deliverable_media_type": "image"}, id="media type without url"),
    case(DELIVER, deliverable(media_type="gif"), id="unknown media type"),
    case(DELIVER, deliverable(media_type=1), id="number for media type"),
    *[case(DELIVER, deliverable(url=url), id=f"url {url!r}") for url in BAD_URLS[:4]],
    case(DELIVER, deliverable(url=42), id="number for url"),
    case(DELIVER, {"deliverables": []}, id="empty deliverables"),
    case(DELIVER, {"deliverables": [deliverable()] * 21}, id="21 deliverables"),
    case(DELIVER, {"deliverables": deliverable()}, id="object for deliverables"),
    case(DELIVER, {"deliverables": [URL]}, id="string in deliverables"),
    case(DELIVER, {"deliverables": [{"url": URL, "media_type": "image"}]}, id="short item keys"),
    case(DELIVER, {"deliverables": [deliverable(), deliverable(media_type="gif")]}, id="bad media type in item"),
    case(DELIVER, {"deliverables": [deliverable(url="javascript:alert(1)")]}, id="bad url in item"),
    case(DELIVER, {"deliverables": [{**deliverable(), "prompt": "x"}]}, id="unknown key in item"),
    case(DELIVER, {"deliverables": [{"deliverable_url": URL}]}, id="item without media type"),
    case(DELIVER, {**deliverable(), "note": "Enjoy."}, U, id="unknown field"),
    # POST /api/orders/{id}/messages (a paid order)
    case(MESSAGE, {}, id="no content"),
    case(MESSAGE, {"content": None}, id="null content"),
    case(MESSAGE, {"content": ""}, id="empty content"),
    case(MESSAGE, {"content": " \n\t "}, id="whitespace content"),
    case(MESSAGE, {"content": "x" * 2001}, id="content over 2000"),
    case(MESSAGE, {"content": 42}, id="number for content"),
    case(MESSAGE, {"content": ["hi"]}, id="list for content"),
    case(MESSAGE, {"content": "hi\x00there"}, id="NUL in content"),
    case(MESSAGE, {"content": "hi", "attachment": URL}, U, id="unknown field"),
    # POST /api/orders/{id}/review (a completed order)
    case(REVIEW, {}, id="no rating"),
    *[
        case(REVIEW, {"rating": rating}, id=f"rating {rating!r}")
        for rating in (0, 6, -1, 10**20, "5", 5.0, 4.5, True, None, [5])
    ],
    case(REVIEW, {"rating": 5, "comment": "x" * 501}, id="comment over 500"),
    case(REVIEW, {"rating": 5, "comment": 5}, id="number for comment"),
    case(REVIEW, {"rating": 5, "title": "Great"}, U, id="unknown field"),
    # POST /api/agents/register
    case(REGISTER, {}, id="no name"),
    case(REGISTER, {"name": "X"}, id="name under 2"),
    case(REGISTER, {"name": "   "}, id="whitespace name"),
    case(REGISTER, {"name": "x" * 61}, id="name over 60"),
    case(REGISTER, {"name": 42}, id="number for name"),
    case(REGISTER, {"name": "Sketchbot", "description": "x" * 1001}, id="description over 1000"),
    case(REGISTER, {"name": "Sketchbot", "endpoint_url": "javascript:alert(1)"}, id="javascript endpoint_url"),
    case(REGISTER, {"name": "Sketchbot", "endpoint_url": "ftp://hooks.example.com"}, id="ftp endpoint_url"),
    case(REGISTER, {"name": "Sketchbot", "endpoint_url": "https://x.example.com/" + "a" * 500}, id="long url"),
    case(REGISTER, {"name": "Sketchbot", "payout_chain": "ethereum"}, id="unknown payout_chain"),
    case(REGISTER, {"name": "Sketchbot", "payout_wallet": "not-a-wallet"}, id="bad payout_wallet"),
    case(REGISTER, {"name": "Sketchbot", "payout_address_base": EVM_ZERO}, id="zero payout_address_base"),
    case(REGISTER, {"name": "Sketchbot", "api_key": "atelier_mine"}, U, id="unknown field"),
    # PATCH /api/agents/me
    case(ME_EDIT, {"name": "X"}, id="name under 2"),
    case(ME_EDIT, {"name": ""}, id="empty name"),
    case(ME_EDIT, {"payout_wallet": "0OIl-not-base58"}, id="solana: not base58"),
    case(ME_EDIT, {"payout_wallet": SOLANA_WALLET[:-4]}, id="solana: too short"),
    case(ME_EDIT, {"payout_wallet": SOLANA_WALLET + "1111"}, id="solana: too long"),
    case(ME_EDIT, {"payout_wallet": PDA}, id="solana: off-curve PDA"),
    case(ME_EDIT, {"payout_wallet": SYSTEM_PROGRAM}, id="solana: system program"),
    case(ME_EDIT, {"payout_wallet": EVM_ADDRESS}, id="solana: an EVM address"),
    case(ME_EDIT, {"payout_wallet": 42}, id="solana: number"),
    case(ME_EDIT, {"payout_address_base": EVM_BAD_CHECKSUM}, id="evm: wrong EIP-55 checksum"),
    case(ME_EDIT, {"payout_address_base": EVM_ZERO}, id="evm: zero address"),
    case(ME_EDIT, {"payout_address_base": "0x123"}, id="evm: too short"),
    case(ME_EDIT, {"payout_address_base": "0x" + "g" * 40}, id="evm: not hex"),
    case(ME_EDIT, {"payout_address_base": SOLANA_WALLET}, id="evm: a Solana address"),
    case(ME_EDIT, {"endpoint_url": "file:///etc/passwd"}, id="file endpoint_url"),
    case(ME_EDIT, {"payout_chain": "eth"}, id="unknown payout_chain"),
    case(ME_EDIT, {"rotate_webhook_secret": "yes"}, id="string for bool"),
    case(ME_EDIT, {"rotate_webhook_secret": 1}, id="number for bool"),
    case(ME_EDIT, {"webhook_secret": "whsec_mine"}, U, id="unknown field"),
    # POST /api/agents/{id}/services
    *[case(SERVICE_NEW, new_service(price_usd=p), id=f"price {p!r}") for p in SERVICE_BAD_PRICES],
    case(SERVICE_NEW, new_service(price_usd="0"), id="price 0 for fixed"),
    case(SERVICE_NEW, new_service(price_usd="0.00", price_type="monthly"), id="price 0 for monthly"),
    case(SERVICE_NEW, new_service(title=""), id="empty title"),
    case(SERVICE_NEW, new_service(title="      "), id="whitespace title"),
    case(SERVICE_NEW, new_service(title="Logo"), id="title under 5"),
    case(SERVICE_NEW, new_service(title="x" * 81), id="title over 80"),
    case(SERVICE_NEW, new_service(title=12345), id="number for title"),
    case(SERVICE_NEW, new_service(description="Too short."), id="description under 40"),
    case(SERVICE_NEW, new_service(category=""), id="empty category"),
    case(SERVICE_NEW, new_service(price_type="hourly"), id="unknown price_type"),
    case(SERVICE_NEW, new_service(quota_limit=True), id="true for quota_limit"),
    case(SERVICE_NEW, new_service(quota_limit="10"), id="string for quota_limit"),
    case(SERVICE_NEW, new_service(quota_limit=1.5), id="float for quota_limit"),
    case(SERVICE_NEW, new_service(quota_limit=-1), id="negative quota_limit"),
    case(SERVICE_NEW, new_service(quota_limit=100_001), id="quota_limit over max"),
    case(SERVICE_NEW, new_service(max_revisions=11), id="max_revisions over 10"),
    case(SERVICE_NEW, new_service(turnaround_hours=0), id="turnaround_hours 0"),
    case(SERVICE_NEW, new_service(currency="USD"), U, id="unknown field"),
    # PATCH /api/services/{id} (a fixed-price service at 25.00)
    case(SERVICE_EDIT, {"title": "x" * 81}, id="title over 80"),
    case(SERVICE_EDIT, {"title": ""}, id="empty title"),
    case(SERVICE_EDIT, {"price_usd": "0"}, id="price 0 for fixed"),
    case(SERVICE_EDIT, {"price_usd": "-5.00"}, id="negative price"),
    case(SERVICE_EDIT, {"price_type": "weekly", "price_usd": "0.00"}, id="price 0 for weekly"),
    case(SERVICE_EDIT, {"active": "yes"}, id="string for active"),
    case(SERVICE_EDIT, {"agent_id": "agt_someoneelse"}, U, id="unknown field"),
    # POST /api/auth/nonce
    case(NONCE, {}, id="empty object"),
    case(NONCE, {"wallet": SOLANA_WALLET}, id="no chain"),
    case(NONCE, {"wallet": SOLANA_WALLET, "chain": "ethereum"}, id="unknown chain"),
    case(NONCE, {"wallet": 42, "chain": "solana"}, id="number for wallet"),
    case(NONCE, {"wallet": "not-a-wallet", "chain": "solana"}, id="solana: not an address"),
    case(NONCE, {"wallet": PDA, "chain": "solana"}, id="solana: off-curve PDA"),
    case(NONCE, {"wallet": EVM_ADDRESS, "chain": "solana"}, id="solana: an EVM address"),
    case(NONCE, {"wallet": SOLANA_WALLET, "chain": "base"}, id="base: a Solana address"),
    case(NONCE, {"wallet": EVM_BAD_CHECKSUM, "chain": "base"}, id="base: wrong checksum"),
    case(NONCE, {"wallet": EVM_ZERO, "chain": "base"}, id="base: zero address"),
    case(NONCE, {"wallet": "x" * 65, "chain": "solana"}, id="wallet over 64"),
    case(NONCE, {"wallet": SOLANA_WALLET, "chain": "solana", "ttl": 3600}, U, id="unknown field"),
    # POST /api/auth/verify
    case(VERIFY, {}, id="empty object"),
    case(VERIFY, {"nonce": 42, "signature": "1" * 88}, id="number for nonce"),
    case(VERIFY, {"nonce": "0" * 32, "signature": ""}, id="empty signature"),
    case(VERIFY, {"nonce": "0" * 32, "signature": "1" * 201}, id="signature over 200"),
]


@pytest.mark.parametrize(("call", "body", "status", "code"), FIELD_CASES)
def test_a_bad_field_is_refused_and_changes_nothing(world, call, body, status, code):
    response = world.refuse(call, body, status, code)
    if code in (V, U):
        assert response.body["details"], "details names the bad field"


@pytest.mark.parametrize(
    "call",
    [CREATE, ACT, QUOTE, START, DELIVER, MESSAGE, REVIEW, REGISTER, ME_EDIT, SERVICE_NEW, SERVICE_EDIT, NONCE],
    ids=str,
)
def test_the_accepted_bodies_used_above_are_accepted(world, call):
    """The baseline: each `Call.body` succeeds, so a refusal above is about the one bad field."""
    response = world.send(call, call.body)
    assert response.status_code in (200, 201), response.body
    assert response.body["success"] is True


# --- ids that do not exist, and orders that are someone else's ---------------------------------

ORDER_CALLS = [DETAIL, ACT, MESSAGES, MESSAGE, REVIEW, QUOTE, START, DELIVER]
UNKNOWN_IDS = [
    pytest.param("ord_doesnotexist", id="plausible"),
    pytest.param("x" * 300, id="300-chars"),
    pytest.param("заказ-🦊", id="unicode"),
    pytest.param("1' OR '1'='1", id="sql"),
    pytest.param("ord_\x00", id="NUL"),
    pytest.param("..", id="dot-dot"),
]


@pytest.mark.parametrize("call", ORDER_CALLS, ids=str)
@pytest.mark.parametrize("order_id", UNKNOWN_IDS)
def test_an_unknown_order_id_is_404_order_not_found(world, call, order_id):
    world.refuse(call, call.body, 404, "order_not_found", order_id=quote(order_id, safe=""))


ACT_ACCEPT = Call("buyer", "PATCH", "/api/orders/{order}", Status.QUOTED, body={"action": "accept"})
ACT_CANCEL = Call("buyer", "PATCH", "/api/orders/{order}", Status.PENDING_QUOTE, body={"action": "cancel"})
AGENT_ONLY_ORDER_CALLS = (QUOTE, START, DELIVER)


@pytest.mark.parametrize(
    "call", [DETAIL, ACT_ACCEPT, ACT_CANCEL, MESSAGES, MESSAGE, REVIEW, QUOTE, START, DELIVER], ids=str
)
@pytest.mark.parametrize("stranger", ["other_buyer", "other_agent"])
def test_another_partys_order_is_404_never_403(world, call, stranger):
    """Each call would succeed for the order's own party; a stranger learns nothing, not even that it exists."""
    if stranger == "other_buyer" and call in AGENT_ONLY_ORDER_CALLS:
        world.refuse(call, call.body, 401, "agent_key_required", who=stranger)
        return
    theirs = world.refuse(call, call.body, 404, "order_not_found", who=stranger)
    nobodys = world.refuse(call, call.body, 404, "order_not_found", who=stranger, order_id="ord_doesnotexist")
    assert theirs.body == nobodys.body
    # ... and the order's own party may do it (the order was in the right state).
    assert world.send(call, call.body).status_code in (200, 201)


def test_an_agent_buyers_order_is_hidden_from_a_third_agent(agent, other_agent):
    """`other_agent` hires `agent`; a third agent gets 404s."""
    service = make_service(agent.agent)
    outsider = make_agent("Outsider")
    created = other_agent.api.post("/api/orders", {"service_id": service.id, "brief": BRIEF})
    assert created.status_code == 201, created.body
    order_id = created.body["data"]["id"]
    refused(lambda: outsider.api.get(f"/api/orders/{order_id}"), 404, "order_not_found")
    refused(lambda: outsider.api.patch(f"/api/orders/{order_id}", {"action": "cancel"}), 404, "order_not_found")
    refused(lambda: outsider.api.post(f"/api/orders/{order_id}/messages", {"content": "Hi"}), 404, "order_not_found")


# --- credentials ---------------------------------------------------------------------------------

AUTH_PROBES = [
    Call("anonymous", "GET", "/api/orders"),
    Call("anonymous", "GET", "/api/agents/me"),
    Call("anonymous", "GET", "/api/services"),  # public: a client that sent a bad key still hears about it
    Call("anonymous", "POST", "/api/orders", body=CREATE.body),
    Call("anonymous", "POST", "/api/orders/{order}/quote", body=QUOTE.body),
]
BAD_HEADERS = [
    pytest.param("Bearer atelier_0123456789ab_" + "x" * 43, "invalid_api_key", id="unknown key"),
    pytest.param(lambda agent: f"Bearer {agent.key}x", "invalid_api_key", id="right prefix wrong secret"),
    pytest.param(lambda agent: f"Bearer {agent.key[:-1]}", "invalid_api_key", id="key cut short"),
    pytest.param("Bearer atelier_", "invalid_api_key", id="bare prefix"),
    pytest.param("Bearer atelier_nosecret", "invalid_api_key", id="no secret part"),
    pytest.param("Bearer atelier_ab\x00cd_secret", "invalid_api_key", id="NUL in key"),
    pytest.param("Bearer", "invalid_authorization", id="scheme only"),
    pytest.param("Bearer    ", "invalid_authorization", id="blank token"),
    pytest.param("Basic dXNlcjpwYXNzd29yZA==", "invalid_authorization", id="basic auth"),
    pytest.param(lambda agent: f"Token {agent.key}", "invalid_authorization", id="wrong scheme"),
    pytest.param(lambda agent: agent.key, "invalid_authorization", id="no scheme"),
    pytest.param("Bearer eyJhbGciOiJub25lIn0.e30.", "invalid_authorization", id="a JWT"),
    pytest.param("Bearer atws_" + "A" * 43, "invalid_session", id="forged session token"),
]


def _with_header(world: World, header: str, code: str) -> None:
    """Every probe in AUTH_PROBES, sent with `header`, is the same 401."""
    for call in AUTH_PROBES:
        path, body = world.path(call), world.fill(call.body)
        refused(lambda: Api(Client()).call(call.method, path, body, Authorization=header), 401, code)  # noqa: B023


@pytest.mark.parametrize(("header", "code"), BAD_HEADERS)
def test_bad_credentials_are_401_everywhere(world, agent, header, code):
    _with_header(world, header(agent) if callable(header) else header, code)


def test_a_revoked_key_is_401(world, agent):
    assert agent.api.get("/api/agents/me").status_code == 200
    api_key_revoke(key=ApiKey.objects.get(agent=agent.agent))
    _with_header(world, f"Bearer {agent.key}", "revoked_api_key")


def test_a_deactivated_agents_key_is_401(world, agent):
    world.order(Status.PENDING_QUOTE)  # the probes' order and service exist before the agent goes
    world.fill(CREATE.body)
    Agent.objects.filter(pk=agent.id).update(active=False)
    _with_header(world, f"Bearer {agent.key}", "agent_inactive")


def test_a_signed_out_or_expired_session_is_401(world, buyer, base_buyer):
    token = buyer.api.headers["Authorization"]
    assert buyer.api.post("/api/auth/signout").status_code == 200
    _with_header(world, token, "invalid_session")
    WalletSession.objects.filter(wallet=base_buyer.wallet).update(expires_at=timezone.now() - timedelta(seconds=1))
    _with_header(world, base_buyer.api.headers["Authorization"], "invalid_session")


def _signature_fields(buyer: Any, **overrides: Any) -> dict[str, Any]:
    ts = str(int(time.time()))
    fields = {"wallet": buyer.wallet, "wallet_sig": buyer.sign(f"atelier:{buyer.wallet}:{ts}"), "wallet_sig_ts": ts}
    fields.update(overrides)
    return {name: value for name, value in fields.items() if value is not None}


SIGNATURE_CASES = [
    pytest.param({"wallet_sig_ts": None}, "invalid_signature", id="no timestamp"),
    pytest.param({"wallet": None}, "invalid_signature", id="no wallet"),
    pytest.param({"wallet_sig": ""}, "invalid_signature", id="empty signature"),
    pytest.param({"wallet_sig": "not-a-signature"}, "invalid_signature", id="garbage signature"),
    pytest.param({"wallet_sig": "1" * 88}, "invalid_signature", id="wrong signature"),
    pytest.param({"wallet": "not-a-wallet"}, "invalid_wallet", id="bad wallet"),
    pytest.param({"wallet": EVM_BAD_CHECKSUM}, "invalid_wallet", id="evm wrong checksum"),
    pytest.param({"wallet_sig_ts": "yesterday"}, "invalid_signature", id="timestamp not a number"),
    pytest.param({"wallet_sig_ts": "1e9"}, "invalid_signature", id="timestamp in e-notation"),
    pytest.param({"wallet_sig_ts": "9" * 400}, "invalid_signature", id="timestamp 400 digits"),
    pytest.param({"wallet_sig_ts": "-" + "9" * 400}, "invalid_signature", id="timestamp -400 digits"),
    pytest.param({"wallet_sig_ts": str(int(time.time()) - 3600)}, "signature_expired", id="stale ts, sig of now"),
    pytest.param({"wallet_sig_ts": str(int(time.time() + 3600) * 1000)}, "signature_in_future", id="future ts in ms"),
]


@pytest.mark.parametrize(("overrides", "code"), SIGNATURE_CASES)
@pytest.mark.parametrize("transport", ["query", "body"])
def test_a_bad_per_request_wallet_signature_is_401(world, buyer, overrides, code, transport):
    fields = _signature_fields(buyer, **overrides)
    body = world.fill(CREATE.body)
    if transport == "query":
        refused(lambda: Api(Client()).get("/api/orders?" + urlencode(fields)), 401, code)
        # A write never takes the signature from the URL, whatever else is wrong with it.
        refused(lambda: Api(Client()).post("/api/orders?" + urlencode(fields), body), 401, "signature_in_query")
    else:
        refused(lambda: Api(Client()).post("/api/orders", {**body, **fields}), 401, code)


def test_a_wallet_alone_is_not_a_credential(world, buyer):
    """Without wallet_sig and wallet_sig_ts, `wallet` is just a (here unknown) body field."""
    body = world.fill(CREATE.body)
    query = "?" + urlencode({"wallet": buyer.wallet})
    refused(lambda: Api(Client()).get("/api/orders" + query), 401, "authentication_required")
    refused(lambda: Api(Client()).post("/api/orders" + query, body), 401, "authentication_required")
    refused(lambda: Api(Client()).post("/api/orders", {**body, "wallet": buyer.wallet}), 401, "authentication_required")


def test_a_stale_but_correctly_signed_timestamp_is_401_signature_expired(world, buyer):
    ts = str(int(time.time()) - 3600)
    fields = {"wallet": buyer.wallet, "wallet_sig": buyer.sign(f"atelier:{buyer.wallet}:{ts}"), "wallet_sig_ts": ts}
    body = {**world.fill(CREATE.body), **fields}
    refused(lambda: Api(Client()).post("/api/orders", body), 401, "signature_expired")
    # The same request signed now is accepted: the refusal above was about the timestamp alone.
    assert Api(Client()).post("/api/orders", {**body, **_signature_fields(buyer)}).status_code == 201


@pytest.mark.parametrize("value", [True, 1.5, ["1"], {"ts": 1}], ids=repr)
def test_a_non_string_signature_field_is_401(world, buyer, value):
    body = {**world.fill(CREATE.body), **_signature_fields(buyer, wallet_sig_ts=value)}
    refused(lambda: Api(Client()).post("/api/orders", body), 401, "invalid_signature")


# --- who may call what ---------------------------------------------------------------------------

AGENT_ONLY = [
    ME,
    ME_EDIT,
    POLL,
    SERVICE_NEW,
    SERVICE_EDIT,
    SERVICE_DELETE,
    QUOTE,
    START,
    DELIVER,
]
PARTY_ONLY = [
    Call("buyer", "GET", "/api/orders"),
    CREATE,
    DETAIL,
    ACT_CANCEL,
    MESSAGES,
    MESSAGE,
    REVIEW,
]


@pytest.mark.parametrize("call", AGENT_ONLY, ids=str)
@pytest.mark.parametrize(("who", "code"), [("buyer", "agent_key_required"), ("anonymous", "authentication_required")])
def test_agent_only_endpoints_refuse_buyers_and_anonymous_with_401(world, call, who, code):
    world.refuse(call, call.body, 401, code, who=who)


@pytest.mark.parametrize("call", PARTY_ONLY, ids=str)
def test_party_endpoints_refuse_anonymous_with_401(world, call):
    world.refuse(call, call.body, 401, "authentication_required", who="anonymous")


@pytest.mark.parametrize(("who", "code"), [("agent", "wallet_required"), ("anonymous", "authentication_required")])
def test_signout_needs_a_wallet(world, who, code):
    world.refuse(SIGNOUT, {}, 401, code, who=who)


def test_an_agent_polling_another_agents_orders_is_403(world, agent, other_agent):
    world.order(Status.PENDING_QUOTE)
    refused(lambda: other_agent.api.get(f"/api/agents/{agent.id}/orders"), 403, "not_your_agent")
    refused(lambda: other_agent.api.get(f"/api/agents/{agent.id}/orders?status=paid"), 403, "not_your_agent")
    refused(lambda: other_agent.api.get("/api/agents/agt_doesnotexist/orders"), 404, "agent_not_found")
    refused(lambda: other_agent.api.get("/api/agents/agt_%00/orders"), 404, "agent_not_found")


def test_agents_act_only_within_their_role(world, agent, other_agent):
    order = world.order(Status.DELIVERED)
    refused(lambda: agent.api.patch(f"/api/orders/{order.id}", {"action": "approve"}), 403, "wrong_role")
    refused(
        lambda: agent.api.patch(f"/api/orders/{order.id}", {"action": "dispute", "reason": "No."}), 403, "wrong_role"
    )
    completed = world.order(Status.COMPLETED)
    refused(lambda: agent.api.post(f"/api/orders/{completed.id}/review", {"rating": 5}), 403, "wrong_role")
    refused(lambda: other_agent.api.post(f"/api/agents/{agent.id}/services", SERVICE_NEW.body), 403, "not_your_agent")
    service = world.service
    refused(
        lambda: other_agent.api.patch(f"/api/services/{service.id}", {"title": "Mine now"}), 404, "service_not_found"
    )
    refused(lambda: other_agent.api.delete(f"/api/services/{service.id}"), 404, "service_not_found")
    refused(
        lambda: agent.api.patch("/api/services/svc_doesnotexist", {"title": "Ghost service"}), 404, "service_not_found"
    )
    refused(lambda: agent.api.delete("/api/services/svc_%00"), 404, "service_not_found")


def test_ordering_what_cannot_be_ordered(world, agent, buyer):
    own = make_service(agent.agent, title="Own service")
    refused(lambda: agent.api.post("/api/orders", {"service_id": own.id, "brief": BRIEF}), 403, "cannot_hire_self")
    withdrawn = make_service(agent.agent, title="Withdrawn service")
    Service.objects.filter(pk=withdrawn.pk).update(active=False)
    refused(
        lambda: buyer.api.post("/api/orders", {"service_id": withdrawn.id, "brief": BRIEF}), 404, "service_not_found"
    )
    body = world.fill(CREATE.body)  # an active service of an agent that is then deactivated
    Agent.objects.filter(pk=agent.id).update(active=False)
    refused(lambda: buyer.api.post("/api/orders", body), 404, "service_not_found")


# --- the order's state -------------------------------------------------------------------------

WRONG_STATE = [
    (ACT, Status.PENDING_QUOTE, {"action": "accept"}),
    (ACT, Status.PAID, {"action": "approve"}),
    (ACT, Status.IN_PROGRESS, {"action": "revision", "feedback": "Darker."}),
    (ACT, Status.COMPLETED, {"action": "dispute", "reason": "Changed my mind."}),
    (ACT, Status.IN_PROGRESS, {"action": "cancel"}),
    (ACT, Status.CANCELLED, {"action": "accept"}),
    (QUOTE, Status.QUOTED, {"price_usd": "50.00"}),
    (QUOTE, Status.CANCELLED, {"price_usd": "45.00"}),
    (START, Status.ACCEPTED, {}),
    (START, Status.COMPLETED, {}),
    (DELIVER, Status.PENDING_QUOTE, DELIVER.body),
    (DELIVER, Status.COMPLETED, DELIVER.body),
    (DELIVER, Status.CANCELLED, DELIVER.body),
]


@pytest.mark.parametrize(
    ("call", "status", "body"), [pytest.param(*row, id=f"{row[0]} on {row[1]}") for row in WRONG_STATE]
)
def test_an_action_in_the_wrong_state_is_409(world, call, status, body):
    order = world.order(status)
    response = world.refuse(call, body, 409, "invalid_transition", order_id=order.id)
    assert response.body["details"]["status"] == status


TX_HASH = "0x" + "ab" * 32
PAY_CASES = [
    pytest.param({"action": "pay"}, V, id="no escrow_tx_hash"),
    pytest.param({"action": "pay", "escrow_tx_hash": ""}, V, id="empty hash"),
    pytest.param({"action": "pay", "escrow_tx_hash": "   "}, V, id="whitespace hash"),
    pytest.param({"action": "pay", "escrow_tx_hash": 123}, V, id="number for hash"),
    pytest.param({"action": "pay", "escrow_tx_hash": "0x" + "a" * 200}, V, id="hash over 128"),
    pytest.param({"action": "pay", "escrow_tx_hash": TX_HASH, "payment_chain": "ethereum"}, V, id="unknown chain"),
    pytest.param({"action": "pay", "escrow_tx_hash": TX_HASH, "feedback": "Paid!"}, V, id="feedback with pay"),
    pytest.param({"action": "pay", "escrow_tx_hash": TX_HASH, "amount": "45.00"}, U, id="unknown field"),
    pytest.param(
        {"action": "pay", "escrow_tx_hash": "0x123", "payment_chain": "base"}, "malformed_tx_hash", id="short base hash"
    ),
    pytest.param(
        {"action": "pay", "escrow_tx_hash": "0x" + "zz" * 32, "payment_chain": "base"},
        "malformed_tx_hash",
        id="non-hex base hash",
    ),
]


@pytest.fixture
def base_configured(settings: Any) -> None:
    """A Base escrow configured (no node runs: these requests are refused before any RPC call)."""
    settings.BASE_USDC_ADDRESS = "0x" + "12" * 20
    settings.BASE_ESCROW_PRIVATE_KEY = "0x" + "01" * 32
    settings.BASE_RPC_URL = "http://127.0.0.1:9"  # discard: nothing may be sent


@pytest.mark.parametrize("status", [Status.QUOTED, Status.ACCEPTED])
@pytest.mark.parametrize(("body", "code"), PAY_CASES)
def test_a_bad_payment_submission_is_400_and_records_nothing(world, base_configured, status, body, code):
    """Refused before any chain is asked: no Payment row, no ledger entry, no event, no status change."""
    world.refuse(ACT, body, 400, code, order_id=world.order(status).id)


def test_paying_on_a_chain_this_server_has_not_configured_is_503(world, settings, tmp_path):
    settings.BASE_USDC_ADDRESS = settings.BASE_ESCROW_PRIVATE_KEY = ""
    settings.DEVCHAIN_STATE = tmp_path / "absent.json"
    body = {"action": "pay", "escrow_tx_hash": TX_HASH, "payment_chain": "base"}
    world.refuse(ACT, body, 503, "chain_unavailable", order_id=world.order(Status.ACCEPTED).id)


@pytest.mark.parametrize("stranger", ["other_buyer", "other_agent"])
def test_paying_someone_elses_order_is_404(world, base_configured, stranger):
    order = world.order(Status.ACCEPTED)
    body = {"action": "pay", "escrow_tx_hash": TX_HASH, "payment_chain": "base"}
    world.refuse(ACT, body, 404, "order_not_found", who=stranger, order_id=order.id)


def test_a_revision_past_the_limit_is_409(world, buyer, agent):
    service = make_service(agent.agent, price_type="quote", price="0.00", title="No revisions", max_revisions=0)
    order = make_order(buyer, agent, Status.DELIVERED, service=service)
    body = {"action": "revision", "feedback": "Darker, please."}
    refused(lambda: buyer.api.patch(f"/api/orders/{order.id}", body), 409, "revision_limit_reached")


@pytest.mark.parametrize("status", [Status.PENDING_QUOTE, Status.QUOTED, Status.ACCEPTED, Status.CANCELLED])
@pytest.mark.parametrize("who", ["buyer", "agent"])
def test_messages_before_payment_are_409(world, status, who):
    order = world.order(status)
    world.refuse(MESSAGE, {"content": "Hello?"}, 409, "messaging_unavailable", who=who, order_id=order.id)


@pytest.mark.parametrize(
    "status", [Status.PENDING_QUOTE, Status.PAID, Status.DELIVERED, Status.DISPUTED, Status.CANCELLED]
)
def test_a_review_before_completion_is_409(world, status):
    order = world.order(status)
    world.refuse(REVIEW, {"rating": 5}, 409, "review_unavailable", order_id=order.id)


def test_a_second_review_is_409(world, buyer):
    order = world.order(Status.COMPLETED)
    first = buyer.api.post(f"/api/orders/{order.id}/review", {"rating": 4, "comment": "Nice fox."})
    assert first.status_code == 201, first.body
    world.refuse(REVIEW, {"rating": 1, "comment": "Changed my mind."}, 409, "already_reviewed", order_id=order.id)
    world.refuse(REVIEW, {"rating": 4, "comment": "Nice fox."}, 409, "already_reviewed", order_id=order.id)


# --- query strings -------------------------------------------------------------------------------

QUERY_CASES = [
    ("buyer", "/api/orders?limit=0"),
    ("buyer", "/api/orders?limit=101"),
    ("buyer", "/api/orders?limit=abc"),
    ("buyer", "/api/orders?limit=1.5"),
    ("buyer", "/api/orders?limit=" + "9" * 5000),
    ("buyer", "/api/orders?status=bogus"),
    ("buyer", "/api/orders?status=paid,bogus"),
    ("buyer", "/api/orders?status=" + "paid," * 50),
    ("buyer", "/api/orders?before=" + "x" * 41),
    ("buyer", "/api/orders?before=%00"),
    ("buyer", "/api/orders?sort=newest"),
    ("agent", "/api/agents/{agent}/orders?status=bogus"),
    ("agent", "/api/agents/{agent}/orders?limit=-1"),
    ("agent", "/api/agents/{agent}/orders?page=2"),
    ("anonymous", "/api/services?limit=0"),
    ("anonymous", "/api/services?price_type=hourly"),
    ("anonymous", "/api/services?q=" + "x" * 101),
    ("anonymous", "/api/services?category=%00"),
    ("anonymous", "/api/services?sort=price"),
    ("buyer", "/api/orders/{order}/messages?limit=0"),
    ("buyer", "/api/orders/{order}/messages?limit=201"),
    ("buyer", "/api/orders/{order}/messages?after=" + "x" * 41),
    ("buyer", "/api/orders/{order}?expand=events"),
]


@pytest.mark.parametrize(("who", "path"), QUERY_CASES, ids=[p[:70] for _, p in QUERY_CASES])
def test_a_bad_query_string_is_400(world, who, path):
    call = Call(who, "GET", path.split("?")[0], Status.PAID)
    full = world.path(call) + "?" + path.split("?", 1)[1]
    code = "unknown_field" if any(k in path for k in ("sort=", "page=", "expand=")) else "validation_error"
    api = world.api(who)
    refused(lambda: api.get(full), 400, code)


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/api/agents/agt_doesnotexist", "agent_not_found"),
        ("/api/agents/agt_doesnotexist/services", "agent_not_found"),
        ("/api/agents/agt_%00", "agent_not_found"),
        ("/api/agents/agt_%00/services", "agent_not_found"),
    ],
)
def test_an_unknown_agent_is_404(anonymous, path, code):
    refused(lambda: anonymous.get(path), 404, code)


# --- wallet sign-in ------------------------------------------------------------------------------


@pytest.mark.parametrize("chain", ["solana", "base"])
def test_sign_in_with_a_wrong_signature_is_401_and_burns_the_nonce(chain):
    stranger_key = Keypair() if chain == "solana" else Account.create()
    wallet = str(Keypair().pubkey()) if chain == "solana" else Account.create().address
    api = Api(Client())
    challenge = api.post("/api/auth/nonce", {"wallet": wallet, "chain": chain})
    assert challenge.status_code == 201, challenge.body
    nonce, message = challenge.body["data"]["nonce"], challenge.body["data"]["message"]
    if chain == "solana":
        signature = str(stranger_key.sign_message(message.encode()))
    else:
        from eth_account.messages import encode_defunct

        signature = "0x" + Account.sign_message(encode_defunct(text=message), stranger_key.key).signature.hex()
    refused(lambda: api.post("/api/auth/verify", {"nonce": nonce, "signature": signature}), 401, "invalid_signature")
    assert SignInChallenge.objects.get(nonce=nonce).used_at is not None  # burned: no second guess
    assert not WalletSession.objects.filter(wallet=wallet).exists()


@pytest.mark.parametrize("signature", ["not-a-signature", "0x" + "ab" * 65, "1" * 88, "=" * 88])
def test_sign_in_with_a_malformed_signature_is_401(signature):
    challenge = signin_challenge_create(chain="solana", wallet=str(Keypair().pubkey()))
    body = {"nonce": challenge.nonce, "signature": signature}
    refused(lambda: Api(Client()).post("/api/auth/verify", body), 401, "invalid_signature")


def test_a_replayed_nonce_is_401(buyer):
    keypair = Keypair()
    api = Api(Client())
    challenge = api.post("/api/auth/nonce", {"wallet": str(keypair.pubkey()), "chain": "solana"}).body["data"]
    body = {"nonce": challenge["nonce"], "signature": str(keypair.sign_message(challenge["message"].encode()))}
    first = api.post("/api/auth/verify", body)
    assert first.status_code == 201, first.body
    refused(lambda: api.post("/api/auth/verify", body), 401, "invalid_nonce")
    refused(lambda: Api(Client()).post("/api/auth/verify", body), 401, "invalid_nonce")


def test_an_unknown_or_expired_nonce_is_401():
    keypair = Keypair()
    challenge = signin_challenge_create(chain="solana", wallet=str(keypair.pubkey()))
    signature = str(keypair.sign_message(challenge.message.encode()))
    unknown = {"nonce": "f" * 32, "signature": signature}
    refused(lambda: Api(Client()).post("/api/auth/verify", unknown), 401, "invalid_nonce")
    SignInChallenge.objects.filter(pk=challenge.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = {"nonce": challenge.nonce, "signature": signature}
    refused(lambda: Api(Client()).post("/api/auth/verify", expired), 401, "invalid_nonce")


# --- the HTTP envelope itself: unknown paths, wrong methods, huge bodies -------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/nope"),
        ("POST", "/api/nope"),
        ("GET", "/api/v2/orders"),
        ("GET", "/api/orders/"),
        ("POST", "/api/orders/ord_1/refund"),
        ("GET", "/api/orders/ord_1/messages/msg_1"),
        ("DELETE", "/api/agents/me/keys"),
        ("GET", "/api/"),
    ],
)
def test_an_unknown_api_path_is_a_404_envelope(buyer, method, path):
    refused(lambda: buyer.api.call(method, path, {}), 404, "unknown_endpoint")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/api/orders", "GET, POST"),
        ("PUT", "/api/orders/{order}", "GET, PATCH"),
        ("DELETE", "/api/orders/{order}", "GET, PATCH"),
        ("GET", "/api/orders/{order}/quote", "POST"),
        ("PATCH", "/api/orders/{order}/review", "POST"),
        ("DELETE", "/api/orders/{order}/messages", "GET, POST"),
        ("GET", "/api/auth/nonce", "POST"),
        ("PUT", "/api/agents/register", "POST"),
        ("DELETE", "/api/agents/me", "GET, PATCH"),
        ("POST", "/api/services", "GET"),
        ("GET", "/api/services/{service}", "DELETE, PATCH"),
        ("OPTIONS", "/api/orders", "GET, POST"),
    ],
)
def test_a_wrong_method_is_405_with_allow(world, method, path, allow):
    target = world.path(Call("buyer", method, path))
    api = world.api("buyer")
    response = refused(lambda: api.call(method, target, {"action": "cancel"}), 405, "method_not_allowed")
    assert response["Allow"] == allow
    assert response.body["details"] == {"allowed": allow.split(", ")}


@pytest.mark.parametrize("call", [CREATE, MESSAGE, REGISTER, DELIVER, ME_EDIT], ids=str)
def test_a_body_over_1_mb_is_413(world, call):
    padded = '{"content": "' + "x" * 1_000_000 + '"}'
    world.refuse(call, padded, 413, "payload_too_large")


def test_a_body_just_under_1_mb_is_read_and_validated(world):
    body = '{"content": "' + "x" * 999_000 + '"}'
    world.refuse(MESSAGE, body, 400, "validation_error")


def test_form_encoded_bodies_are_not_json(world, buyer):
    order = world.order(Status.PAID)
    client = Client(headers=buyer.api.headers)

    def send() -> Any:
        response = client.post(
            f"/api/orders/{order.id}/messages", "content=hello", content_type="application/x-www-form-urlencoded"
        )
        response.body = response.json()
        return response

    refused(send, 400, "invalid_json")


def test_the_snapshot_sees_a_new_row_and_a_touched_timestamp(world, buyer):
    """`refused()` is only as strong as `snapshot()`: check that it notices what a real request writes."""
    order = world.order(Status.PAID)
    before = snapshot()
    assert buyer.api.post(f"/api/orders/{order.id}/messages", {"content": "Hi"}).status_code == 201
    after = snapshot()
    assert len(after["Message"]) == len(before["Message"]) + 1
    assert len(after["OrderEvent"]) == len(before["OrderEvent"]) + 1
    Order.objects.get(pk=order.id).save(update_fields=["updated_at"])
    assert snapshot()["Order"] != after["Order"]
