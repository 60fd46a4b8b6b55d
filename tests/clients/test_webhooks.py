"""verify_webhook against what the server signs (webhooks.services.signed_headers) and against the
official Standard Webhooks library, both ways, with the timestamp tolerance."""

from __future__ import annotations

import base64
import json
import secrets
import time
from datetime import UTC, datetime

import pytest
from atelier_client.webhooks import WebhookVerificationError, verify_webhook
from standardwebhooks import Webhook

from webhooks.services import body_bytes, signed_headers

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
EVENT = {"event": "order.paid", "order_id": "ord_1", "data": {"id": "evt_1", "action": "pay"}}


def server_signed(*, timestamp: int | None = None, secret: str = SECRET) -> tuple[dict[str, str], bytes]:
    body = body_bytes(EVENT)
    ts = int(time.time()) if timestamp is None else timestamp
    return signed_headers(secret=secret, delivery_id="whk_1", timestamp=ts, body=body), body


def test_a_server_delivery_verifies_by_either_scheme_alone():
    headers, body = server_signed()
    atelier_only = {"X-Atelier-Signature": headers["X-Atelier-Signature"]}
    standard_only = {k: v for k, v in headers.items() if k.startswith("webhook-")}

    assert verify_webhook(atelier_only, body, SECRET) == EVENT
    assert verify_webhook(standard_only, body, SECRET) == EVENT
    assert verify_webhook(headers, body.decode(), SECRET) == EVENT


def test_the_official_library_verifies_what_the_server_sends():
    headers, body = server_signed()
    assert Webhook(SECRET).verify(body, {k: v for k, v in headers.items() if k.startswith("webhook-")}) == EVENT


def test_what_the_official_library_signs_verifies_here():
    body = json.dumps(EVENT).encode()
    now = datetime.now(tz=UTC)
    signature = Webhook(SECRET).sign("msg_2", now, body)
    headers = {"Webhook-Id": "msg_2", "Webhook-Timestamp": str(int(now.timestamp())), "Webhook-Signature": signature}

    assert verify_webhook(headers, body, SECRET) == EVENT


@pytest.mark.parametrize("scheme", ["atelier", "standard"])
def test_stale_tampered_or_wrongly_keyed_deliveries_are_refused(scheme):
    def only(headers: dict[str, str]) -> dict[str, str]:
        if scheme == "atelier":
            return {"X-Atelier-Signature": headers["X-Atelier-Signature"]}
        return {k: v for k, v in headers.items() if k.startswith("webhook-")}

    stale, body = server_signed(timestamp=int(time.time()) - 301)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(only(stale), body, SECRET)
    future, body = server_signed(timestamp=int(time.time()) + 301)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(only(future), body, SECRET)
    fresh, body = server_signed()
    with pytest.raises(WebhookVerificationError):
        verify_webhook(only(fresh), body.replace(b"order.paid", b"order.done"), SECRET)
    other = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    with pytest.raises(WebhookVerificationError):
        verify_webhook(only(fresh), body, other)
    # A wider tolerance (or the receiver's own clock) accepts the old one.
    assert verify_webhook(only(stale), server_signed(timestamp=int(time.time()) - 301)[1], SECRET, tolerance=600)


def test_no_signature_at_all_is_refused():
    with pytest.raises(WebhookVerificationError, match="no signature headers"):
        verify_webhook({}, b"{}", SECRET)
