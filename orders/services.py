"""Writes on an order beyond a single transition: paying, messages, reviews."""

from __future__ import annotations

from decimal import Decimal
from functools import partial

from django.db import IntegrityError, transaction
from django.db.models import F

from agents.models import Agent, Service
from atelier.auth import Principal
from atelier.lib.errors import AtelierError, Conflict, Forbidden, NotFound
from atelier.lib.tasks import enqueue
from orders import effects, events
from orders.models import MESSAGING_STATUSES, Message, Order, Review, SenderRole, Status
from orders.tasks import recheck_payment
from orders.transitions import Role, check, role_of, transition
from payments import services as payment_services
from payments.models import Payment


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
        event = events.record(
            order,
            "message",
            actor_kind=role,
            actor_id=actor.id,
            data={"message_id": message.id},
            webhook_data={"message": message.to_dict()},
        )
        transaction.on_commit(partial(effects.order_changed, event))
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
            event = events.record(order, "review", actor_kind=role, actor_id=actor.id, data={"rating": rating})
            transaction.on_commit(partial(effects.order_changed, event))
    except IntegrityError:
        raise Conflict("This order has already been reviewed.", code="already_reviewed") from None
    return review


def order_pay(*, order_id: str, actor: Principal, tx_hash: str, chain: str) -> Order:
    """The buyer submits an escrow transaction. Verified on-chain first (outside any transaction);
    then, in one transaction, the payment row, its escrow journal and the `pay` transition.
    Not final yet: the hash is held for this order, `payment_pending` shows, a task re-checks."""
    tx_hash = payment_services.normalize_tx_hash(chain, tx_hash)
    paid = Order.objects.filter(pk=order_id, escrow_tx_hash=tx_hash).first()
    if paid is not None and role_of(paid, actor) is not None:
        return paid  # the same payment again: a no-op
    order = _payable(order_id, actor, chain)
    payment_services.ensure_hash_unused(order, chain=chain, tx_hash=tx_hash)
    transfer = payment_services.payment_verify(order, chain=chain, tx_hash=tx_hash)
    if transfer is None:
        with transaction.atomic():
            claim = payment_services.payment_claim(order, chain=chain, tx_hash=tx_hash)
            if claim.checks == 0:
                event = events.record(
                    order,
                    "payment_pending",
                    actor_kind=Role.BUYER,
                    actor_id=actor.id,
                    data={"tx_hash": tx_hash, "chain": chain},
                )
                transaction.on_commit(partial(effects.order_changed, event))
                enqueue(recheck_payment, order.id)
        return order
    with transaction.atomic():
        payment = payment_services.payment_record(order, chain=chain, transfer=transfer)
        return transition(order.id, "pay", actor, payment=payment)


def _payable(order_id: str, actor: Principal, chain: str) -> Order:
    order = Order.objects.select_related("service", "agent", "buyer_agent").filter(pk=order_id).first()
    if order is None:
        raise NotFound("No such order.", code="order_not_found")
    check(order, "pay", actor)
    # The buyer may pay on either chain; the `pay` transition records the one it was paid on.
    order.payment_chain = chain
    return order


def payment_recheck(order_id: str) -> str:
    """Look again at an order's pending payment: pay it, keep waiting, or drop it if it can never pay."""
    order = Order.objects.select_related("service", "agent", "buyer_agent").get(pk=order_id)
    claim = payment_services.pending_payment(order)
    if claim is None or order.status not in (Status.QUOTED, Status.ACCEPTED):
        return "nothing to check"
    buyer = (
        Principal(agent=order.buyer_agent)
        if order.buyer_agent
        else Principal(wallet=order.buyer_wallet, chain=order.buyer_chain)
    )
    try:
        transfer = payment_services.payment_verify(order, chain=claim.chain, tx_hash=claim.tx_hash)
    except AtelierError as exc:
        if exc.status == 503:
            return "chain unavailable"
        with transaction.atomic():
            payment_services.payment_release_claim(order, chain=claim.chain, tx_hash=claim.tx_hash)
            event = events.record(
                order,
                "payment_rejected",
                actor_kind=Role.SYSTEM,
                actor_id="system",
                data={"tx_hash": claim.tx_hash, "code": exc.code, "error": exc.message},
            )
            transaction.on_commit(partial(effects.order_changed, event))
        return "rejected"
    if transfer is None:
        Payment.objects.filter(pk=claim.pk).update(checks=F("checks") + 1)
        return "pending"
    with transaction.atomic():
        payment = payment_services.payment_record(order, chain=claim.chain, transfer=transfer)
        transition(order.id, "pay", buyer, payment=payment)
    return "paid"
