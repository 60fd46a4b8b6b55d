"""Re-checking the claims waiting on an order, by a task with backoff until each pays, can never pay,
or has waited a day."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.tasks import task
from django.utils import timezone

from lib.errors import AtelierError, Conflict
from lib.principal import SYSTEM
from lib.tasks import retry_later
from orders.checkout.applying import REJECTION_REASONS, apply_transfer, buyer_of, record_unapplied
from orders.core import events
from orders.core.transitions import Role
from orders.models import PAYABLE, Order
from payments import binding, verification
from payments.models import Payment

PAYMENT_RECHECK_DELAY = timedelta(seconds=15)
PAYMENT_RECHECK_CAP = timedelta(minutes=5)
# About a day of looking (backoff caps at 5 minutes, 2.5 on average with jitter): a transaction that
# is still not final by then is not coming.
PAYMENT_RECHECK_LIMIT = 24 * 60 // 2
# A hand-pasted hash the chain has never shown (a typo, another network) stops being checked after
# this; one the chain has seen waits up to the day above.
UNSEEN_CLAIM_TTL = timedelta(minutes=10)


@task()
def recheck_payment(order_id: str) -> str:
    outcome = payment_recheck(order_id)
    if outcome in ("pending", "chain unavailable"):
        claims = Payment.objects.filter(order_id=order_id, status="pending").order_by("-checks")
        checks = claims.values_list("checks", flat=True).first()
        if checks is not None and checks < PAYMENT_RECHECK_LIMIT:
            retry_later(
                recheck_payment, order_id, attempt=checks + 1, base=PAYMENT_RECHECK_DELAY, cap=PAYMENT_RECHECK_CAP
            )
    return outcome


def payment_recheck(order_id: str) -> str:
    """Look again at every claim waiting on the order: pay it, keep waiting, or drop it when it can
    never pay the order or has waited a day. Returns "paid", "pending", "chain unavailable",
    "rejected", "expired" or "nothing to check" (the first that applies, in that order)."""
    order = Order.objects.select_related("service", "agent", "buyer_agent").get(pk=order_id)
    claims = binding.pending_claims(order)
    if not claims:
        return "nothing to check"
    outcomes = {_recheck(order, claim) for claim in claims}
    for outcome in ("paid", "pending", "chain unavailable", "rejected", "expired"):
        if outcome in outcomes:
            return outcome
    return "nothing to check"


def _recheck(order: Order, claim: Payment) -> str:
    if binding.claim_expired(claim):
        _drop(order, claim, "payment_expired", code="claim_expired", error="Not final within a day; claim it again.")
        return "expired"
    order.payment_chain = claim.chain
    try:
        transfer = verification.payment_verify(
            order, chain=claim.chain, tx_hash=claim.tx_hash, payer=claim.payer or None
        )
    except verification.Unapplicable as exc:
        record_unapplied(order, claim.chain, exc.transfer, REJECTION_REASONS[exc.code])
        return "rejected"
    except AtelierError as exc:
        if exc.status == 503:
            return "chain unavailable"
        _drop(order, claim, "payment_rejected", code=exc.code, error=exc.message)
        return "rejected"
    if transfer is None and claim.created_at + UNSEEN_CLAIM_TTL <= timezone.now():
        minutes = int(UNSEEN_CLAIM_TTL.total_seconds() // 60)
        _drop(order, claim, "payment_expired", code="claim_not_found", error=f"Not on chain within {minutes} minutes.")
        return "expired"
    if transfer is None or not transfer.final:
        Payment.objects.filter(pk=claim.pk).update(checks=F("checks") + 1)
        return "pending"
    existing = verification.accounted(claim.chain, transfer.tx_hash, transfer.log_index)
    if existing is not None and existing.order_id != order.id:
        _drop(order, claim, "payment_rejected", code="tx_hash_used", error="This transaction pays another order.")
        return "rejected"
    try:
        paid = apply_transfer(order.id, buyer_of(order), claim.chain, transfer)
    except Conflict:
        return "rejected"
    return "paid" if paid.status not in PAYABLE else "pending"


def _drop(order: Order, claim: Payment, action: str, *, code: str, error: str) -> None:
    with transaction.atomic():
        binding.payment_release_claim(claim)
        events.record(
            order,
            action,
            actor_kind=Role.SYSTEM,
            actor_id=SYSTEM.id,
            data={"tx_hash": claim.tx_hash, "code": code, "error": error},
        )
