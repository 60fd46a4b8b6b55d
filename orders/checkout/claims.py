"""A buyer's claim that a transfer pays an order. Claims of transfers that are not final yet hold
nothing (payments.verification explains the binding rule), so nobody can lock another buyer's
transfer out of its order; a task re-checks them (orders.checkout.recheck)."""

from __future__ import annotations

from django.db import transaction

from lib.errors import AtelierError, Conflict
from lib.principal import Principal
from lib.tasks import enqueue
from orders.checkout.applying import REJECTION_REASONS, apply_transfer, record_unapplied
from orders.checkout.recheck import recheck_payment
from orders.core import events
from orders.core.access import access_order
from orders.core.transitions import Role, check
from orders.models import Order
from payments import binding, verification
from payments.models import UnappliedReason
from payments.unapplied import unapplied_message, unapplied_to_dict


def order_pay(
    *, order_id: str, actor: Principal, tx_hash: str, chain: str, payer_signature: str = "", payer: str = ""
) -> Order:
    """The buyer says `tx_hash` pays the order (on Base: a Transfer log in it from the proven payer,
    the caller's wallet, or `payer`, or the signer of `payer_signature`). Checked on-chain as far as
    the chain can tell now (outside any transaction): final and bound, it pays the order
    (`applying.apply_transfer`); seen or not yet on chain, it waits as a claim that holds nothing, re-checked by a
    task; bound but unable to pay (underpaid, the order no longer payable), it is recorded and
    returned, and the answer says so."""
    tx_hash = verification.normalize_tx_hash(chain, tx_hash)
    order, _role = access_order(actor, order_id)
    if order.escrow_tx_hash == tx_hash:
        return order  # the same payment again: a no-op
    try:
        check(order, "pay", actor)  # a wrong role is refused before anything else
        late = False
    except Conflict:
        late = True  # said once the transfer is looked at: money bound to this order is returned
    proven = verification.proven_payer(
        chain=chain,
        reference=order.payment_reference,
        signature=payer_signature,
        caller_wallet=actor.wallet,
        caller_chain=actor.chain,
        payer=payer,
    )
    verification.ensure_hash_unused(order, chain=chain, tx_hash=tx_hash)
    order.payment_chain = chain  # the buyer may pay on either chain; `pay` records the one it was paid on
    if late:
        _refuse_late(order, actor, chain, tx_hash, proven)
    try:
        transfer = verification.payment_verify(order, chain=chain, tx_hash=tx_hash, payer=proven)
    except verification.Unapplicable as exc:
        record_unapplied(order, chain, exc.transfer, REJECTION_REASONS[exc.code])
        raise
    if transfer is None or not transfer.final:
        _claim(order, actor, chain, tx_hash, proven, seen=transfer is not None)
        return order
    return apply_transfer(order.id, actor, chain, transfer)


def _refuse_late(order: Order, actor: Principal, chain: str, tx_hash: str, payer: str | None) -> None:
    """A transfer submitted for an order that can no longer be paid: if it is final and bound to this
    order it is recorded and returned, then the 409 the table gives says so."""
    try:
        transfer = verification.payment_verify(order, chain=chain, tx_hash=tx_hash, payer=payer, final=True)
    except verification.Unapplicable as exc:
        transfer = exc.transfer
    except AtelierError:
        transfer = None
    unapplied = record_unapplied(order, chain, transfer, UnappliedReason.ORDER_NOT_PAYABLE) if transfer else None
    try:
        check(order, "pay", actor)
    except Conflict as exc:
        if unapplied is not None:
            exc.message += " " + unapplied_message(unapplied)
            exc.details["unapplied"] = unapplied_to_dict(unapplied)
        raise


def _claim(order: Order, actor: Principal, chain: str, tx_hash: str, payer: str | None, *, seen: bool) -> None:
    """`seen`: the chain shows the transaction (not final yet); unseen, the page keeps every way to pay."""
    with transaction.atomic():
        _claim_row, created = binding.payment_claim(order, chain=chain, tx_hash=tx_hash, payer=payer)
        if created:
            events.record(
                order,
                "payment_pending",
                actor_kind=Role.BUYER,
                actor_id=actor.id,
                data={"tx_hash": tx_hash, "chain": chain, "seen": seen},
            )
            enqueue(recheck_payment, order.id)
