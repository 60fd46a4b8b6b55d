"""The escrow scan: every final transfer into escrow since the chain's cursor is decided once,
applied to the order its memo names (Solana) or its proven payer claimed (Base), or recorded as
unapplied and returned."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from lib import wallets
from lib.errors import Conflict
from orders.checkout.applying import apply_transfer, buyer_of, record_unapplied
from orders.checkout.recheck import payment_recheck
from orders.models import PAYABLE, Order, X402Intent
from payments import chains, ledger, verification
from payments.models import Payment, PaymentStatus, ScanCursor, UnappliedReason

# How long a Base transfer nobody claimed waits for a claim with a proof before it is returned.
UNCLAIMED_GRACE = timedelta(hours=1)


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
    if item.amount <= 0 or verification.accounted(chain, item.tx_hash, item.log_index) is not None:
        return True
    transfer = item.verified()
    if chain == wallets.SOLANA:
        return _decide_by_memo(chain, item, transfer)
    # Base carries no reference: a claim whose proven payer is the log's `from` pays it (whoever
    # sent the transaction); unclaimed, it goes back to that `from`.
    for claim in Payment.objects.filter(chain=chain, tx_hash=item.tx_hash, status=PaymentStatus.PENDING):
        if claim.order_id is not None and claim.payer == item.sender:
            payment_recheck(claim.order_id)
    if verification.accounted(chain, item.tx_hash, item.log_index) is not None:
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
            due = ledger.price_base_units(Order(quoted_price_usd=intent.price_usd))
            if timezone.now() < intent.expires_at + _grace():
                return False  # the payer's x402 retry may still come for it
            record_unapplied(None, chain, transfer, UnappliedReason.INTENT_EXPIRED, due=due)
            return True
        record_unapplied(None, chain, transfer, UnappliedReason.UNKNOWN_REFERENCE)
        return True
    slack = verification.PAYMENT_CLOCK_SLACK_SECONDS
    if item.block_time < order.created_at.timestamp() - slack:
        record_unapplied(order, chain, transfer, UnappliedReason.TOO_OLD)
    elif order.status not in PAYABLE:
        record_unapplied(order, chain, transfer, UnappliedReason.ORDER_NOT_PAYABLE)
    elif item.amount < ledger.price_base_units(order):
        record_unapplied(order, chain, transfer, UnappliedReason.UNDERPAID)
    else:
        # A Conflict: recorded as unapplied, or accounted for by a racing request. Decided either way.
        with contextlib.suppress(Conflict):
            apply_transfer(order.id, buyer_of(order), chain, transfer)
    return True


def _grace() -> timedelta:
    return timedelta(seconds=getattr(settings, "UNCLAIMED_TRANSFER_GRACE_SECONDS", UNCLAIMED_GRACE.total_seconds()))
