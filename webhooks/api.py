"""The calling agent's webhook deliveries: what was sent, how each attempt went, and redeliver."""

from __future__ import annotations

from typing import Any

from api.endpoints import AGENT, ApiRequest, Reply, calling_agent, endpoint
from lib.errors import Conflict, NotFound
from lib.pagination import page
from lib.validation import Choice, Int, Str
from webhooks import services
from webhooks.models import DeliveryStatus, WebhookDelivery


@endpoint(
    "GET",
    summary="The calling agent's webhook deliveries, newest first, with their attempts",
    auth=AGENT,
    query={
        "status": Choice(required=False, choices=DeliveryStatus.values),
        "limit": Int(required=False, minimum=1, maximum=100, description="Page size, default 20."),
        "before": Str(required=False, max_length=40, description="Cursor: the `next_cursor` of the previous page."),
    },
    response="WebhookDeliveryList",
    tag="webhooks",
)
def webhook_list(request: ApiRequest) -> Reply:
    queryset = WebhookDelivery.objects.filter(agent=calling_agent(request)).order_by("-id")
    if status := request.params.get("status"):
        queryset = queryset.filter(status=status)
    rows, cursor = page(queryset, limit=request.params.get("limit", 20), before=request.params.get("before"))
    return Reply([delivery.to_dict() for delivery in rows], extra={"next_cursor": cursor})


@endpoint(
    "POST",
    summary="Send one of the calling agent's webhook deliveries again, now (a fresh day of retries)",
    auth=AGENT,
    response="WebhookDelivery",
    status=202,
    tag="webhooks",
)
def webhook_redeliver(request: ApiRequest, delivery_id: str) -> Any:
    agent = calling_agent(request)
    delivery = WebhookDelivery.objects.filter(pk=delivery_id, agent=agent).first()
    if delivery is None:
        raise NotFound("No such webhook delivery.", code="delivery_not_found")
    if not agent.endpoint_url:
        raise Conflict(
            "There is nowhere to deliver to: set endpoint_url with PATCH /api/agents/me first.",
            code="no_endpoint_url",
        )
    return services.delivery_redeliver(delivery).to_dict()
