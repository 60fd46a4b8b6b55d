"""Solana Pay: the transfer is found by the order's reference key, while the order page is open
(`payment_look`, on each view and poll) and by a worker task for an hour after (a phone wallet
pays, the tab is closed). Each transfer found is claimed exactly as the buyer's own claim is."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.cache import cache
from django.tasks import task
from django.utils import timezone

from lib import wallets
from lib.errors import AtelierError
from lib.tasks import enqueue, retry_later
from orders.checkout.applying import buyer_of
from orders.checkout.claims import order_pay
from orders.checkout.recheck import payment_recheck
from orders.models import PAYABLE, Order
from payments import binding, chains, checkout, verification
from payments.chains.solana import SolanaClient

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
        if verification.accounted(wallets.SOLANA, signature) is not None:
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
    if binding.pending_claims(order) and payment_recheck(order.id) == "paid":
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
