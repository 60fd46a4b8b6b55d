"""Binding a verified transfer to its order in the books (payments.verification checks it first):
a buyer's claim of a transfer not final yet, the verified payment, or, when it pays nothing, the
unapplied row whose return is queued with it. Inside the caller's transaction."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.utils import timezone

from lib.errors import Conflict
from payments import chains, ledger
from payments.models import ACCOUNTED, Payment, PaymentStatus
from payments.settlement import payment_return
from payments.unapplied import MIN_AUTO_RETURN_BASE_UNITS
from payments.verification import accounted

if TYPE_CHECKING:  # for the type only: orders sits above payments and calls into it
    from orders.models import Order

# A claim of a transfer not final yet is looked at for a day, then dropped; an order waits on a few at most.
PAYMENT_CLAIM_TTL = timedelta(hours=24)
MAX_PENDING_CLAIMS = 5


def payment_claim(order: Order, *, chain: str, tx_hash: str, payer: str | None) -> tuple[Payment, bool]:
    """Note that the buyer says `tx_hash` pays `order`, while it is not final. Holds nothing: other
    orders' claims of the same hash may wait beside it. Returns (claim, created)."""
    existing = order.payments.filter(chain=chain, tx_hash=tx_hash, status=PaymentStatus.PENDING).first()
    if existing is not None:
        return existing, False
    if order.payments.filter(status=PaymentStatus.PENDING).count() >= MAX_PENDING_CLAIMS:
        raise Conflict(
            f"This order already waits on {MAX_PENDING_CLAIMS} transactions; wait for them to be final.",
            code="too_many_pending_payments",
        )
    try:
        with transaction.atomic():
            claim = Payment.objects.create(
                order=order, chain=chain, tx_hash=tx_hash, status=PaymentStatus.PENDING, payer=payer or ""
            )
    except IntegrityError:  # the same claim, racing: the other request made it
        return order.payments.get(chain=chain, tx_hash=tx_hash, status=PaymentStatus.PENDING), False
    return claim, True


def pending_claims(order: Order) -> list[Payment]:
    return list(order.payments.filter(status=PaymentStatus.PENDING).order_by("created_at"))


def claim_expired(claim: Payment) -> bool:
    return claim.created_at + PAYMENT_CLAIM_TTL <= timezone.now()


def payment_release_claim(claim: Payment) -> None:
    """A claim that can never pay its order (or waited too long): drop it."""
    Payment.objects.filter(pk=claim.pk, status=PaymentStatus.PENDING).delete()


def payment_record(order: Order, *, chain: str, transfer: chains.VerifiedTransfer) -> Payment:
    """Inside the caller's transaction, with the order row locked: the verified payment row (this
    order's claim, if it made one) and its escrow journal. 409 if the transfer is accounted for
    already (the unique constraint decides races between orders)."""
    fields = {
        "status": PaymentStatus.VERIFIED,
        "log_index": transfer.log_index,
        "payer": transfer.payer,
        "amount_base_units": transfer.amount,
        "verified_at": timezone.now(),
        **_paying_account(transfer),
    }
    claim = order.payments.filter(chain=chain, tx_hash=transfer.tx_hash, status=PaymentStatus.PENDING).first()
    try:
        with transaction.atomic():
            if claim is None:
                payment = Payment.objects.create(order=order, chain=chain, tx_hash=transfer.tx_hash, **fields)
            else:
                payment = claim
                for name, value in fields.items():
                    setattr(payment, name, value)
                payment.save(update_fields=list(fields))
    except IntegrityError:
        raise Conflict("This transaction already pays another order.", code="tx_hash_used") from None
    ledger.escrow_in(order, chain, transfer.amount)
    return payment


def unapplied_record(
    *, order: Order | None, chain: str, transfer: chains.VerifiedTransfer, reason: str, due: int = 0
) -> tuple[Payment, bool]:
    """Inside the caller's transaction: a final transfer in escrow that pays no order is accounted
    for (a row, its journal) and its return to the sender is queued with it. Idempotent: a transfer
    accounted for already returns its row unchanged. Returns (row, created).

    Dust (below the automatic-return minimum) is accounted for but attached to no order: anyone can
    read an order's memo and send 0.000001 USDC with it, and such rows would pile onto the victim's
    order naming the stranger's wallet."""
    existing = accounted(chain, transfer.tx_hash, transfer.log_index)
    if existing is not None:
        return existing, False
    if transfer.amount < MIN_AUTO_RETURN_BASE_UNITS:
        order = None
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                order=order,
                chain=chain,
                tx_hash=transfer.tx_hash,
                log_index=transfer.log_index,
                status=PaymentStatus.UNAPPLIED,
                reason=reason,
                payer=transfer.payer,
                amount_base_units=transfer.amount,
                due_base_units=due,
                verified_at=timezone.now(),
                **_paying_account(transfer),
            )
    except IntegrityError:  # accounted for by a racing request meanwhile
        racing = Payment.objects.filter(chain=chain, tx_hash=transfer.tx_hash, log_index=transfer.log_index)
        return racing.get(status__in=ACCOUNTED), False
    if order is not None:
        order.payments.filter(chain=chain, tx_hash=transfer.tx_hash, status=PaymentStatus.PENDING).delete()
    ledger.unapplied_in(payment)
    if payment.amount_base_units >= MIN_AUTO_RETURN_BASE_UNITS:
        payment_return(payment)
    return payment, True


def _paying_account(transfer: chains.VerifiedTransfer) -> dict[str, object]:
    return {
        "source_account": transfer.source_account,
        "payer_signed": transfer.payer_signed,
        "signers": list(transfer.signers),
    }
