"""The double-entry ledger, in USDC base units. Debits are positive, credits negative; a journal
is posted whole (one bulk insert) and always sums to zero. Each (order, kind, account) posts once,
held by a unique constraint, so a retried settlement cannot move money twice on paper."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING

from django.conf import settings

from lib.ids import new_id
from payments.models import LedgerAccount as A
from payments.models import LedgerEntry, Payment
from payments.models import LedgerKind as K

if TYPE_CHECKING:  # for the type only: orders sits above payments and calls into it
    from orders.models import Order

USDC_DECIMALS = 6


def usd_to_base_units(amount: Decimal) -> int:
    return int((amount * 10**USDC_DECIMALS).to_integral_exact())


def base_units_to_usd(amount: int) -> Decimal:
    return (Decimal(amount) / Decimal(10) ** USDC_DECIMALS).quantize(Decimal("0.000001"))


def split_fee(gross: int) -> tuple[int, int]:
    """(agent share, platform fee): the agent's 90% rounded down to the base unit, the fee the rest."""
    agent_share = int((Decimal(gross) * (1 - Decimal(settings.PLATFORM_FEE_RATE))).to_integral_value(ROUND_DOWN))
    return agent_share, gross - agent_share


def post(
    order: Order | None, kind: K, chain: str, lines: list[tuple[A, int]], *, payment: Payment | None = None
) -> str:
    """Post one journal for an order, or (with `payment` and no order) for an unapplied transfer."""
    lines = [(account, amount) for account, amount in lines if amount]
    if sum(amount for _, amount in lines) != 0:
        raise ValueError(f"journal {kind} for {order or payment} does not balance: {lines}")
    journal = new_id("jrn")
    LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(
                journal=journal, order=order, payment=payment, kind=kind, account=account, chain=chain, amount=amount
            )
            for account, amount in lines
        ]
    )
    return journal


def escrow_in(order: Order, chain: str, amount: int) -> None:
    post(order, K.ESCROW_IN, chain, [(A.ESCROW_WALLET, amount), (A.ORDER_ESCROW, -amount)])


def release(order: Order, chain: str, gross: int) -> tuple[int, int]:
    """Move `gross` of the order's escrow to the agent (less the fee). Returns (agent share, fee)."""
    agent_share, fee = split_fee(gross)
    post(
        order, K.RELEASE, chain, [(A.ORDER_ESCROW, gross), (A.AGENT_PAYABLE, -agent_share), (A.PLATFORM_REVENUE, -fee)]
    )
    return agent_share, fee


def refund_due(order: Order, chain: str, amount: int, *, kind: K = K.REFUND_DUE) -> None:
    post(order, kind, chain, [(A.ORDER_ESCROW, amount), (A.BUYER_REFUNDABLE, -amount)])


def transfer_out(order: Order, *, payout: bool, chain: str, amount: int) -> None:
    """A payout or refund left the escrow wallet (posted when the chain confirms it)."""
    owed = A.AGENT_PAYABLE if payout else A.BUYER_REFUNDABLE
    post(order, K.PAYOUT_OUT if payout else K.REFUND_OUT, chain, [(owed, amount), (A.ESCROW_WALLET, -amount)])


def unapplied_in(payment: Payment) -> None:
    """A transfer arrived in escrow that pays no order: owed back to its sender."""
    amount = payment.amount_base_units
    post(
        None,
        K.UNAPPLIED_IN,
        payment.chain,
        [(A.ESCROW_WALLET, amount), (A.UNAPPLIED_REFUNDABLE, -amount)],
        payment=payment,
    )


def return_out(payment: Payment, amount: int) -> None:
    """That transfer went back to its sender (posted when the chain confirms the return)."""
    post(
        None,
        K.RETURN_OUT,
        payment.chain,
        [(A.UNAPPLIED_REFUNDABLE, amount), (A.ESCROW_WALLET, -amount)],
        payment=payment,
    )


def opening(chain: str, amount: int) -> None:
    """What the escrow wallet held before the ledger began (once per chain): an asset, and equity."""
    post(None, K.OPENING, chain, [(A.ESCROW_WALLET, amount), (A.OPENING_BALANCE, -amount)])


def price_base_units(order: Order) -> int:
    """What paying `order` takes, in USDC base units."""
    return usd_to_base_units(order.quoted_price_usd or Decimal(0))


def format_usdc(amount: int) -> str:
    """`12.5 USDC` from base units, for sentences."""
    return f"{Decimal(amount) / 10**6:.6f}".rstrip("0").rstrip(".") + " USDC"
