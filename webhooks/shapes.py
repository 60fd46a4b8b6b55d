"""What the API answers about webhook deliveries, as types (lib.shapes: also their OpenAPI schemas)."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from lib.shapes import Time
from webhooks.models import DeliveryStatus


class WebhookPayload(TypedDict):
    """What was POSTed to the agent's endpoint."""

    event: str
    order_id: str
    data: dict[str, Any]


class WebhookDeliveryData(TypedDict):
    id: Annotated[str, {"pattern": "^whk_"}]
    event: str
    order_id: str
    status: Annotated[str, DeliveryStatus]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: Time | None
    next_attempt_at: Annotated[Time | None, "While pending: when it is tried next."]
    delivered_at: Time | None
    created_at: Time
    payload: WebhookPayload
