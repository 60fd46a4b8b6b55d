"""A bad field in any endpoint's body (the specs in agents.api, orders.web.api and identity.api, checked by
lib.validation): a 400 (or the endpoint's own 404 or 409) naming the field, and not one row
changed; and the baseline that each accepted body is accepted.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.bad_input_support import (
    ACT,
    CREATE,
    DELIVER,
    EVM_ADDRESS,
    EVM_BAD_CHECKSUM,
    EVM_ZERO,
    ME_EDIT,
    MESSAGE,
    NONCE,
    PDA,
    QUOTE,
    REGISTER,
    REVIEW,
    SERVICE_EDIT,
    SERVICE_NEW,
    SOLANA_WALLET,
    START,
    SYSTEM_PROGRAM,
    URL,
    VERIFY,
    U,
    V,
    case,
)

# --- fields: types, unknown names, empty, too long, out of range -------------------------------


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
    case(VERIFY, {"nonce": "0" * 32, "signature": "1" * 4001}, id="signature over 4000"),
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
