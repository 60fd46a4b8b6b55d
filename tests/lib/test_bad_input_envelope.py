"""Bad input to any endpoint, refused by api.endpoints before the view runs: bodies that are not
JSON objects, bad query strings, unknown paths, wrong methods, bodies over 1 MB; and a check of
`snapshot()` itself (tests/bad_input_support.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from orders.models import Order, Status
from tests.bad_input_support import (
    ACT,
    CREATE,
    DELIVER,
    ME_EDIT,
    MESSAGE,
    NONCE,
    QUOTE,
    REGISTER,
    REVIEW,
    SERVICE_EDIT,
    SERVICE_NEW,
    SIGNOUT,
    START,
    VERIFY,
    Call,
    refused,
    snapshot,
)
from tests.conftest import with_body

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
        return with_body(
            client.post(
                f"/api/orders/{order.id}/messages", "content=hello", content_type="application/x-www-form-urlencoded"
            )
        )

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
