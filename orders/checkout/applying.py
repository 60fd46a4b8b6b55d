"""Where every way of paying an order ends: with the order row locked, a final transfer bound to the
order pays it through the `pay` transition, or, when the order can no longer take it, is recorded
as unapplied and returned to its sender. Claims (orders.checkout.claims), their re-checks
(recheck), the escrow scan (escrow_scan) and the Solana Pay watcher (solana_pay_watch) all come here,
so every transfer that lands in escrow is accounted for once.
"""

from __future__ import annotations

from django.db import transaction

from lib.errors import Conflict
from lib.principal import SYSTEM, Principal
from orders.core import events
from orders.core.transitions import Role, transition
from orders.models import PAYABLE, Order
from payments import binding, chains, ledger
from payments.models import Payment, UnappliedReason
from payments.unapplied import unapplied_message, unapplied_to_dict

REJECTION_REASONS = {"underpaid": UnappliedReason.UNDERPAID, "tx_too_old": UnappliedReason.TOO_OLD}


def buyer_of(order: Order) -> Principal:
    """The order's buyer, for payments the system applies on its behalf (re-checks, the scan)."""
    if order.buyer_agent_id is not None:
        return Principal(agent=order.buyer_agent)
    return Principal(wallet=order.buyer_wallet, chain=order.buyer_chain)


def apply_transfer(order_id: str, actor: Principal, chain: str, transfer: chains.VerifiedTransfer) -> Order:
    """Pay the order with a final transfer bound to it. The order row is locked first, so concurrent
    submits of one transfer queue here and all but the first find it paid: the documented no-op."""
    with transaction.atomic():
        order = Order.objects.select_for_update(of=("self",)).select_related("service").get(pk=order_id)
        if order.escrow_tx_hash == transfer.tx_hash:
            return order
        if order.status in PAYABLE:
            payment = binding.payment_record(order, chain=chain, transfer=transfer)
            return transition(order.id, "pay", actor, payment=payment)
        unapplied = record_unapplied(order, chain, transfer, UnappliedReason.ORDER_NOT_PAYABLE)
    raise Conflict(
        f"Cannot pay an order that is {order.status}. {unapplied_message(unapplied)}",
        code="invalid_transition",
        details={"status": order.status, "unapplied": unapplied_to_dict(unapplied)},
    )


def record_unapplied(
    order: Order | None, chain: str, transfer: chains.VerifiedTransfer, reason: str, *, due: int | None = None
) -> Payment:
    """Account for a final transfer that pays nothing, queue its return, and tell the order it named."""
    if due is None:
        due = ledger.price_base_units(order) if order is not None else 0
    with transaction.atomic():
        payment, created = binding.unapplied_record(order=order, chain=chain, transfer=transfer, reason=reason, due=due)
        if created and order is not None and payment.order_id is not None:  # dust names no order
            events.record(
                order,
                "payment_unapplied",
                actor_kind=Role.SYSTEM,
                actor_id=SYSTEM.id,
                data={
                    "tx_hash": transfer.tx_hash,
                    "chain": chain,
                    "amount_base_units": transfer.amount,
                    "reason": reason,
                    # Held for staff when the paying account's owner did not sign: it goes to nobody yet.
                    "returned_to": transfer.payer if transfer.payer_signed else "",
                },
            )
    return payment
