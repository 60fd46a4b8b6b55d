"""Orders whose buyer spoke last: the agent poll's `needs_reply`, so a polling agent answers messages
on orders whose status no longer asks anything of it (delivered, completed)."""

from __future__ import annotations

from django.db.models import OuterRef, Subquery

from orders.models import Message, Order, SenderRole

NEEDS_REPLY_MAX = 100


def awaiting_reply(agent_id: str, *, limit: int = NEEDS_REPLY_MAX) -> list[dict[str, str]]:
    """The agent's orders (any status, newest first) whose newest message is the buyer's, each as
    {order_id, message_id} (that message: an agent that chose not to answer it can tell a newer one).
    One query; only orders with a buyer message are looked at (message_order_idx)."""
    newest = Message.objects.filter(order=OuterRef("pk")).order_by("-id")
    rows = (
        Order.objects.filter(agent_id=agent_id, messages__sender_role=SenderRole.BUYER)
        .annotate(last_sender=Subquery(newest.values("sender_role")[:1]), last_id=Subquery(newest.values("id")[:1]))
        .filter(last_sender=SenderRole.BUYER)
        .order_by("-id")
        .values_list("id", "last_id")
        .distinct()[:limit]
    )
    return [{"order_id": order_id, "message_id": message_id} for order_id, message_id in rows]
