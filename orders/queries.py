"""Reads for orders: access checks, lists, and the order as the API shows it.

Every read here runs a fixed number of queries whatever the number of rows: lists page by id
(ids sort by creation time) and related rows come in one prefetch.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, Q, QuerySet

from atelier.lib.errors import NotFound
from atelier.lib.money import usd_text
from atelier.lib.principal import Principal
from orders import disputes, gate, workspaces
from orders.models import BuyerKind, Deliverable, DeliverableStatus, Order, Status
from orders.transitions import Role, allowed_actions, role_of, workspace_expire_if_due
from payments import services as payment_services
from payments.models import OutgoingTransfer, Payment, PaymentStatus

_CURRENT_DELIVERABLES = Prefetch(
    "deliverables", queryset=Deliverable.objects.filter(superseded=False).order_by("id"), to_attr="current_deliverables"
)


# Claims waiting to be final and transfers that arrived but paid nothing, in one prefetch.
_OPEN_PAYMENTS = Prefetch(
    "payments",
    queryset=Payment.objects.filter(status__in=[PaymentStatus.PENDING, PaymentStatus.UNAPPLIED])
    .select_related("return_transfer")
    .order_by("created_at"),
    to_attr="open_payments",
)
_TRANSFERS = Prefetch("transfers", queryset=OutgoingTransfer.objects.order_by("id"), to_attr="transfer_list")
PAYABLE = (Status.QUOTED, Status.ACCEPTED)


def orders_with_details() -> QuerySet[Order]:
    return Order.objects.select_related("service", "agent").prefetch_related(
        _CURRENT_DELIVERABLES, _OPEN_PAYMENTS, _TRANSFERS, disputes.DECISION_EVENTS
    )


def order_for(actor: Principal, order_id: str, *, details: bool = True) -> tuple[Order, Role]:
    """The order and the caller's role on it; 404 for strangers, as for orders that don't exist."""
    queryset = orders_with_details() if details else Order.objects.select_related("service")
    order = queryset.filter(pk=order_id).first()
    role = role_of(order, actor) if order is not None else None
    if order is None or role is None:
        raise NotFound("No such order.", code="order_not_found")
    if workspace_expire_if_due(order):  # a workspace whose window passed closes on sight
        order = queryset.get(pk=order_id)
    return order, role


def orders_visible_to(actor: Principal) -> QuerySet[Order]:
    """Orders the caller is a party to (staff: all), newest first."""
    queryset = orders_with_details().order_by("-id")
    if actor.staff_user_id is not None:
        return queryset
    if actor.agent is not None:
        return queryset.filter(Q(agent=actor.agent) | Q(buyer_agent=actor.agent))
    return queryset.filter(
        buyer_kind__in=[BuyerKind.HUMAN, BuyerKind.X402], buyer_wallet=actor.wallet, buyer_chain=actor.chain
    )


def order_to_dict(order: Order, role: Role | None) -> dict[str, Any]:
    deliverables = getattr(order, "current_deliverables", None)
    if deliverables is None:
        deliverables = list(order.deliverables.filter(superseded=False).order_by("id"))
    # A workspace prompt not answered yet has nothing to show but itself (in `prompts`).
    rendered = [gate.deliverable_to_dict(d, role) for d in deliverables if d.status == DeliverableStatus.DELIVERED]
    return {
        "id": order.id,
        "service_id": order.service_id,
        "service_title": order.service.title,
        "price_type": order.price_type,
        "agent_id": order.agent_id,
        "buyer_kind": order.buyer_kind,
        "buyer_wallet": order.buyer_wallet or None,
        "buyer_chain": order.buyer_chain or None,
        "buyer_agent_id": order.buyer_agent_id,
        "brief": order.brief,
        "reference_urls": order.reference_urls,
        "status": order.status,
        "quoted_price_usd": str(order.quoted_price_usd) if order.quoted_price_usd is not None else None,
        "platform_fee_usd": usd_text(order.platform_fee_usd) if order.platform_fee_usd is not None else None,
        "payment_chain": order.payment_chain,
        "payment_reference": order.payment_reference,
        "escrow_tx_hash": order.escrow_tx_hash or None,
        "revision_count": order.revision_count,
        "max_revisions": order.max_revisions,
        "turnaround_hours": order.turnaround_hours,
        "due_at": _iso(order.due_at),
        "overdue": order.overdue,
        "revision_feedback": order.revision_feedback or None,
        "dispute_reason": order.dispute_reason or None,
        # Staff's decision on the dispute, with their note (orders.disputes), or null.
        "resolution": disputes.resolution_to_dict(order),
        "quota_total": order.quota_total,
        "quota_used": order.quota_used,
        "workspace_expires_at": _iso(order.workspace_expires_at),
        "is_workspace": order.is_workspace,
        "workspace_kind": order.workspace_kind,
        "quota_left": workspaces.quota_left(order),
        "payment": payment_services.payment_instructions(order) if order.status in PAYABLE else None,
        "payment_pending": payment_pending(order),
        "unapplied_transfers": unapplied_transfers(order),
        "transfers": [_transfer(transfer) for transfer in getattr(order, "transfer_list", [])],
        # The watermark gate decides which URLs this viewer gets (orders.gate).
        "deliverables": rendered,
        "prompts": workspaces.prompts_to_list(deliverables, rendered),
        "allowed_actions": allowed_actions(order, role),
        "viewer_role": role.value if role else None,
        "created_at": _iso(order.created_at),
        "quoted_at": _iso(order.quoted_at),
        "accepted_at": _iso(order.accepted_at),
        "paid_at": _iso(order.paid_at),
        "started_at": _iso(order.started_at),
        "delivered_at": _iso(order.delivered_at),
        "revision_requested_at": _iso(order.revision_requested_at),
        "completed_at": _iso(order.completed_at),
        "cancelled_at": _iso(order.cancelled_at),
    }


def _open_payments(order: Order) -> list[Payment]:
    found = getattr(order, "open_payments", None)
    if found is None:
        found = list(
            order.payments.filter(status__in=[PaymentStatus.PENDING, PaymentStatus.UNAPPLIED])
            .select_related("return_transfer")
            .order_by("created_at")
        )
    return found


def payment_pending(order: Order) -> bool:
    """A claimed transfer is waiting to be final (never once the order is paid: one state at a time)."""
    return pending_claim(order) is not None


def pending_claim(order: Order) -> Payment | None:
    """The oldest claimed transfer waiting to be final, while the order can still be paid."""
    if order.status not in PAYABLE:
        return None
    return next((payment for payment in _open_payments(order) if payment.status == PaymentStatus.PENDING), None)


def unapplied_transfers(order: Order) -> list[dict[str, Any]]:
    """Transfers that named this order and arrived but paid nothing, and where their return stands."""
    return [
        payment_services.unapplied_to_dict(payment)
        for payment in _open_payments(order)
        if payment.status == PaymentStatus.UNAPPLIED
    ]


def _transfer(transfer: OutgoingTransfer) -> dict[str, Any]:
    return {
        "kind": transfer.kind,
        "chain": transfer.chain,
        "to_address": transfer.to_address or None,
        "amount_base_units": transfer.amount_base_units,
        "status": transfer.status,
        "tx_hash": transfer.tx_hash or None,
        "error": transfer.last_error or None,
    }


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment else None
