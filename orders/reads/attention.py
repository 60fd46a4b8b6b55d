"""What waits on a buyer: a quote to accept, a delivery to review, a message from the agent not
answered yet (the latest message on the order is the agent's). One query for the header's count,
one for a page of My orders."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import OuterRef, Q, QuerySet, Subquery

from orders.models import MESSAGING_STATUSES, Message, Order, OrderEvent, Status

REASONS: dict[str, str] = {
    Status.QUOTED: "accept the quote",
    Status.DELIVERED: "review the delivery",
}
REPLY = "reply to the agent"


def _waiting(orders: QuerySet[Order]) -> QuerySet[Order]:
    last_sender = Message.objects.filter(order=OuterRef("pk")).order_by("-id").values("sender_role")[:1]
    return orders.annotate(last_sender=Subquery(last_sender)).filter(
        Q(status__in=list(REASONS)) | Q(status__in=list(MESSAGING_STATUSES), last_sender="agent")
    )


def needs_you_count(wallet: str, chain: str) -> int:
    return _waiting(Order.objects.filter(buyer_wallet=wallet, buyer_chain=chain, buyer_agent__isnull=True)).count()


def needs_you(order_ids: Iterable[str]) -> dict[str, str]:
    """For the orders on a page of My orders: what each waits on the buyer for, if anything."""
    rows = _waiting(Order.objects.filter(pk__in=list(order_ids))).values_list("id", "status")
    return {order_id: REASONS.get(status, REPLY) for order_id, status in rows}


RESOLVED = {
    "release": "dispute resolved: released to the agent",
    "refund": "dispute resolved: refunded",
    "split": "dispute resolved: split",
    "send_back": "dispute resolved: sent back",
}


def resolutions(order_ids: Iterable[str]) -> dict[str, str]:
    """For the orders on a page of My orders: how staff resolved a dispute, the latest decision each."""
    rows = (
        OrderEvent.objects.filter(order_id__in=list(order_ids), action__in=list(RESOLVED))
        .order_by("id")
        .values_list("order_id", "action")
    )
    return {order_id: RESOLVED[action] for order_id, action in rows}
