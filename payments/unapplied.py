"""What an unapplied transfer (final, in escrow, paying nothing) says to the buyer: why, and where
its money goes."""

from __future__ import annotations

from payments.ledger import format_usdc
from payments.models import Payment, UnappliedReason
from payments.settlement import UNSIGNED_HOLD
from payments.shapes import UnappliedTransfer

# Below this an unapplied transfer is recorded but not returned by itself: returning dust costs the
# escrow more in fees than it sends, which a griefer could repeat at will. Staff can return it.
MIN_AUTO_RETURN_BASE_UNITS = 10_000  # 0.01 USDC


UNAPPLIED_WHY = {
    UnappliedReason.UNDERPAID: "it was less than the price, and one transaction must carry the whole price",
    UnappliedReason.ORDER_NOT_PAYABLE: "the order could no longer be paid (cancelled, or paid by another transaction)",
    UnappliedReason.NO_REFERENCE: "it carried no payment reference (memo), so it names no order",
    UnappliedReason.UNKNOWN_REFERENCE: "its payment reference (memo) names no order",
    UnappliedReason.INTENT_EXPIRED: "it landed after the x402 payment requirements had expired",
    UnappliedReason.UNCLAIMED: "no order claimed it with a proof from the sending wallet in time",
    UnappliedReason.TOO_OLD: "it is older than the order it names",
}


def unapplied_message(payment: Payment) -> str:
    text = f"{format_usdc(payment.amount_base_units)} arrived in escrow ({payment.tx_hash}) but paid nothing: "
    text += UNAPPLIED_WHY.get(UnappliedReason(payment.reason), payment.reason)
    if payment.reason == UnappliedReason.UNDERPAID and payment.due_base_units:
        missing = payment.due_base_units - payment.amount_base_units
        text += f" ({format_usdc(payment.due_base_units)} due, {format_usdc(missing)} missing)"
    if payment.amount_base_units < MIN_AUTO_RETURN_BASE_UNITS:
        return text + ". It is too small to return by itself; support can return it on request."
    if not payment.payer_signed:
        return text + f". It is held: {UNSIGNED_HOLD}."
    returned = getattr(payment, "return_transfer", None)
    if returned is not None and returned.status == "held":
        return text + f". It is held until {payment.payer} has a USDC account to receive it."
    return text + f". It is returned to {payment.payer}."


def unapplied_to_dict(payment: Payment) -> UnappliedTransfer:
    returned = getattr(payment, "return_transfer", None)
    return {
        "tx_hash": payment.tx_hash,
        "chain": payment.chain,
        "amount_base_units": payment.amount_base_units,
        "reason": payment.reason,
        "due_base_units": payment.due_base_units or None,
        "missing_base_units": (payment.due_base_units - payment.amount_base_units)
        if payment.reason == UnappliedReason.UNDERPAID and payment.due_base_units
        else None,
        "message": unapplied_message(payment),
        "why": UNAPPLIED_WHY.get(UnappliedReason(payment.reason), payment.reason),
        "returned_to": payment.payer if payment.payer_signed else "",  # held for staff: nobody yet
        "return_status": returned.status if returned is not None else None,
        "return_tx_hash": (returned.tx_hash or None) if returned is not None else None,
        "return_held_reason": (returned.held_reason or None) if returned is not None else None,
    }
