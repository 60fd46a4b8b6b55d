"""JSON bodies nested past lib.jsonbody.MAX_DEPTH are refused with a 400 before they are
parsed (no RecursionError, no 500), by the API's parser and by the Solana Pay endpoint's alike;
brackets inside strings are text, not nesting."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from django.test import Client

from lib import jsonbody
from lib.errors import ValidationFailed
from tests.bad_input_support import CREATE, NONCE

DEEP = jsonbody.MAX_DEPTH + 1


def nested(depth: int, inner: str = "") -> str:
    return "[" * depth + inner + "]" * depth


def test_a_body_within_the_depth_limit_parses() -> None:
    assert jsonbody.loads(nested(jsonbody.MAX_DEPTH).encode()) is not None
    assert jsonbody.loads(b'{"a": {"b": [1, {"c": null}]}}') == {"a": {"b": [1, {"c": None}]}}


@pytest.mark.parametrize("depth", [DEEP, 1000, 100_000])
def test_a_body_past_the_depth_limit_is_refused_as_invalid_json(depth: int) -> None:
    with pytest.raises(ValidationFailed) as raised:
        jsonbody.loads(('{"account": ' + nested(depth) + "}").encode())
    assert raised.value.code == "invalid_json"
    assert raised.value.details == {"max_depth": jsonbody.MAX_DEPTH}


def test_brackets_inside_strings_are_not_nesting() -> None:
    text = "[" * 500 + '\\"{{{' + "]" * 3
    assert jsonbody.loads(('{"brief": "' + text + '"}').encode()) == {"brief": text.replace('\\"', '"')}


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"a": "\xff"}', id="not-utf8"),
        pytest.param('{"a": 1}'.encode("utf-16"), id="utf-16"),
        pytest.param(b'{"a":', id="truncated"),
        pytest.param(b"[" * 100_000, id="unclosed-100k"),
    ],
)
def test_bodies_that_are_not_utf8_json_are_refused(raw: bytes) -> None:
    with pytest.raises(ValidationFailed) as raised:
        jsonbody.loads(raw)
    assert raised.value.code == "invalid_json"


DEEP_BODIES = [
    pytest.param("[" * 100_000, id="unclosed-100k"),
    pytest.param('{"wallet": ' + nested(100_000) + "}", id="field-100k"),
    pytest.param('{"wallet": ' + nested(5_000) + "}", id="field-5000"),
    pytest.param('{"wallet": ' + nested(DEEP) + "}", id="field-just-past-the-limit"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("body", DEEP_BODIES)
@pytest.mark.parametrize("call", [CREATE, NONCE], ids=str)
def test_the_api_refuses_deep_bodies_with_the_envelope(world: Any, call: Any, body: str) -> None:
    response = world.refuse(call, body, 400, "invalid_json")
    assert response.body["details"] == {"max_depth": jsonbody.MAX_DEPTH}


@pytest.mark.django_db
def test_nesting_within_the_limit_reaches_field_validation() -> None:
    body = '{"wallet": ' + nested(jsonbody.MAX_DEPTH - 1) + ', "chain": "solana"}'
    response = Client().post("/api/auth/nonce", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _document(rng: random.Random, height: int) -> Any:
    if height == 0 or rng.random() < 0.2:
        return rng.choice([1, None, "]", "[{", '\\"[', "\\", 'a"]]\\\\', "é[ü"])
    if rng.random() < 0.5:
        return [_document(rng, height - 1) for _ in range(rng.randint(0, 3))]
    return {f'k{n}"[\\': _document(rng, height - 1) for n in range(rng.randint(0, 3))}


@pytest.mark.parametrize("limit", [2, 5, jsonbody.MAX_DEPTH])
def test_the_depth_scan_agrees_with_the_parsed_document(limit: int) -> None:
    rng = random.Random(limit)
    for _ in range(2_000):
        document = _document(rng, rng.randint(1, 24))
        text = json.dumps(document, ensure_ascii=rng.random() < 0.5).encode()
        assert jsonbody.too_deep(text, limit) == (_depth(document) > limit), text
