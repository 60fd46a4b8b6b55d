"""Reads for orders: access checks, lists, and the order as the API shows it.

Every read here runs a fixed number of queries whatever the number of rows: lists page by id
(ids sort by creation time) and related rows come in one more query (`orders.reads.details`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.db.models import F, OuterRef, Q, QuerySet, Subquery

from lib.money import usd_text
from lib.pagination import cut
from lib.prepared import Prepared, Slot
from lib.principal import Principal
from orders.core.access import no_such_order, role_on
from orders.core.transitions import Role, allowed_actions, role_of
from orders.deliverables import gate
from orders.models import PAYABLE, BuyerKind, DeliverableStatus, Order, OrderEvent
from orders.reads.details import attach, attach_inline, inline
from orders.reads.prompts import prompts_to_list
from orders.reads.resolution import resolution_to_dict
from orders.reads.shapes import OrderData
from payments.checkout import payment_instructions
from payments.models import OutgoingTransfer, Payment, PaymentStatus
from payments.shapes import Transfer, UnappliedTransfer
from payments.unapplied import unapplied_to_dict

if TYPE_CHECKING:
    from agents.models import Agent


# The hot reads are compiled once per shape (lib.prepared): an order by id, and a page of
# the orders a caller may see, newest first (keyset on the id, which sorts by creation time).
# With its agent: a write's events find the agents listening for webhooks already loaded. Shown
# (the API's order, the page), with its details in the same query (orders.reads.details.inline).
_ORDER = Prepared(lambda slot: Order.objects.select_related("service", "agent").filter(pk=slot("id")))
_ORDER_SHOWN = Prepared(
    lambda slot: Order.objects.select_related("service", "agent").annotate(details=inline()).filter(pk=slot("id"))
)


def _scoped(slot: Slot, scope: str) -> QuerySet[Order]:
    """The orders a caller of this kind is a party to (`own`: those an agent sells, for its poll).
    A list reads its service's title and its agent's name beside each order, not the whole rows
    (a fifth of a poll's time went to building 20 services), and its details in one more query
    (orders.reads.details.attach): inline, a prepared statement's generic plan computed them for every
    open order of a busy agent before sorting (280 at 100,000 orders)."""
    shown = Order.objects.annotate(service_title=F("service__title"), agent_name=F("agent__name"))
    if scope == "own":
        return shown.filter(agent_id=slot("agent"))
    if scope == "staff":
        return shown
    if scope == "agent":
        return shown.filter(Q(agent_id=slot("agent")) | Q(buyer_agent_id=slot("agent")))
    return shown.filter(
        buyer_kind__in=[BuyerKind.HUMAN, BuyerKind.X402], buyer_wallet=slot("wallet"), buyer_chain=slot("chain")
    )


def _newest(slot: Slot, scope: str, statuses: int, before: bool, limit: int) -> QuerySet[Order]:
    queryset = _scoped(slot, scope)
    if statuses:
        queryset = queryset.filter(status__in=slot.many("status", statuses))
    if before:
        queryset = queryset.filter(id__lt=slot("before"))
    return queryset.order_by("-id")[: limit + 1]


# Planned afresh each time: how many open orders an agent has decides the plan (its own newest
# first, or its open ones sorted), and a generic plan assumes an average agent.
_PAGE = Prepared(_newest, server_prepared=False)


# The order page's poll when nothing changed, every 3 s per open tab: who may see the order, its
# status and its latest event (every change the page shows records one), in one query of two index
# lookups (orders.web.views.order_poll).
_POLL_STATE = Prepared(
    lambda slot: (
        Order.objects.only(
            "status", "buyer_kind", "buyer_wallet", "buyer_chain", "agent_id", "buyer_agent_id", "payment_chain"
        )
        .annotate(
            latest_event=Subquery(OrderEvent.objects.filter(order=OuterRef("pk")).order_by("-id").values("id")[:1])
        )
        .filter(pk=slot("id"))
    )
)


def poll_state(actor: Principal, order_id: str) -> tuple[Order, str] | None:
    """The order with only what a poll compares, and the id of its latest event; None for a stranger."""
    found = _POLL_STATE.fetch(id=order_id)
    if not found or role_of(found[0], actor) is None:
        return None
    return found[0], found[0].latest_event or ""


def latest_event_id(order: Order) -> str:
    """The page's change stamp: the id of the order's latest event, "" before any."""
    return order.events.order_by("-id").values_list("id", flat=True).first() or ""


def order_for(actor: Principal, order_id: str, *, details: bool = True) -> tuple[Order, Role]:
    """The order and the caller's role on it; 404 for strangers, as for orders that don't exist.
    A read: it writes nothing (a workspace due to close is closed first by orders.web.lookup)."""
    order = _read(order_id, details=details)
    if order is None:
        raise no_such_order()
    return order, role_on(order, actor)


def _read(order_id: str, *, details: bool) -> Order | None:
    found = (_ORDER_SHOWN if details else _ORDER).fetch(id=order_id)
    order = found[0] if found else None
    if order is not None and details:
        attach_inline([order])
    return order


def shown(order: Order, actor: Principal) -> OrderData:
    """A write's answer: the order its transition just moved (loaded with its service and agent in
    that transaction, so not read again) with its details, as `actor` sees it."""
    attach([order])
    return order_to_dict(order, role_of(order, actor))


def order_page(
    actor: Principal, *, statuses: Sequence[str] = (), limit: int, before: str | None, own: Agent | None = None
) -> tuple[list[Order], str | None]:
    """A page of the orders `actor` is a party to (staff: all; `own`: those the agent sells), newest
    first, with their details attached, and the cursor of the next page (None on the last)."""
    values: dict[str, Any] = {"status": list(statuses)}
    if own is not None:
        scope, values["agent"] = "own", own.id
    elif actor.staff_user_id is not None:
        scope = "staff"
    elif actor.agent is not None:
        scope, values["agent"] = "agent", actor.agent.id
    else:
        scope, values["wallet"], values["chain"] = "wallet", actor.wallet, actor.chain
    if before:
        values["before"] = before
    rows, cursor = cut(_PAGE.fetch(scope, len(statuses), bool(before), limit, **values), limit)
    attach(rows)
    return rows, cursor


def order_to_dict(order: Order, role: Role | None) -> OrderData:
    deliverables = getattr(order, "current_deliverables", None)
    if deliverables is None:
        deliverables = list(order.deliverables.filter(superseded=False).order_by("id"))
    # A workspace prompt not answered yet has nothing to show but itself (in `prompts`).
    rendered = [gate.deliverable_to_dict(d, role) for d in deliverables if d.status == DeliverableStatus.DELIVERED]
    return {
        "id": order.id,
        "service_id": order.service_id,
        "service_title": _service_title(order),
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
        # Staff's decision on the dispute, with their note (orders.disputes.decisions), or null.
        "resolution": resolution_to_dict(order),
        "quota_total": order.quota_total,
        "quota_used": order.quota_used,
        "workspace_expires_at": _iso(order.workspace_expires_at),
        "is_workspace": order.is_workspace,
        "workspace_kind": order.workspace_kind,
        "quota_left": order.quota_left,
        "payment": payment_instructions(order) if order.status in PAYABLE else None,
        "payment_pending": payment_pending(order),
        "unapplied_transfers": unapplied_transfers(order),
        "unapplied_transfers_total": unapplied_total(order),
        "transfers": [_transfer(transfer) for transfer in getattr(order, "transfer_list", [])],
        # The watermark gate decides which URLs this viewer gets (orders.deliverables.gate).
        "deliverables": rendered,
        "prompts": prompts_to_list(deliverables, rendered),
        "allowed_actions": allowed_actions(order, role),
        "viewer_role": role.value if role else None,
        "created_at": order.created_at.isoformat(),
        "quoted_at": _iso(order.quoted_at),
        "accepted_at": _iso(order.accepted_at),
        "paid_at": _iso(order.paid_at),
        "started_at": _iso(order.started_at),
        "delivered_at": _iso(order.delivered_at),
        "revision_requested_at": _iso(order.revision_requested_at),
        "completed_at": _iso(order.completed_at),
        "cancelled_at": _iso(order.cancelled_at),
    }


def _service_title(order: Order) -> str:
    """A list's orders carry the title alone (`service_title`); one order comes with its service."""
    title: str | None = getattr(order, "service_title", None)
    return title if title is not None else order.service.title


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


# An order shows its latest few transfers that paid nothing, and how many there are: anyone who knows
# the order's memo can send it transfers, so the list must not grow with them.
UNAPPLIED_SHOWN = 3


def _unapplied(order: Order) -> list[Payment]:
    return [payment for payment in _open_payments(order) if payment.status == PaymentStatus.UNAPPLIED]


def unapplied_transfers(order: Order) -> list[UnappliedTransfer]:
    """The latest transfers that named this order and arrived but paid nothing, and where their
    return stands (at most UNAPPLIED_SHOWN; dust is attached to no order at all)."""
    return [unapplied_to_dict(payment) for payment in _unapplied(order)[-UNAPPLIED_SHOWN:]]


def unapplied_total(order: Order) -> int:
    return len(_unapplied(order))


def _transfer(transfer: OutgoingTransfer) -> Transfer:
    return {
        "kind": transfer.kind,
        "chain": transfer.chain,
        "to_address": transfer.to_address or None,
        "amount_base_units": transfer.amount_base_units,
        "status": transfer.status,
        "tx_hash": transfer.tx_hash or None,
        "error": transfer.last_error or None,
        "held_reason": transfer.held_reason or None,
    }


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment else None
