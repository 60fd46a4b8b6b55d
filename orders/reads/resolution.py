"""The resolution of a dispute as the buyer, the agent and the API see it: staff's latest decision."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Q

from orders.models import Order, OrderEvent, Role

if TYPE_CHECKING:  # the shapes read DECISIONS at run time
    from orders.reads.shapes import Resolution

RELEASE, REFUND, SPLIT, SEND_BACK = "release", "refund", "split", "send_back"
DECISIONS = (RELEASE, REFUND, SPLIT, SEND_BACK)

# The events that make and unmake a resolution: the buyer's dispute, and staff's decisions after it.
DECIDING = Q(action="dispute") | Q(action__in=DECISIONS, actor_kind=Role.STAFF)


def resolution_to_dict(order: Order) -> Resolution | None:
    """Staff's latest decision on this order's dispute, or None (never disputed, not decided yet, or
    disputed again since). Reads `decision_events` when attached (`orders.reads.details`)."""
    events: list[OrderEvent] | None = getattr(order, "decision_events", None)
    if events is None:
        events = list(order.events.filter(DECIDING).order_by("id"))
    last = events[-1] if events else None
    if last is None or last.action not in DECISIONS:
        return None
    data = last.data or {}
    settlement = data.get("settlement") or {}
    return {
        "decision": last.action,
        "note": data.get("note") or None,
        "agent_amount_usd": data.get("agent_amount_usd") if last.action == SPLIT else None,
        "agent_payout_base_units": settlement.get("agent_share", 0),
        "refund_base_units": settlement.get("refund", 0),
        "platform_fee_base_units": settlement.get("fee", 0),
        "decided_at": last.created_at.isoformat(),
    }
