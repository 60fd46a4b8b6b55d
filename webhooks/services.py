"""Webhook deliveries: written with the event, sent by a task, retried for about a day.

A delivery is at-least-once: the receiver gets the same `webhook-id` on every attempt (and on a
redeliver) and drops repeats. One attempt:
1. claim: one conditional UPDATE counts the attempt and takes a short lease on the row (no
   transaction stays open over the HTTP call, and a duplicate task finds the lease and stops);
2. POST the stored payload, signed, through `lib.safehttp` (public addresses only,
   checked at connect time; no redirects; 10 s timeout);
3. record the outcome: 2xx is delivered; anything else is retried with backoff and jitter until
   `retry_until` (about a day), then failed. The outcome and the next attempt's task are written
   in one transaction.

Signatures. `X-Atelier-Signature: t=<unix>,v1=<hex>` is the product's: HMAC-SHA256 keyed with the
whole secret string as the agent holds it (`whsec_...`, UTF-8), over `f"{t}.{body}"`.
`webhook-signature: v1,<base64>` is Standard Webhooks': HMAC-SHA256 over
`f"{webhook-id}.{webhook-timestamp}.{body}"`, keyed with the secret's bytes, which the spec defines
as the base64 decoding of what follows `whsec_`. Secrets are issued that way (32 random bytes,
standard base64).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta
from typing import Any

import urllib3
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.tasks import task
from django.utils import timezone

from agents.models import Agent
from lib import safehttp
from lib.tasks import enqueue, retry_later
from webhooks.models import DeliveryStatus, WebhookDelivery

log = logging.getLogger("atelier.webhooks")

TIMEOUT_SECONDS = 10.0
# While an attempt is in flight the row is leased this long: longer than an attempt takes, shorter
# than `requeue_stale_tasks --older-than`, so the task of a worker that died mid-attempt, once
# requeued, finds the lease over and tries again.
LEASE = timedelta(seconds=60)
# Clocks of app servers and workers differ a little; a task is not early by less than this.
CLOCK_SLACK = timedelta(seconds=5)
RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=2)
MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "Atelier-Webhooks/1"


def retry_window() -> timedelta:
    return timedelta(seconds=getattr(settings, "WEBHOOK_RETRY_SECONDS", 24 * 3600))


# --- writing: with the event, in its transaction -------------------------------------------------


def deliveries_create(
    *, agents: list[Agent], order_id: str, order_event_id: str, webhook_event: str, payload: dict[str, Any]
) -> list[WebhookDelivery]:
    """One pending delivery of the finished `payload` per agent, each with its task queued (in the
    caller's transaction, see `lib.tasks.enqueue`). Called by `orders.core.events.record`, which
    decides who listens and what they hear."""
    if not agents:
        return []
    retry_until = timezone.now() + retry_window()
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                agent=agent,
                order_id=order_id,
                order_event_id=order_event_id,
                event=webhook_event,
                payload=payload,
                retry_until=retry_until,
            )
            for agent in agents
        ]
    )
    for delivery in deliveries:
        enqueue(deliver_webhook, delivery.id)
    return deliveries


def delivery_redeliver(delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again now (whatever its state), with a fresh day of retries. Queues the
    task in this transaction."""
    now = timezone.now()
    with transaction.atomic():
        delivery.status = DeliveryStatus.PENDING
        delivery.next_attempt_at = None
        delivery.retry_until = now + retry_window()
        delivery.save(update_fields=["status", "next_attempt_at", "retry_until", "updated_at"])
        enqueue(deliver_webhook, delivery.id)
    return delivery


# --- sending: in the worker -----------------------------------------------------------------------


def body_bytes(payload: dict[str, Any]) -> bytes:
    # Sorted keys: the same bytes on every attempt, whatever order the database kept the keys in.
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def standard_webhooks_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret, as the Standard Webhooks spec reads it: the base64 after
    the prefix (every secret is issued that way: agents.services)."""
    return base64.b64decode(secret.removeprefix("whsec_"), validate=True)


def signed_headers(*, secret: str, delivery_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    atelier = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    standard = hmac.new(
        standard_webhooks_key(secret), f"{delivery_id}.{timestamp}.".encode() + body, hashlib.sha256
    ).digest()
    return {
        "X-Atelier-Signature": f"t={timestamp},v1={atelier}",
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(standard).decode(),
    }


def _claim(delivery_id: str) -> WebhookDelivery | None:
    now = timezone.now()
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + CLOCK_SLACK))
        .update(attempts=F("attempts") + 1, last_attempt_at=now, next_attempt_at=now + LEASE, updated_at=now)
    )
    if not claimed:
        return None  # delivered, failed, or another task holds or has scheduled the next attempt
    return WebhookDelivery.objects.select_related("agent").get(pk=delivery_id)


def _post(delivery: WebhookDelivery) -> tuple[int | None, str]:
    """One POST. Returns (status code or None, error text; empty when delivered)."""
    agent = delivery.agent
    body = body_bytes(delivery.payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Atelier-Event": delivery.event,
        "X-Atelier-Agent-Id": agent.id,
        "X-Atelier-Delivery-Id": delivery.id,
        **signed_headers(secret=agent.webhook_secret, delivery_id=delivery.id, timestamp=int(time.time()), body=body),
    }
    try:
        response = safehttp.request(
            "POST",
            agent.endpoint_url,
            body=body,
            headers=headers,
            timeout=TIMEOUT_SECONDS,
            max_bytes=MAX_RESPONSE_BYTES,
            allow_private=settings.ALLOW_PRIVATE_WEBHOOKS,
        )
    except safehttp.UnsafeURL as exc:
        return None, f"Refused: {exc}."
    except safehttp.TooLarge:
        return None, f"The response body was over {MAX_RESPONSE_BYTES} bytes."
    except urllib3.exceptions.TimeoutError:
        return None, f"No answer within {TIMEOUT_SECONDS:g} s."
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        return None, f"Connection failed: {exc}."
    except Exception as exc:  # whatever it was, it is one failed attempt, never a stuck delivery
        log.exception("webhook %s: unexpected error while sending", delivery.id)
        return None, f"Could not send: {type(exc).__name__}: {exc}."
    if 200 <= response.status < 300:
        return response.status, ""
    snippet = response.body[:200].decode("utf-8", "replace")
    return response.status, f"HTTP {response.status}" + (f": {snippet}" if snippet else "")


@task()
def deliver_webhook(delivery_id: str, attempt: int = 1) -> str:
    """One attempt at a delivery; on failure it queues the next itself (`delivery_attempt`)."""
    return delivery_attempt(delivery_id, attempt=attempt)


def delivery_attempt(delivery_id: str, *, attempt: int = 1) -> str:
    """Make one attempt at a delivery (run by the `deliver_webhook` task). `attempt` counts the
    attempts since the delivery was created or redelivered and sets the backoff before the next.
    Returns what happened: delivered, retrying, failed, skipped (not due, or not pending) or
    superseded (another attempt started meanwhile and records its own outcome)."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return "skipped"
    if not delivery.agent.active or not delivery.agent.endpoint_url:
        status_code, error = None, "The agent has no endpoint_url."
        final = True
    else:
        delivery.last_url = delivery.agent.endpoint_url
        status_code, error = _post(delivery)
        final = False
    now = timezone.now()
    fields: dict[str, Any] = {
        "last_status_code": status_code,
        "last_error": error[:500],
        "last_url": delivery.last_url[:500],
        "updated_at": now,
    }
    with transaction.atomic():
        mine = WebhookDelivery.objects.filter(pk=delivery.pk, attempts=delivery.attempts)
        if not mine.select_for_update().exists():
            return "superseded"  # a newer attempt (after a redeliver) owns the row now
        if not error:
            mine.update(status=DeliveryStatus.DELIVERED, delivered_at=now, next_attempt_at=None, **fields)
            return "delivered"
        if final or now >= delivery.retry_until:
            mine.update(status=DeliveryStatus.FAILED, next_attempt_at=None, **fields)
            log.warning("webhook %s to %s failed for good: %s", delivery.pk, delivery.agent_id, error)
            return "failed"
        run_after = retry_later(
            deliver_webhook,
            delivery.pk,
            attempt + 1,
            attempt=attempt,
            base=RETRY_BASE,
            cap=RETRY_CAP,
            not_after=delivery.retry_until,
        )
        if run_after is None:  # a backend that cannot defer (tests' immediate backends): no retries
            mine.update(status=DeliveryStatus.FAILED, next_attempt_at=None, **fields)
            return "failed"
        mine.update(next_attempt_at=run_after, **fields)
    log.info(
        "webhook %s to %s: attempt %s failed (%s); next at %s",
        delivery.pk,
        delivery.agent_id,
        attempt,
        error,
        run_after,
    )
    return "retrying"
