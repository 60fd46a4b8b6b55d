"""Paying an order: a buyer's claim of a transfer, its re-checks, and the escrow scan.

Every path ends in the same place (`_apply`): with the order row locked, a final transfer bound to
the order pays it through the `pay` transition, or, when the order can no longer take it, is
recorded as unapplied and returned to its sender. Claims of transfers that are not final yet hold
nothing (payments.services explains the binding rule), so nobody can lock another buyer's transfer
out of its order, and every transfer that lands in escrow is accounted for once.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.tasks import task
from django.utils import timezone

from lib import wallets
from lib.errors import AtelierError, Conflict, NotFound
from lib.principal import SYSTEM, Principal
from lib.tasks import enqueue, retry_later
from orders.core import events
from orders.core.transitions import Role, check, role_of, transition
from orders.models import PAYABLE, Order, X402Intent
from payments import chains, checkout
from payments import services as payment_services
from payments.chains.solana import SolanaClient
from payments.models import Payment, PaymentStatus, ScanCursor, UnappliedReason

# How long a Base transfer nobody claimed waits for a claim with a proof before it is returned.
UNCLAIMED_GRACE = timedelta(hours=1)
REJECTION_REASONS = {"underpaid": UnappliedReason.UNDERPAID, "tx_too_old": UnappliedReason.TOO_OLD}


def buyer_of(order: Order) -> Principal:
    """The order's buyer, for payments the system applies on its behalf (re-checks, the scan)."""
    if order.buyer_agent_id is not None:
        return Principal(agent=order.buyer_agent)
    return Principal(wallet=order.buyer_wallet, chain=order.buyer_chain)


def order_pay(
    *, order_id: str, actor: Principal, tx_hash: str, chain: str, payer_signature: str = "", payer: str = ""
) -> Order:
    """The buyer says `tx_hash` pays the order (on Base: a Transfer log in it from the proven payer,
    the caller's wallet, or `payer`, or the signer of `payer_signature`). Checked on-chain as far as
    the chain can tell now (outside any transaction): final and bound, it pays the order
    (`_apply`); seen or not yet on chain, it waits as a claim that holds nothing, re-checked by a
    task; bound but unable to pay (underpaid, the order no longer payable), it is recorded and
    returned, and the answer says so."""
    tx_hash = payment_services.normalize_tx_hash(chain, tx_hash)
    order = Order.objects.select_related("service", "agent", "buyer_agent").filter(pk=order_id).first()
    if order is None or role_of(order, actor) is None:
        raise NotFound("No such order.", code="order_not_found")
    if order.escrow_tx_hash == tx_hash:
        return order  # the same payment again: a no-op
    try:
        check(order, "pay", actor)  # a wrong role is refused before anything else
        late = False
    except Conflict:
        late = True  # said once the transfer is looked at: money bound to this order is returned
    proven = payment_services.proven_payer(
        chain=chain,
        reference=order.payment_reference,
        signature=payer_signature,
        caller_wallet=actor.wallet,
        caller_chain=actor.chain,
        payer=payer,
    )
    payment_services.ensure_hash_unused(order, chain=chain, tx_hash=tx_hash)
    order.payment_chain = chain  # the buyer may pay on either chain; `pay` records the one it was paid on
    if late:
        _refuse_late(order, actor, chain, tx_hash, proven)
    try:
        transfer = payment_services.payment_verify(order, chain=chain, tx_hash=tx_hash, payer=proven)
    except payment_services.Unapplicable as exc:
        record_unapplied(order, chain, exc.transfer, REJECTION_REASONS[exc.code])
        raise
    if transfer is None or not transfer.final:
        _claim(order, actor, chain, tx_hash, proven, seen=transfer is not None)
        return order
    return _apply(order.id, actor, chain, transfer)


def _refuse_late(order: Order, actor: Principal, chain: str, tx_hash: str, payer: str | None) -> None:
    """A transfer submitted for an order that can no longer be paid: if it is final and bound to this
    order it is recorded and returned, then the 409 the table gives says so."""
    try:
        transfer = payment_services.payment_verify(order, chain=chain, tx_hash=tx_hash, payer=payer, final=True)
    except payment_services.Unapplicable as exc:
        transfer = exc.transfer
    except AtelierError:
        transfer = None
    unapplied = record_unapplied(order, chain, transfer, UnappliedReason.ORDER_NOT_PAYABLE) if transfer else None
    try:
        check(order, "pay", actor)
    except Conflict as exc:
        if unapplied is not None:
            exc.message += " " + payment_services.unapplied_message(unapplied)
            exc.details["unapplied"] = payment_services.unapplied_to_dict(unapplied)
        raise


def _claim(order: Order, actor: Principal, chain: str, tx_hash: str, payer: str | None, *, seen: bool) -> None:
    """`seen`: the chain shows the transaction (not final yet); unseen, the page keeps every way to pay."""
    with transaction.atomic():
        _claim_row, created = payment_services.payment_claim(order, chain=chain, tx_hash=tx_hash, payer=payer)
        if created:
            events.record(
                order,
                "payment_pending",
                actor_kind=Role.BUYER,
                actor_id=actor.id,
                data={"tx_hash": tx_hash, "chain": chain, "seen": seen},
            )
            enqueue(recheck_payment, order.id)


def _apply(order_id: str, actor: Principal, chain: str, transfer: chains.VerifiedTransfer) -> Order:
    """Pay the order with a final transfer bound to it. The order row is locked first, so concurrent
    submits of one transfer queue here and all but the first find it paid: the documented no-op."""
    with transaction.atomic():
        order = Order.objects.select_for_update(of=("self",)).select_related("service").get(pk=order_id)
        if order.escrow_tx_hash == transfer.tx_hash:
            return order
        if order.status in PAYABLE:
            payment = payment_services.payment_record(order, chain=chain, transfer=transfer)
            return transition(order.id, "pay", actor, payment=payment)
        unapplied = record_unapplied(order, chain, transfer, UnappliedReason.ORDER_NOT_PAYABLE)
    raise Conflict(
        f"Cannot pay an order that is {order.status}. {payment_services.unapplied_message(unapplied)}",
        code="invalid_transition",
        details={"status": order.status, "unapplied": payment_services.unapplied_to_dict(unapplied)},
    )


def record_unapplied(
    order: Order | None, chain: str, transfer: chains.VerifiedTransfer, reason: str, *, due: int | None = None
) -> Payment:
    """Account for a final transfer that pays nothing, queue its return, and tell the order it named."""
    if due is None:
        due = payment_services.price_base_units(order) if order is not None else 0
    with transaction.atomic():
        payment, created = payment_services.unapplied_record(
            order=order, chain=chain, transfer=transfer, reason=reason, due=due
        )
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


# --- re-checks ---------------------------------------------------------------------------------

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
    claims = payment_services.pending_claims(order)
    if not claims:
        return "nothing to check"
    outcomes = {_recheck(order, claim) for claim in claims}
    for outcome in ("paid", "pending", "chain unavailable", "rejected", "expired"):
        if outcome in outcomes:
            return outcome
    return "nothing to check"


def _recheck(order: Order, claim: Payment) -> str:
    if payment_services.claim_expired(claim):
        _drop(order, claim, "payment_expired", code="claim_expired", error="Not final within a day; claim it again.")
        return "expired"
    order.payment_chain = claim.chain
    try:
        transfer = payment_services.payment_verify(
            order, chain=claim.chain, tx_hash=claim.tx_hash, payer=claim.payer or None
        )
    except payment_services.Unapplicable as exc:
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
    existing = payment_services.accounted(claim.chain, transfer.tx_hash, transfer.log_index)
    if existing is not None and existing.order_id != order.id:
        _drop(order, claim, "payment_rejected", code="tx_hash_used", error="This transaction pays another order.")
        return "rejected"
    try:
        paid = _apply(order.id, buyer_of(order), claim.chain, transfer)
    except Conflict:
        return "rejected"
    return "paid" if paid.status not in PAYABLE else "pending"


def _drop(order: Order, claim: Payment, action: str, *, code: str, error: str) -> None:
    with transaction.atomic():
        payment_services.payment_release_claim(claim)
        events.record(
            order,
            action,
            actor_kind=Role.SYSTEM,
            actor_id=SYSTEM.id,
            data={"tx_hash": claim.tx_hash, "code": code, "error": error},
        )


# --- the escrow scan ---------------------------------------------------------------------------


def escrow_scan(chain: str) -> list[chains.InboundTransfer]:
    """Decide every final transfer into escrow since the chain's cursor: apply it to the order its
    memo names, or record it as unapplied and return it. Returns the transfers still undecided (a
    Base transfer within its grace for a claim, an x402 payment whose offer is still open), which
    are in escrow but not in the ledger yet. Network I/O; each decision is its own transaction."""
    client = chains.client(chain)
    cursor, _ = ScanCursor.objects.get_or_create(chain=chain)
    found, end = client.inbound_transfers(cursor.position)
    position, contiguous = cursor.position, True
    undecided = []
    for item in found:
        if _decide(chain, item):
            if contiguous:
                position = item.position
        else:
            contiguous = False
            undecided.append(item)
    if contiguous:
        position = end
    if position != cursor.position:
        cursor.position = position
        cursor.save(update_fields=["position", "updated_at"])
    return undecided


def _decide(chain: str, item: chains.InboundTransfer) -> bool:
    if item.amount <= 0 or payment_services.accounted(chain, item.tx_hash, item.log_index) is not None:
        return True
    transfer = item.verified()
    if chain == wallets.SOLANA:
        return _decide_by_memo(chain, item, transfer)
    # Base carries no reference: a claim whose proven payer is the log's `from` pays it (whoever
    # sent the transaction); unclaimed, it goes back to that `from`.
    for claim in Payment.objects.filter(chain=chain, tx_hash=item.tx_hash, status=PaymentStatus.PENDING):
        if claim.order_id is not None and claim.payer == item.sender:
            payment_recheck(claim.order_id)
    if payment_services.accounted(chain, item.tx_hash, item.log_index) is not None:
        return True
    if timezone.now().timestamp() < item.block_time + _grace().total_seconds():
        return False
    record_unapplied(None, chain, transfer, UnappliedReason.UNCLAIMED)
    return True


def _decide_by_memo(chain: str, item: chains.InboundTransfer, transfer: chains.VerifiedTransfer) -> bool:
    if len(item.memos) != 1:
        record_unapplied(None, chain, transfer, UnappliedReason.NO_REFERENCE)
        return True
    reference = item.memos[0]
    order = Order.objects.select_related("service", "agent", "buyer_agent").filter(payment_reference=reference).first()
    if order is None:
        intent = X402Intent.objects.filter(pk=reference, order__isnull=True).first()
        if intent is not None:
            due = payment_services.price_base_units(Order(quoted_price_usd=intent.price_usd))
            if timezone.now() < intent.expires_at + _grace():
                return False  # the payer's x402 retry may still come for it
            record_unapplied(None, chain, transfer, UnappliedReason.INTENT_EXPIRED, due=due)
            return True
        record_unapplied(None, chain, transfer, UnappliedReason.UNKNOWN_REFERENCE)
        return True
    slack = payment_services.PAYMENT_CLOCK_SLACK_SECONDS
    if item.block_time < order.created_at.timestamp() - slack:
        record_unapplied(order, chain, transfer, UnappliedReason.TOO_OLD)
    elif order.status not in PAYABLE:
        record_unapplied(order, chain, transfer, UnappliedReason.ORDER_NOT_PAYABLE)
    elif item.amount < payment_services.price_base_units(order):
        record_unapplied(order, chain, transfer, UnappliedReason.UNDERPAID)
    else:
        # A Conflict: recorded as unapplied, or accounted for by a racing request. Decided either way.
        with contextlib.suppress(Conflict):
            _apply(order.id, buyer_of(order), chain, transfer)
    return True


def _grace() -> timedelta:
    return timedelta(seconds=getattr(settings, "UNCLAIMED_TRANSFER_GRACE_SECONDS", UNCLAIMED_GRACE.total_seconds()))


# --- Solana Pay: found by the order's reference ----------------------------------------------------

# A page polls every few seconds; the chain is asked about one order at most this often.
REFERENCE_CHECK_SECONDS = 2
REFERENCE_WATCH_DELAY = timedelta(seconds=3)
REFERENCE_WATCH_CAP = timedelta(seconds=60)
# How long the worker looks for a Solana Pay transfer after the page was last open.
REFERENCE_WATCH_FOR = timedelta(hours=1)
# A watch marks itself for longer than its longest wait, so a page view does not start a second one.
_WATCH_MARK_SECONDS = int(REFERENCE_WATCH_CAP.total_seconds()) * 2


def solana_pay_check(order: Order, *, throttle: bool = True) -> str:
    """Look on Solana for transfers naming the order's Solana Pay reference and claim each one for
    the order exactly as `order_pay` does (the memo binds it; a transfer that is not final waits as
    a claim). Returns "paid", "pending" (a claim waits), "nothing found", "not payable",
    "checked recently" or "chain unavailable". Network I/O: call outside transactions."""
    if order.status not in PAYABLE or order.payment_chain != wallets.SOLANA:
        return "not payable"
    if throttle and not cache.add(f"solana-pay-check:{order.id}", 1, timeout=REFERENCE_CHECK_SECONDS):
        return "checked recently"
    try:
        client = SolanaClient.from_settings()
        signatures = client.signatures_for(checkout.reference_key(order.payment_reference))
    except chains.ChainError:
        return "chain unavailable"
    outcome = "nothing found"
    for signature in reversed(signatures):  # oldest first
        if payment_services.accounted(wallets.SOLANA, signature) is not None:
            continue
        try:
            paid = order_pay(order_id=order.id, actor=buyer_of(order), tx_hash=signature, chain=wallets.SOLANA)
        except AtelierError:
            continue  # not this order's payment (the escrow scan accounts for it), or the chain is away
        if paid.status not in PAYABLE:
            return "paid"
        outcome = "pending"
    return outcome


def payment_look_due(order: Order) -> bool:
    """Whether `payment_look` would look now: a payable order not looked at recently. One cache read."""
    return order.status in PAYABLE and not cache.get(_look_key(order.id))


def _look_key(order_id: str) -> str:
    return f"payment-look:{order_id}"


def payment_look(order: Order) -> str:
    """What an open order page does on each view and poll (at most every REFERENCE_CHECK_SECONDS per
    order): re-check the claims waiting on it (a Base transfer gaining its confirmations), then look
    for a Solana Pay transfer by the order's reference. Returns what the last look found."""
    if order.status not in PAYABLE:
        return "not payable"
    # A read first: the throttled case (most polls) costs one cache read. Two looks racing past it
    # are harmless, order_pay is safe to run twice.
    key = _look_key(order.id)
    if cache.get(key):
        return "checked recently"
    cache.set(key, 1, timeout=REFERENCE_CHECK_SECONDS)
    solana_pay_watch_start(order)
    if payment_services.pending_claims(order) and payment_recheck(order.id) == "paid":
        return "paid"
    return solana_pay_check(order, throttle=False)


def solana_pay_watch_start(order: Order) -> None:
    """Have the worker look for the order's Solana Pay transfer while nobody has the page open
    (a phone wallet pays, the tab is closed). One watch per order at a time."""
    if order.status not in PAYABLE or order.payment_chain != wallets.SOLANA:
        return
    key = f"solana-pay-watch:{order.id}"
    if not cache.get(key) and cache.add(key, 1, timeout=_WATCH_MARK_SECONDS):
        enqueue(watch_solana_pay, order.id, timezone.now().isoformat())


@task()
def watch_solana_pay(order_id: str, started: str, attempt: int = 1) -> str:
    order = Order.objects.select_related("service", "agent", "buyer_agent").filter(pk=order_id).first()
    if order is None:
        return "not payable"
    outcome = solana_pay_check(order, throttle=False)
    if outcome in ("paid", "not payable"):
        cache.delete(f"solana-pay-watch:{order_id}")
        return outcome
    since = timezone.now() - datetime.fromisoformat(started)
    if since < REFERENCE_WATCH_FOR:
        cache.set(f"solana-pay-watch:{order_id}", 1, timeout=_WATCH_MARK_SECONDS)
        retry_later(
            watch_solana_pay,
            order_id,
            started,
            attempt=attempt + 1,
            base=REFERENCE_WATCH_DELAY,
            cap=REFERENCE_WATCH_CAP,
        )
    return outcome
