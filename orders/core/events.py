"""The audit trail and the webhooks it becomes: `record` is the one way to write an OrderEvent.

An event an agent should hear about (WEBHOOK_EVENTS) also becomes one WebhookDelivery per agent on
the order (the seller, and the buyer when the buyer is an agent) that has an `endpoint_url`, with
its delivery task queued, all in the caller's transaction: the event, its deliveries and their
tasks commit together or not at all.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.db import transaction

from agents.models import Agent, Service
from orders.models import Order, OrderEvent
from payments.models import OutgoingTransfer
from webhooks.services import deliveries_create

log = logging.getLogger("atelier.orders")

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
    # The agent's payout wallet has no USDC account: held until it has one (payments.tasks).
    "payout_held": "order.payout_held",
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
    Schedules `order_changed(event)` for after the commit (nothing runs for a change rolled back).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("orders.core.events.record must run inside the transaction of the change it records")
    event = OrderEvent.objects.create(
        order=order,
        action=action,
        actor_kind=actor_kind,
        actor_id=actor_id,
        from_status=from_status,
        to_status=to_status,
        data=data or {},
    )
    transaction.on_commit(partial(order_changed, event))
    webhook_event = WEBHOOK_EVENTS.get(action)
    if webhook_event is not None:
        agents = _listening_agents(order)
        if agents:
            payload = _webhook_payload(order, event, webhook_event, webhook_data)
            deliveries_create(
                agents=agents, order_id=order.id, order_event_id=event.id, webhook_event=webhook_event, payload=payload
            )
    return event


def order_changed(event: OrderEvent) -> None:
    """After the change commits: the log line. Webhooks and payouts are not sent from here: their
    rows and tasks are written in the change's own transaction, so a crash between the commit and
    this callback loses neither."""
    log.info(
        "order %s %s by %s: %s -> %s",
        event.order_id,
        event.action,
        event.actor_kind,
        event.from_status or "-",
        event.to_status or "-",
    )


def _webhook_payload(
    order: Order, event: OrderEvent, webhook_event: str, extra: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "event": webhook_event,
        "order_id": order.id,
        "data": {
            "event_id": event.id,
            "action": event.action,
            "actor": event.actor_kind,
            "from_status": event.from_status or None,
            "to_status": event.to_status or None,
            "occurred_at": event.created_at.isoformat(),
            "details": {**event.data, **(extra or {})},
            "order": _order_summary(order),
        },
    }


def _listening_agents(order: Order) -> list[Agent]:
    """The order's agents (the seller; the buyer if an agent) that have an endpoint. Uses the
    agents already loaded with the order where it can, so most events cost no extra query."""
    found: dict[str, Agent] = {}
    missing: list[str] = []
    for pk, descriptor in ((order.agent_id, Order.agent), (order.buyer_agent_id, Order.buyer_agent)):
        if pk is None:
            continue
        if descriptor.is_cached(order):
            found[pk] = getattr(order, descriptor.field.name)
        elif pk == order.agent_id and (agent := _agent_of_loaded_service(order)) is not None:
            found[pk] = agent
        else:
            missing.append(pk)
    if missing:
        found.update((agent.pk, agent) for agent in Agent.objects.filter(pk__in=missing))
    return [agent for agent in found.values() if agent.active and agent.endpoint_url]


def _agent_of_loaded_service(order: Order) -> Agent | None:
    """order_open() builds the order from a service loaded with its agent: that agent, if so."""
    if not Order.service.is_cached(order):
        return None
    service = order.service
    if service.agent_id != order.agent_id or not Service.agent.is_cached(service):
        return None
    return service.agent


def _order_summary(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "status": order.status,
        "service_id": order.service_id,
        "agent_id": order.agent_id,
        "buyer_kind": order.buyer_kind,
        "buyer_agent_id": order.buyer_agent_id,
        "brief": order.brief,
        "quoted_price_usd": str(order.quoted_price_usd) if order.quoted_price_usd is not None else None,
        "revision_count": order.revision_count,
        "created_at": order.created_at.isoformat(),
    }


def record_transfer(*, transfer: OutgoingTransfer, action: str, data: dict[str, Any], **_: Any) -> None:
    """payments.signals.transfer_changed: a payout, refund or return of an order was sent or failed.
    The return of a transfer that named no order has no timeline to write to."""
    if transfer.order is not None:
        record(transfer.order, action, actor_kind="system", actor_id="system", data=data)
