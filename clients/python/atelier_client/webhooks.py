"""Verify Atelier's webhooks: either scheme it sends, with a timestamp tolerance.

    event = verify_webhook(request.headers, request.body, "whsec_...")   # raises WebhookVerificationError

- `X-Atelier-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, keyed with the whole
  `whsec_` secret;
- Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>` (several
  space-separated), HMAC-SHA256 of `"<id>.<timestamp>.<body>"` keyed with the base64 after `whsec_`.

A delivery is accepted when either scheme verifies. Drop repeats by `X-Atelier-Delivery-Id` (or
`webhook-id`): a retry carries the same one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

DEFAULT_TOLERANCE = 300  # seconds either side, as the Standard Webhooks libraries


class WebhookVerificationError(Exception):
    pass


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(name).lower(): str(value) for name, value in headers.items()}


def _fresh(timestamp: str, tolerance: float, now: float) -> int:
    try:
        ts = int(timestamp)
    except ValueError:
        raise WebhookVerificationError("the timestamp is not an integer") from None
    if abs(now - ts) > tolerance:
        raise WebhookVerificationError("the timestamp is outside the tolerance")
    return ts


def verify_atelier_signature(
    header: str, body: bytes, secret: str, *, tolerance: float = DEFAULT_TOLERANCE, now: float | None = None
) -> None:
    """`X-Atelier-Signature: t=...,v1=...` (several v1 are allowed, as during a secret rotation)."""
    parts = [part.strip().partition("=") for part in header.split(",")]
    timestamps = [value for key, _, value in parts if key == "t"]
    signatures = [value for key, _, value in parts if key == "v1"]
    if len(timestamps) != 1 or not signatures:
        raise WebhookVerificationError("malformed X-Atelier-Signature")
    _fresh(timestamps[0], tolerance, time.time() if now is None else now)
    expected = hmac.new(secret.encode(), timestamps[0].encode() + b"." + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise WebhookVerificationError("no matching X-Atelier-Signature")


def verify_standard_webhook(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Standard Webhooks (standardwebhooks.com): the key is the base64 after `whsec_`."""
    found = _lower(headers)
    msg_id, timestamp, signature = (
        found.get(name) for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    )
    if not (msg_id and timestamp and signature):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    _fresh(timestamp, tolerance, time.time() if now is None else now)
    key = _standard_key(secret)
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    expected = base64.b64encode(digest).decode()
    for candidate in signature.split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(expected, value):
            return
    raise WebhookVerificationError("no matching webhook-signature")


def _standard_key(secret: str) -> bytes:
    """The key as the spec reads it (base64 after `whsec_`); secrets issued before Atelier followed
    the spec are urlsafe base64 or plain text, and the server signs with the same fallbacks."""
    encoded = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        pass
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        return encoded.encode()


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes | str,
    secret: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> dict[str, Any]:
    """The event (`{"event", "order_id", "data"}`) if the delivery verifies by either scheme, else
    WebhookVerificationError. `body` must be the raw bytes received, not re-serialized JSON."""
    raw = body.encode() if isinstance(body, str) else bytes(body)
    found = _lower(headers)
    errors: list[str] = []
    if "x-atelier-signature" in found:
        try:
            verify_atelier_signature(found["x-atelier-signature"], raw, secret, tolerance=tolerance, now=now)
            return _event(raw)
        except WebhookVerificationError as exc:
            errors.append(f"X-Atelier-Signature: {exc}")
    if "webhook-signature" in found:
        try:
            verify_standard_webhook(found, raw, secret, tolerance=tolerance, now=now)
            return _event(raw)
        except WebhookVerificationError as exc:
            errors.append(f"Standard Webhooks: {exc}")
    raise WebhookVerificationError("; ".join(errors) or "no signature headers")


def _event(raw: bytes) -> dict[str, Any]:
    try:
        event = json.loads(raw)
    except ValueError:
        raise WebhookVerificationError("the body is not JSON") from None
    if not isinstance(event, dict):
        raise WebhookVerificationError("the body is not a JSON object")
    return event
