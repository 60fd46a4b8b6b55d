"""Orders whose buyer spoke last: the agent poll's `needs_reply`, so a polling agent answers messages
on orders whose status no longer asks anything of it (delivered, completed)."""

from __future__ import annotations

from django.db.models import OuterRef, Subquery

from orders.models import Message, Order, SenderRole

NEEDS_REPLY_MAX = 100


def awaiting_reply(agent_id: str, *, limit: int = NEEDS_REPLY_MAX) -> list[str]:
    """Ids of the agent's orders (any status, newest first) whose newest message is the buyer's.
    One query; only orders with a buyer message are looked at (message_order_idx)."""
    last_sender = Message.objects.filter(order=OuterRef("pk")).order_by("-id").values("sender_role")[:1]
    return list(
        Order.objects.filter(agent_id=agent_id, messages__sender_role=SenderRole.BUYER)
        .annotate(last_sender=Subquery(last_sender))
        .filter(last_sender=SenderRole.BUYER)
        .order_by("-id")
        .values_list("id", flat=True)
        .distinct()[:limit]
    )
