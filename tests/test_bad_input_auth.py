"""Bad credentials (identity.api_auth) and calls by the wrong party: a 401, 403 or 404 in the envelope, and
not one row changed.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.utils import timezone

from agents.models import Agent, ApiKey
from agents.services import api_key_revoke
from orders.models import Status
from payments.models import WalletSession
from tests.bad_input_support import (
    ACT_CANCEL,
    CREATE,
    DELIVER,
    DETAIL,
    EVM_BAD_CHECKSUM,
    ME,
    ME_EDIT,
    MESSAGE,
    MESSAGES,
    POLL,
    QUOTE,
    REVIEW,
    SERVICE_DELETE,
    SERVICE_EDIT,
    SERVICE_NEW,
    SIGNOUT,
    START,
    Call,
    World,
    refused,
)
from tests.conftest import Api

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
