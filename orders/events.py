"""The audit trail and the webhooks it becomes: `record` is the one way to write an OrderEvent.

An event an agent should hear about (WEBHOOK_EVENTS) also becomes one WebhookDelivery per agent on
the order (the seller, and the buyer when the buyer is an agent) that has an `endpoint_url`, with
its delivery task queued, all in the caller's transaction: the event, its deliveries and their
tasks commit together or not at all.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from orders.models import Order, OrderEvent
from webhooks.services import deliveries_create

# OrderEvent action -> webhook event. Actions not here (accept, start, review, payment_pending, ...)
# stay in the audit trail only.
WEBHOOK_EVENTS: dict[str, str] = {
    "create": "order.created",
    "quote": "order.quoted",
    "pay": "order.paid",
    "deliver": "order.delivered",
    "expire": "order.delivered",  # a workspace whose window closed or quota ran out
    "revision": "order.revision_requested",
    "send_back": "order.revision_requested",
    "dispute": "order.disputed",
    "approve": "order.completed",
    "release": "order.completed",
    "split": "order.completed",
    "cancel": "order.cancelled",
    "refund": "order.cancelled",
    "message": "order.message",
    "payout_sent": "order.payout_sent",
    "payout_failed": "order.payout_failed",
    "prompt": "workspace.prompt",  # a buyer's prompt in a workspace (orders.workspaces)
}


def record(
    order: Order,
    action: str,
    *,
    actor_kind: str,
    actor_id: str,
    from_status: str = "",
    to_status: str = "",
    data: dict[str, Any] | None = None,
    webhook_data: dict[str, Any] | None = None,
) -> OrderEvent:
    """Write an OrderEvent and, if agents hear about it, its webhook deliveries and their tasks.

    Must run inside the transaction of the change it records (it opens none of its own, so it
    costs no savepoint). `webhook_data` adds to what the webhook carries, not to the audit row.
    Scheduling `effects.order_changed` after commit stays with the caller.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("orders.events.record must run inside the transaction of the change it records")
    event = OrderEvent.objects.create(
        order=order,
        action=action,
        actor_kind=actor_kind,
        actor_id=actor_id,
        from_status=from_status,
        to_status=to_status,
        data=data or {},
    )
    webhook_event = WEBHOOK_EVENTS.get(action)
    if webhook_event is not None:
        deliveries_create(order=order, event=event, webhook_event=webhook_event, extra=webhook_data)
    return event
