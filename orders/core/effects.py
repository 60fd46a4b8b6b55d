"""What an action writes besides the order's status: each row of the transition table
(orders.core.table) names one of these as its `effect`. An effect checks the caller's data, changes
the order (and what hangs off it: deliverables, the agent's counter, the settlement) and returns the
Order fields it changed and the data for the action's event. It runs inside `transition`'s
transaction, under the order's lock, after the table has allowed the move.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone

from agents.models import Agent, PriceType, Service
from lib.errors import Conflict, ValidationFailed
from orders.deliverables import fetching
from orders.models import Deliverable, Order, Status, WorkspaceKind
from payments import settlement as payment_settlement
from payments.ledger import base_units_to_usd, split_fee, usd_to_base_units

Effect = Callable[[Order, dict[str, Any]], tuple[list[str], dict[str, Any]]]

# How long a workspace stays open after payment, by the kind the order bought.
WORKSPACE_WINDOWS = {
    WorkspaceKind.WEEKLY: timedelta(days=7),
    WorkspaceKind.MONTHLY: timedelta(days=30),
    WorkspaceKind.QUOTA_PACK: timedelta(hours=24),
}
# Sent with `order` when its workspace opens, inside the opening's transaction: the workspace timer
# (orders.core.workspace_timer) queues the window's close. A signal, because that task moves orders
# and so sits above the table that names this module's effects.
workspace_opened = Signal()


def workspace_window(order: Order) -> timedelta:
    return WORKSPACE_WINDOWS[WorkspaceKind(order.workspace_kind)]


def workspace_kind_of(service: Service) -> WorkspaceKind:
    """Weekly and monthly services sell a workspace of that length; any other with a quota, a quota pack."""
    if service.price_type == PriceType.WEEKLY:
        return WorkspaceKind.WEEKLY
    if service.price_type == PriceType.MONTHLY:
        return WorkspaceKind.MONTHLY
    return WorkspaceKind.QUOTA_PACK if service.quota_limit > 0 else WorkspaceKind.NONE


def terms_of(service: Service) -> dict[str, Any]:
    """The terms an order buys from `service` as it stands now (DESIGN.md section 5, "Terms as
    bought"): copied onto the order when it is quoted, read from the order ever after."""
    return {
        "max_revisions": service.max_revisions,
        "turnaround_hours": service.turnaround_hours,
        "workspace_kind": workspace_kind_of(service),
        "quota_total": service.quota_limit,
    }


def platform_fee(price: Decimal) -> Decimal:
    """The fee on `price` as the ledger books it (payments.ledger.split_fee): the agent's share is
    rounded down to the USDC base unit and the platform takes the remainder, so $100.05 shows (and
    moves) a fee of $10.005."""
    _agent_share, fee = split_fee(usd_to_base_units(price))
    return base_units_to_usd(fee)


def split_amount_check(order: Order, amount: Decimal) -> None:
    """A split gives the agent more than nothing and less than the price (else: release or refund)."""
    price = order.quoted_price_usd or Decimal(0)
    if not Decimal(0) < amount < price:
        raise ValidationFailed(
            f"agent_amount_usd must be more than 0 and less than the price ({price}); use release or refund otherwise.",
            details={"agent_amount_usd": "out of range"},
        )


def _note_of(data: dict[str, Any]) -> dict[str, Any]:
    return {key: str(value) for key, value in data.items() if key in ("reason", "note", "agent_amount_usd")}


# --- the effects ---------------------------------------------------------------------------------


def note(order: Order, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Nothing besides status: the event keeps the caller's note or reason."""
    return [], _note_of(data)


def quote(order: Order, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    price: Decimal = data["price_usd"]
    if not Decimal("0") < price <= Decimal("1000000"):
        raise ValidationFailed(
            "price_usd must be more than 0 and at most 1,000,000.", details={"price_usd": "out of range"}
        )
    order.quoted_price_usd = price
    order.platform_fee_usd = platform_fee(price)
    # The price and the terms are bought together: the service's terms as they stand at the quote.
    terms = terms_of(order.service)
    for name, value in terms.items():
        setattr(order, name, value)
    return ["quoted_price_usd", "platform_fee_usd", *terms], {"price_usd": str(price), "terms": terms}


def pay(order: Order, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    payment = data["payment"]  # a payments.models.Payment, verified on-chain by the payments app
    if payment.order_id != order.id or payment.status != "verified":
        raise Conflict("This payment is not a verified payment of this order.", code="payment_mismatch")
    order.escrow_tx_hash = payment.tx_hash
    order.payment_chain = payment.chain
    return ["escrow_tx_hash", "payment_chain"], {
        "payment_id": payment.id,
        "tx_hash": payment.tx_hash,
        "chain": payment.chain,
    }


def open_workspace(order: Order, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The window opens at payment. Its close is a task queued with the opening (`workspace_opened`;
    every request that touches the order checks it too: workspace_timer.workspace_expire_if_due)."""
    order.workspace_expires_at = (order.paid_at or timezone.now()) + workspace_window(order)
    workspace_opened.send(sender=Order, order=order)
    return ["workspace_expires_at"], {
        **_note_of(data),
        "expires_at": order.workspace_expires_at.isoformat(),
        "quota_total": order.quota_total,
    }


def deliver(order: Order, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    if order.is_workspace and order.status == Status.IN_PROGRESS:
        raise Conflict(
            "This workspace is open: answer a prompt by naming its deliverable_id. The order is delivered "
            "when the window closes or the quota is used up.",
            code="workspace_open",
            details={"status": order.status, "deliverable_id": "is required in an open workspace"},
        )
    items: list[dict[str, str]] = data["deliverables"]
    # A re-delivery replaces what was there (a workspace's prompts and their answers stay); the old
    # rows stay for the record.
    order.deliverables.filter(superseded=False, prompt="").update(superseded=True)
    rows = [Deliverable(order=order, url=item["url"], media_type=item["media_type"]) for item in items]
    fetching.attach(order, rows)  # link uploaded files; queue image fetches (they run after commit)
    Deliverable.objects.bulk_create(rows)
    return [], {"deliverables": items}


def revision(order: Order, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    order.revision_count += 1
    order.revision_feedback = data["feedback"]
    return ["revision_count", "revision_feedback"], {"feedback": data["feedback"]}


def dispute(order: Order, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    order.dispute_reason = data["reason"]
    return ["dispute_reason"], {"reason": data["reason"]}


def release(order: Order, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The escrow to the agent (less the fee): the buyer approves, staff release, or the system
    releases an order with no approval step."""
    Agent.objects.filter(pk=order.agent_id).update(completed_orders=F("completed_orders") + 1)
    return [], {**_note_of(data), "settlement": payment_settlement.settle_release(order)}


def refund(order: Order, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """A paid order is refunded in full (settlement finds nothing to refund on an unpaid one)."""
    return [], {**_note_of(data), "settlement": payment_settlement.settle_refund(order)}


def split(order: Order, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    amount = Decimal(str(data["agent_amount_usd"]))
    split_amount_check(order, amount)
    Agent.objects.filter(pk=order.agent_id).update(completed_orders=F("completed_orders") + 1)
    settlement = payment_settlement.settle_split(order, agent_gross=usd_to_base_units(amount))
    return [], {**_note_of(data), "settlement": settlement}
