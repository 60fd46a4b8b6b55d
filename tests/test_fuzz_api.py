"""The API fuzzed against its own OpenAPI document with schemathesis.

The document is fetched from `/api/openapi.json` through the real WSGI application (every
middleware, the URLconf, the `endpoint` decorator), and schemathesis generates requests for every
operation from it: valid ones and invalid ones (wrong types, missing fields, out-of-range values,
unknown properties), including boundary values. Each generated request is sent three times, once
per role, with real credentials:

- an agent's API key (`Authorization: Bearer atelier_...`),
- a buyer's wallet session token (`atws_...`) from the real sign-in (nonce, ed25519 signature),
- nobody.

Path parameters are either generated or, half of the time, the id of something that exists (the
agent, the buyer's orders in several statuses, a service), so the fuzzer reaches the views and the
state machine and not only the 404s. The chains are the local devchains (as in the payment tests),
so `pay` talks to a real JSON-RPC server.

Every response must: not be a 5xx; have a status code the document lists for the operation; have
the documented content type and a body that validates against the documented schema; and, for
every 4xx, be the error envelope `{success: false, error, code, details}` exactly. Invalid
requests (negative mode) must be refused with a 4xx. Not checked: that every request the document
allows is accepted (schemathesis' positive_data_acceptance). The document says which fields each
PATCH action takes (a oneOf on `action`), but not "a real Solana address": such requests get a documented 400.

In process, not on a socket: the WSGI application is the same stack a server runs, and this way each
operation's examples share the test's transaction (a live server needs a flushed database per test).

Bounded: MAX_EXAMPLES per operation (FUZZ_MAX_EXAMPLES, 50 by default) and a per-example deadline;
the whole file takes about a minute of CPU. Rate limits are real, but their counters (in a locmem
cache) are cleared before each call, so the fuzzer exercises the endpoints rather than the 429.
Reproduce a failure with the seed pytest prints: `pytest tests/test_fuzz_api.py --hypothesis-seed=N`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from atelier.wsgi import application
from orders.models import Deliverable, Status
from tests.conftest import make_agent, make_buyer, make_order, make_service
from tests.payments.conftest import chains_up, devchains  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

# Per operation; CI runs 50 (about a minute in all). FUZZ_MAX_EXAMPLES=500 for a deeper run by hand.
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "50"))
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")

# Ids of things that exist, by path parameter name; filled by the `world` fixture per test.
KNOWN_IDS: dict[str, list[str]] = {}
# Authorization headers per role; filled by the `world` fixture per test.
ROLES: dict[str, dict[str, str]] = {}


def error_envelope(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx is `{"success": false, "error": <sentence>, "code": <snake_case>, "details": {...}}`."""
    if not 400 <= response.status_code < 500:
        return None
    body = response.json()
    assert isinstance(body, dict), f"a {response.status_code} body is not an object: {body!r}"
    assert set(body) == {"success", "error", "code", "details"}, f"envelope keys: {sorted(body)}"
    assert body["success"] is False, body
    assert isinstance(body["error"], str), body
    assert body["error"].strip(), body
    assert isinstance(body["code"], str), body
    assert SNAKE_CASE.match(body["code"]), body
    assert isinstance(body["details"], dict), body
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    error_envelope,
]


LOCMEM_CACHE = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Fetched through the WSGI application at collection, where there is no database: its rate limit
# counts in a memory cache here (on the database cache it would fail open, log, and switch the
# limiter off for a few seconds, under the tests that run next). Not
# `schemathesis.pytest.from_fixture`: its lazy loader writes `node._nodeid`, which pytest 9 removed.
with override_settings(CACHES=LOCMEM_CACHE):
    schema = schemathesis.openapi.from_wsgi(
        "/api/openapi.json",
        application,
        config=schemathesis.Config.from_dict(
            # Credentials are ours (ROLES), not generated: a generated bad Authorization replaced by a
            # good one would read as "invalid data accepted". Bad credentials have their own tests.
            {"generation": {"max-examples": MAX_EXAMPLES, "database": "none", "with-security-parameters": False}}
        ),
    )


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    """Half the time, the ids of things that exist instead of generated strings. Only in place of
    valid ones (a string of at most 40 characters, as documented): an invalid one is the point of a
    negative example, and a real id in its place would be "invalid data accepted"."""
    if not path_parameters or not all(name in KNOWN_IDS for name in path_parameters):
        return st.just(path_parameters)
    if not all(isinstance(value, str) and len(value) <= 40 for value in path_parameters.values()):
        return st.just(path_parameters)
    known = st.fixed_dictionaries({name: st.sampled_from(KNOWN_IDS[name]) for name in path_parameters})
    return st.one_of(st.just(path_parameters), known)


@pytest.fixture
def world(settings: Any, chains_up: Any) -> Iterator[None]:  # noqa: F811
    """Who calls and what exists: two agents, a signed-in buyer, orders in several statuses (and an
    open workspace), their deliverables."""
    # Rate-limit counters in memory, cleared before every call (see `test_api`).
    settings.CACHES = LOCMEM_CACHE
    # The WSGI handler closes "old" connections around each request; inside the test's transaction
    # that would close it. Django's test client disconnects the same two receivers.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        agent, other_agent = make_agent("Fuzz Forge"), make_agent("Other Forge")
        buyer = make_buyer("solana")
        service = make_service(agent.agent, price_type="quote", price="0.00")
        orders = [
            make_order(buyer, agent, status, service=service)
            for status in (Status.PENDING_QUOTE, Status.QUOTED, Status.PAID, Status.DELIVERED, Status.COMPLETED)
        ]
        workspace = make_service(agent.agent, price_type="weekly", price="30.00", quota_limit=5)
        orders.append(make_order(buyer, agent, Status.IN_PROGRESS, service=workspace))  # an open workspace
        KNOWN_IDS.clear()
        KNOWN_IDS.update(
            agent_id=[agent.id, other_agent.id],
            order_id=[order.id for order in orders],
            service_id=[service.id, workspace.id, make_service(other_agent.agent).id],
            deliverable_id=list(Deliverable.objects.filter(order__in=orders).values_list("id", flat=True)),
        )
        ROLES.clear()
        ROLES.update(
            anonymous={},
            agent={"Authorization": f"Bearer {agent.key}"},
            buyer=dict(buyer.api.headers),
        )
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=timedelta(seconds=10),
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api(case: Any, world: None) -> None:
    for role, headers in ROLES.items():
        cache.clear()
        try:
            case.call_and_validate(headers=headers, checks=CHECKS)
        except BaseException as exc:
            exc.add_note(f"Sent as: {role}")
            raise


# --- what the fuzzer found, kept fixed (plain examples: the fuzzer is random) --------------------


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param({"wallet": "", "wallet_sig": "", "wallet_sig_ts": {}}, id="ts an object"),
        pytest.param({"wallet": "w" * 65, "wallet_sig": "sig", "wallet_sig_ts": 1}, id="wallet over 64"),
        pytest.param({"wallet": "w", "wallet_sig": "s" * 201, "wallet_sig_ts": "1"}, id="wallet_sig over 200"),
    ],
)
def test_malformed_signature_fields_beside_a_session_token_are_refused(buyer: Any, credentials: Any) -> None:
    response = buyer.api.post("/api/auth/signout", credentials)
    assert response.status_code == 401, response.body
    assert response.body["code"] in ("invalid_signature", "invalid_wallet")
    assert buyer.api.get("/api/orders").status_code == 200  # and the session was not signed out


def test_an_optional_field_sent_as_null_is_documented_as_accepted(agent: Any, anonymous: Any) -> None:
    response = agent.api.patch("/api/agents/me", {"payout_address_base": None, "endpoint_url": None})
    assert response.status_code == 200, response.body
    body = anonymous.get("/api/openapi.json").body["paths"]["/api/agents/me"]["patch"]["requestBody"]
    properties = body["content"]["application/json"]["schema"]["properties"]
    assert "null" in properties["payout_address_base"]["type"]
    assert None in properties["payout_chain"]["enum"]


@pytest.mark.parametrize("price", [" 45.00", "45.00 ", "1e2", ".5", "45.", "4_5", "+45", "\u0664\u0665"])
def test_a_price_the_documented_pattern_refuses_is_refused(buyer: Any, agent: Any, price: str) -> None:
    order = make_order(buyer, agent)
    response = agent.api.post(f"/api/orders/{order.id}/quote", {"price_usd": price})
    assert response.status_code == 400, response.body
    assert "price_usd" in response.body["details"]


@pytest.mark.parametrize(
    "url", [" https://cdn.example.com/a.pdf", "https://cdn.example.com/a.pdf\n", "HTTPS://cdn.example.com/a"]
)
def test_a_url_the_documented_pattern_refuses_is_refused(buyer: Any, agent: Any, url: str) -> None:
    order = make_order(buyer, agent, Status.PAID)
    response = agent.api.post(
        f"/api/orders/{order.id}/deliver", {"deliverable_url": url, "deliverable_media_type": "link"}
    )
    assert response.status_code == 400, response.body


def test_the_maximum_length_counts_the_whitespace_sent(buyer: Any, agent: Any) -> None:
    order = make_order(buyer, agent, Status.PAID)
    too_long = buyer.api.post(f"/api/orders/{order.id}/messages", {"content": " " + "x" * 2000})
    assert too_long.status_code == 400, too_long.body
    fits = buyer.api.post(f"/api/orders/{order.id}/messages", {"content": " " + "x" * 1999})
    assert fits.status_code == 201, fits.body
    assert fits.body["data"]["content"] == "x" * 1999  # stripped, as before


@pytest.mark.parametrize("limit", [" 5", "5 ", "+5", "1_0", "\u0665", "\uff15", "9" * 5000])
def test_an_integer_query_parameter_is_plain_digits(anonymous: Any, limit: str) -> None:
    assert anonymous.get("/api/services?limit=5").status_code == 200
    response = anonymous.get(f"/api/services?limit={quote(limit)}")
    assert response.status_code == 400, response.body
    assert "limit" in response.body["details"]
