"""Agent registration, API keys, and the agent's own profile (GET/PATCH /api/agents/me)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from eth_account import Account
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from agents.models import Agent, ApiKey
from agents.services import api_key_create, api_key_revoke
from tests.conftest import Api, make_agent, make_buyer

REGISTER = "/api/agents/register"
ME = "/api/agents/me"
KEY_SHAPE = re.compile(r"^atelier_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$")


def registration(**fields: Any) -> dict[str, Any]:
    return {
        "name": "Pixel Forge",
        "description": "Makes logos and posters.",
        "endpoint_url": "https://agent.example.com/hooks",
        "payout_chain": "solana",
        **fields,
    }


def row(agent_id: str) -> Mapping[str, Any]:
    return Agent.objects.values().get(pk=agent_id)


def as_key(key: str) -> Api:
    return Api(Client(), {"Authorization": f"Bearer {key}"})


# --- registration ----------------------------------------------------------------------------


def test_register_returns_the_agent_a_key_shown_once_and_a_webhook_secret(anonymous):
    payout = str(Keypair().pubkey())

    response = anonymous.post(REGISTER, registration(payout_wallet=payout))

    assert response.status_code == 201, response.body
    data = response.body["data"]
    agent = data["agent"]
    assert agent["id"].startswith("agt_")
    assert (agent["name"], agent["slug"], agent["payout_chain"], agent["payout_wallet"]) == (
        "Pixel Forge",
        "pixel-forge",
        "solana",
        payout,
    )
    assert agent["endpoint_url"] == "https://agent.example.com/hooks"
    assert (agent["avg_rating"], agent["rating_count"], agent["last_poll_at"]) == ("0.00", 0, None)
    match = KEY_SHAPE.match(data["api_key"])
    assert match, data["api_key"]
    assert data["webhook_secret"].startswith("whsec_")

    stored = Agent.objects.get(pk=agent["id"])
    assert (stored.name, stored.payout_wallet, stored.webhook_secret) == ("Pixel Forge", payout, data["webhook_secret"])
    key = ApiKey.objects.get(agent=stored)
    assert key.prefix == match.group(1)
    assert key.key_hash == hashlib.sha256(data["api_key"].encode()).hexdigest()
    assert key.revoked_at is None


def test_the_database_never_holds_the_api_key_itself(anonymous):
    response = anonymous.post(REGISTER, registration())
    api_key = response.body["data"]["api_key"]
    secret = api_key.split("_", 2)[2]  # the secret itself may contain underscores
    assert len(secret) == 43

    stored = [str(value) for value in ApiKey.objects.values().get().values()]
    stored += [str(value) for value in Agent.objects.values().get().values()]

    assert not any(api_key in value or secret in value for value in stored)


def test_the_registration_key_authenticates_as_that_agent(anonymous):
    data = anonymous.post(REGISTER, registration()).body["data"]
    assert ApiKey.objects.get().last_used_at is None

    me = as_key(data["api_key"]).get(ME)

    assert me.status_code == 200, me.body
    assert me.body["data"]["id"] == data["agent"]["id"]
    assert ApiKey.objects.get().last_used_at is not None


def test_agents_with_the_same_name_get_distinct_slugs(anonymous):
    first = anonymous.post(REGISTER, registration()).body["data"]["agent"]
    second = anonymous.post(REGISTER, registration()).body["data"]["agent"]

    assert first["slug"] == "pixel-forge"
    assert second["slug"].startswith("pixel-forge-")
    assert second["slug"] != first["slug"]
    assert Agent.objects.filter(name="Pixel Forge").count() == 2


def test_register_with_a_lowercase_base_payout_address_stores_the_checksum(anonymous):
    address = Account.create().address

    response = anonymous.post(REGISTER, registration(payout_chain="base", payout_address_base=address.lower()))

    assert response.status_code == 201, response.body
    assert response.body["data"]["agent"]["payout_address_base"] == address
    assert Agent.objects.get().payout_address_base == address


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"name": None}, "name"),
        ({"name": "x"}, "name"),
        ({"endpoint_url": "ftp://agent.example.com/hooks"}, "endpoint_url"),
        ({"payout_chain": "ethereum"}, "payout_chain"),
        ({"payout_wallet": "not-a-wallet"}, "payout_wallet"),
        ({"payout_address_base": "0x1234"}, "payout_address_base"),
        ({"api_key": "atelier_mine"}, "api_key"),
    ],
)
def test_register_with_bad_input_is_400_naming_the_field_and_creates_nothing(anonymous, fields, bad_field):
    body = {key: value for key, value in registration(**fields).items() if value is not None}

    response = anonymous.post(REGISTER, body)

    assert response.status_code == 400, response.body
    assert bad_field in response.body["details"]
    assert not Agent.objects.exists()
    assert not ApiKey.objects.exists()


def test_register_is_limited_to_5_per_hour_per_ip(db):
    api = Api(Client(REMOTE_ADDR="198.51.100.7"))
    for number in range(5):
        assert api.post(REGISTER, registration(name=f"Agent {number}")).status_code == 201

    sixth = api.post(REGISTER, registration(name="Agent 6"))

    assert sixth.status_code == 429
    assert sixth.body["success"] is False
    assert sixth.body["code"] == "rate_limited"
    # Up to two windows: the rest of this hour, then until enough of its count has slid out.
    assert 1 <= int(sixth["Retry-After"]) <= 2 * 3600
    assert sixth.body["details"]["retry_after"] == int(sixth["Retry-After"])
    assert sixth["X-RateLimit-Limit"] == "5"
    assert sixth["X-RateLimit-Remaining"] == "0"
    assert int(sixth["X-RateLimit-Reset"]) >= int(timezone.now().timestamp())
    assert Agent.objects.count() == 5
    assert not Agent.objects.filter(name="Agent 6").exists()

    elsewhere = Api(Client(REMOTE_ADDR="203.0.113.9")).post(REGISTER, registration(name="Agent 7"))
    assert elsewhere.status_code == 201
    assert Agent.objects.count() == 6


# --- API keys --------------------------------------------------------------------------------


def test_a_revoked_key_is_401_revoked_api_key(agent):
    api_key_revoke(key=ApiKey.objects.get(agent=agent.agent))

    response = agent.api.get(ME)

    assert response.status_code == 401
    assert response.body["code"] == "revoked_api_key"
    assert ApiKey.objects.get(agent=agent.agent).revoked_at is not None


def test_an_agent_can_hold_several_keys_and_revoking_one_keeps_the_others(agent):
    second, third = api_key_create(agent=agent.agent, label="ci"), api_key_create(agent=agent.agent, label="laptop")
    assert ApiKey.objects.filter(agent=agent.agent).count() == 3

    for key in (agent.key, second, third):
        response = as_key(key).get(ME)
        assert response.status_code == 200, response.body
        assert response.body["data"]["id"] == agent.id

    api_key_revoke(key=ApiKey.objects.get(label="ci"))

    assert as_key(second).get(ME).status_code == 401
    assert as_key(agent.key).get(ME).status_code == 200
    assert as_key(third).get(ME).status_code == 200
    assert ApiKey.objects.filter(agent=agent.agent, revoked_at__isnull=True).count() == 2


@pytest.mark.parametrize(
    "mangle",
    [
        lambda key: key[:-1] + ("A" if key[-1] != "A" else "B"),  # right prefix, wrong secret
        lambda key: "atelier_ffffffffffff_" + key.split("_", 2)[2],  # unknown prefix
        lambda key: "atelier_nounderscore",  # malformed
    ],
    ids=["wrong_secret", "unknown_prefix", "malformed"],
)
def test_a_wrong_key_is_401_invalid_api_key(agent, mangle):
    response = as_key(mangle(agent.key)).get(ME)

    assert response.status_code == 401
    assert response.body["code"] == "invalid_api_key"


def test_the_key_of_a_deactivated_agent_is_401(agent):
    Agent.objects.filter(pk=agent.id).update(active=False)

    response = agent.api.get(ME)

    assert response.status_code == 401
    assert response.body["code"] == "agent_inactive"


# --- GET /api/agents/me ----------------------------------------------------------------------


def test_me_returns_the_private_profile_without_secrets(agent):
    response = agent.api.get(ME)

    assert response.status_code == 200, response.body
    data = response.body["data"]
    stored = Agent.objects.get(pk=agent.id)
    assert data["id"] == stored.id
    assert (data["name"], data["slug"], data["payout_chain"]) == (stored.name, stored.slug, stored.payout_chain)
    assert {"endpoint_url", "payout_wallet", "payout_address_base", "last_poll_at"} <= set(data)
    assert "webhook_secret" not in data
    assert stored.webhook_secret not in response.content.decode()


def test_me_needs_an_agent_key(db):
    assert Api(Client()).get(ME).status_code == 401
    buyer = make_buyer("solana")

    response = buyer.api.get(ME)

    assert response.status_code == 401
    assert response.body["code"] == "agent_key_required"


# --- PATCH /api/agents/me --------------------------------------------------------------------


def test_patch_me_sets_a_solana_payout_wallet(agent):
    payout = str(Keypair().pubkey())

    response = agent.api.patch(ME, {"payout_wallet": payout, "payout_chain": "solana"})

    assert response.status_code == 200, response.body
    assert response.body["data"]["payout_wallet"] == payout
    assert row(agent.id)["payout_wallet"] == payout


@pytest.mark.parametrize("spelling", ["checksummed", "lowercase"])
def test_patch_me_stores_a_base_address_checksummed(agent, spelling):
    address = Account.create().address
    sent = address if spelling == "checksummed" else address.lower()

    response = agent.api.patch(ME, {"payout_address_base": sent, "payout_chain": "base"})

    assert response.status_code == 200, response.body
    assert response.body["data"]["payout_address_base"] == address
    assert response.body["data"]["payout_chain"] == "base"
    stored = row(agent.id)
    assert (stored["payout_address_base"], stored["payout_chain"]) == (address, "base")


def _wrong_checksum() -> str:
    """A checksummed address with the case of every letter swapped: mixed case, bad EIP-55."""
    address = Account.create().address
    while address[2:] in (address[2:].lower(), address[2:].upper()):
        address = Account.create().address
    return address[:2] + address[2:].swapcase()


def _program_derived() -> str:
    pda, _bump = Pubkey.find_program_address([b"escrow"], Pubkey.from_string("11111111111111111111111111111112"))
    return str(pda)


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("payout_wallet", "not-a-wallet"),
        ("payout_wallet", "0x" + "ab" * 20),
        ("payout_wallet", "11111111111111111111111111111111"),  # the system program, not a wallet
        ("payout_wallet", "program_derived"),
        ("payout_wallet", ""),
        ("payout_wallet", 12345),
        ("payout_address_base", "0x1234"),
        ("payout_address_base", "0x" + "0" * 40),
        ("payout_address_base", "wrong_checksum"),
        ("payout_address_base", "7EcDhSYGxXyscszYEp35KHN8vvw3svAuLKTzXwCFLtV"),
        ("payout_chain", "ethereum"),
        ("endpoint_url", "ftp://agent.example.com/hooks"),
        ("endpoint_url", "javascript:alert(1)"),
        ("endpoint_url", "agent.example.com/hooks"),
        ("rotate_webhook_secret", "yes"),
        ("webhook_secret", "whsec_chosen_by_me"),
    ],
)
def test_patch_me_with_an_invalid_value_is_400_naming_the_field_and_changes_nothing(agent, field_name, value):
    value = {"program_derived": _program_derived(), "wrong_checksum": _wrong_checksum()}.get(value, value)
    before = row(agent.id)

    response = agent.api.patch(ME, {"name": "Renamed Forge", field_name: value})

    assert response.status_code == 400, response.body
    assert response.body["success"] is False
    assert field_name in response.body["details"]
    assert row(agent.id) == before


@pytest.mark.parametrize("url", ["https://agent.example.com/hooks", "http://agent.example.com:8080/atelier"])
def test_patch_me_accepts_an_http_or_https_endpoint(agent, url):
    response = agent.api.patch(ME, {"endpoint_url": url})

    assert response.status_code == 200, response.body
    assert response.body["data"]["endpoint_url"] == url
    assert row(agent.id)["endpoint_url"] == url


def test_patch_me_changes_only_the_fields_sent(agent):
    before = row(agent.id)

    response = agent.api.patch(ME, {"name": "Pixel Forge Two", "description": "Now with posters."})

    assert response.status_code == 200, response.body
    after = row(agent.id)
    assert (after["name"], after["description"]) == ("Pixel Forge Two", "Now with posters.")
    assert {k: v for k, v in after.items() if k not in ("name", "description")} == {
        k: v for k, v in before.items() if k not in ("name", "description")
    }


def test_rotate_webhook_secret_returns_a_new_secret_and_stores_it(agent):
    old = Agent.objects.get(pk=agent.id).webhook_secret

    response = agent.api.patch(ME, {"rotate_webhook_secret": True})

    assert response.status_code == 200, response.body
    new = response.body["data"]["webhook_secret"]
    assert new.startswith("whsec_")
    assert new != old
    assert Agent.objects.get(pk=agent.id).webhook_secret == new


def test_a_patch_without_rotation_neither_shows_nor_changes_the_secret(agent):
    old = Agent.objects.get(pk=agent.id).webhook_secret

    response = agent.api.patch(ME, {"rotate_webhook_secret": False, "name": "Quiet Forge"})

    assert response.status_code == 200, response.body
    assert "webhook_secret" not in response.body["data"]
    assert Agent.objects.get(pk=agent.id).webhook_secret == old


def test_patch_me_is_for_agents_only(db):
    buyer = make_buyer("base")
    other = make_agent("Codewright")
    before = row(other.id)

    response = buyer.api.patch(ME, {"name": "Hijacked"})

    assert response.status_code == 401
    assert response.body["code"] == "agent_key_required"
    assert row(other.id) == before
