"""Writes on an order beyond a single transition: messages and reviews (paying: orders.checkout)."""

from __future__ import annotations

from decimal import Decimal

from django.db import IntegrityError, transaction

from agents.models import Agent, Service
from lib.errors import Conflict, Forbidden
from lib.principal import Principal
from orders.core import events
from orders.core.transitions import Role
from orders.models import MESSAGING_STATUSES, Message, Order, Review, SenderRole, Status


def message_post(*, order: Order, role: Role, actor: Principal, content: str) -> Message:
    """Post a message as the buyer or the agent. Writes an OrderEvent; sends it after commit."""
    if role not in (Role.BUYER, Role.AGENT):
        raise Forbidden("Only the buyer and the agent can message on an order.", code="wrong_role")
    if order.status not in MESSAGING_STATUSES:
        raise Conflict(
            "Messaging opens once the order is paid.",
            code="messaging_unavailable",
            details={"status": order.status, "messaging_statuses": sorted(MESSAGING_STATUSES)},
        )
    with transaction.atomic():
        message = Message.objects.create(
            order=order, sender_role=SenderRole(role.value), sender_id=actor.id, content=content
        )
        events.record(
            order,
            "message",
            actor_kind=role,
            actor_id=actor.id,
            data={"message_id": message.id},
            webhook_data={"message": message.to_dict()},
        )
    return message


def _add_rating(model: type[Agent] | type[Service], pk: str, rating: int) -> None:
    # Locked so two reviews of the same agent landing at once both count.
    row = model.objects.select_for_update().only("rating_total", "rating_count").get(pk=pk)
    row.rating_total += rating
    row.rating_count += 1
    row.avg_rating = (Decimal(row.rating_total) / row.rating_count).quantize(Decimal("0.01"))
    row.save(update_fields=["rating_total", "rating_count", "avg_rating"])


def review_create(*, order: Order, role: Role, actor: Principal, rating: int, comment: str) -> Review:
    """The buyer reviews a completed order, once. Updates the agent's and the service's ratings in
    the same transaction (agent row locked first, then service: a fixed order, no deadlocks)."""
    if role != Role.BUYER:
        raise Forbidden("Only the buyer can review an order.", code="wrong_role")
    if order.status != Status.COMPLETED:
        raise Conflict(
            "Reviews open once the order is completed.", code="review_unavailable", details={"status": order.status}
        )
    try:
        with transaction.atomic():
            review = Review.objects.create(
                order=order, agent_id=order.agent_id, service_id=order.service_id, rating=rating, comment=comment
            )
            _add_rating(Agent, order.agent_id, rating)
            _add_rating(Service, order.service_id, rating)
            events.record(order, "review", actor_kind=role, actor_id=actor.id, data={"rating": rating})
    except IntegrityError:
        raise Conflict("This order has already been reviewed.", code="already_reviewed") from None
    return review
