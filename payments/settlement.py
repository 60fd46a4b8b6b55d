"""Money leaving escrow: settling an order (called by orders.core.transitions inside the transition's
transaction: payout, fee, refund, from one plan the admin's preview shows too) and returning
transfers that paid nothing to their sender."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lib import wallets
from lib.tasks import enqueue
from payments import ledger
from payments.ledger import price_base_units
from payments.models import LedgerKind, OutgoingTransfer, Payment, PaymentStatus, TransferKind
from payments.tasks import hold, send_transfer

if TYPE_CHECKING:  # for the type only: orders sits above payments and calls into it
    from orders.models import Order


# Said wherever money is held because the paying account's owner did not sign (on the order, in the
# refusal, in the transfer): who could have paid is for staff to weigh; the admin lists them.
UNSIGNED_HOLD = (
    "the account it came from belongs to someone who did not sign the transaction (a swap route's pool or a "
    "program's vault), so it is not sent there; staff decide where it goes"
)


def payment_return(payment: Payment) -> OutgoingTransfer:
    """Queue the return of an unapplied transfer to its sender (once, ever). Inside a transaction."""
    existing = OutgoingTransfer.objects.filter(payment=payment).first()
    if existing is not None:
        return existing
    return _send_back(payment, payment.amount_base_units, kind=TransferKind.RETURN, order=payment.order)


def _send_back(payment: Payment, amount: int, *, kind: TransferKind, order: Order | None) -> OutgoingTransfer:
    """A return or refund of `payment`'s money: to the account it came from while that is open,
    else its owner's existing USDC account (payments.tasks holds it when neither exists). Only when
    that owner signed the paying transaction; otherwise held for staff with the candidates named,
    since a swap route or a vault program's account is not the buyer's."""
    transfer = OutgoingTransfer.objects.create(
        order=order,
        payment=payment if kind == TransferKind.RETURN else None,
        kind=kind,
        chain=payment.chain,
        to_address=payment.payer if payment.payer_signed else "",
        to_token_account=payment.source_account if payment.payer_signed else "",
        amount_base_units=amount,
    )
    if payment.payer_signed:
        _schedule(transfer)
    else:
        hold(transfer, UNSIGNED_HOLD)
    return transfer


def paying_payment(transfer: OutgoingTransfer) -> Payment | None:
    """The transfer into escrow whose money a return or refund sends back."""
    if transfer.payment_id is not None:
        return transfer.payment
    if transfer.kind == TransferKind.REFUND and transfer.order_id is not None:
        return Payment.objects.filter(order_id=transfer.order_id, status=PaymentStatus.VERIFIED).first()
    return None


def _verified_payment(order: Order) -> Payment | None:
    return order.payments.filter(status=PaymentStatus.VERIFIED).first()


def _agent_destination(order: Order) -> tuple[str, str]:
    agent = order.agent
    if agent.payout_chain == wallets.BASE:
        return wallets.BASE, agent.payout_address_base
    return wallets.SOLANA, agent.payout_wallet


def _schedule(transfer: OutgoingTransfer) -> None:
    enqueue(send_transfer, transfer.pk)  # in this transaction: the transfer and its task commit together


def _payout(order: Order, amount: int) -> None:
    if amount <= 0:
        return
    chain, address = _agent_destination(order)
    _schedule(
        OutgoingTransfer.objects.create(
            order=order, kind=TransferKind.PAYOUT, chain=chain, to_address=address, amount_base_units=amount
        )
    )


def _refund(order: Order, payment: Payment, amount: int, *, kind: LedgerKind = LedgerKind.REFUND_DUE) -> None:
    if amount <= 0:
        return
    ledger.refund_due(order, payment.chain, amount, kind=kind)
    _send_back(payment, amount, kind=TransferKind.REFUND, order=order)


@dataclass(frozen=True)
class SettlementPlan:
    """What a settlement of an order moves, in USDC base units, before anything is written: the
    admin's decision preview and the settlement itself both come from `settlement_plan`."""

    paid: int  # what the buyer paid into escrow (0: nothing to settle)
    agent_gross: int  # the part of the escrow released to the agent, before the fee
    agent_share: int  # paid out to the agent (payments.ledger.split_fee)
    fee: int  # kept by the platform
    refund: int  # sent back to the buyer
    overpayment_only: bool  # the refund is only what was paid beyond the price

    def to_dict(self) -> dict[str, int]:
        return {"agent_share": self.agent_share, "fee": self.fee, "refund": self.refund} if self.paid else {}


def settlement_plan(order: Order, *, agent_gross: int) -> SettlementPlan:
    """`agent_gross` of the escrow to the agent (less the fee), the rest back to the buyer. No writes."""
    return _plan(order, _verified_payment(order), agent_gross)


def _plan(order: Order, payment: Payment | None, agent_gross: int) -> SettlementPlan:
    paid = payment.amount_base_units if payment is not None else 0
    agent_gross = min(agent_gross, paid)
    agent_share, fee = ledger.split_fee(agent_gross) if agent_gross else (0, 0)
    back = paid - agent_gross
    over = paid - price_base_units(order)
    return SettlementPlan(paid, agent_gross, agent_share, fee, back, back == over)


def release_plan(order: Order) -> SettlementPlan:
    """Approval (or staff release): 90% of the price to the agent, 10% fee, any overpayment back."""
    return settlement_plan(order, agent_gross=price_base_units(order))


def refund_plan(order: Order) -> SettlementPlan:
    """Cancellation of a paid order (or staff refund): everything paid goes back to the buyer."""
    return settlement_plan(order, agent_gross=0)


def settle_release(order: Order) -> dict[str, int]:
    """Approval (or staff release): 90% of the price to the agent, 10% fee, any overpayment back."""
    return settle_split(order, agent_gross=price_base_units(order))


def settle_split(order: Order, *, agent_gross: int) -> dict[str, int]:
    """`agent_gross` of the escrow goes to the agent (less the fee); the rest back to the buyer."""
    payment = _verified_payment(order)
    if payment is None:
        return {}
    plan = _plan(order, payment, agent_gross)
    if plan.agent_gross:
        ledger.release(order, payment.chain, plan.agent_gross)
    _payout(order, plan.agent_share)
    _refund(
        order, payment, plan.refund, kind=LedgerKind.OVERPAYMENT_DUE if plan.overpayment_only else LedgerKind.REFUND_DUE
    )
    return plan.to_dict()


def settle_refund(order: Order) -> dict[str, int]:
    """Cancellation of a paid order (or staff refund): everything paid goes back to the buyer."""
    return settle_split(order, agent_gross=0)
