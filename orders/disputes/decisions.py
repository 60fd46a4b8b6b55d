"""Disputes: the staff decisions and what each would move before it is made (the resolution as the
buyer and the agent see it afterwards: orders.reads.resolution).

Every decision goes through `orders.core.transitions.transition` (the table's staff rows); the money each
moves is computed by the settlement's own plan (`payments.settlement.settlement_plan`), never by a
second formula.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery

from lib.errors import Conflict, ValidationFailed
from lib.money import usd_text
from lib.principal import Principal
from orders.core.transitions import check, split_amount_check, transition
from orders.models import AWAITING_DELIVERY, Order, OrderEvent, Status
from orders.reads.resolution import DECISIONS, REFUND, RELEASE, SEND_BACK, SPLIT, resolution_to_dict
from payments import settlement
from payments.ledger import base_units_to_usd, usd_to_base_units

DECISION_LABELS = {
    RELEASE: "Release to the agent",
    REFUND: "Refund the buyer",
    SPLIT: "Split",
    SEND_BACK: "Send back for a revision",
}
NOTE_MAX = 500


# --- the preview of each decision ---------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """What a decision would move now, in USDC base units, and where it leaves the order."""

    decision: str
    to_status: str
    agent: int
    buyer: int
    platform: int
    paid: int
    agent_amount_usd: Decimal | None = None

    @property
    def moves_money(self) -> bool:
        return bool(self.agent or self.buyer)


_TARGET = {
    RELEASE: Status.COMPLETED,
    REFUND: Status.CANCELLED,
    SPLIT: Status.COMPLETED,
    SEND_BACK: Status.REVISION_REQUESTED,
}


def decision_preview(order: Order, decision: str, agent_amount_usd: Decimal | None = None) -> Preview:
    """What `decision` would move, from the plan the settlement itself follows. A split's amount is
    checked as the transition checks it (400 out of range)."""
    if decision == RELEASE:
        plan = settlement.release_plan(order)
    elif decision == REFUND:
        plan = settlement.refund_plan(order)
    elif decision == SPLIT:
        if agent_amount_usd is None:
            raise ValidationFailed("A split needs the amount that goes to the agent.", code="amount_required")
        split_amount_check(order, agent_amount_usd)
        plan = settlement.settlement_plan(order, agent_gross=usd_to_base_units(agent_amount_usd))
    elif decision == SEND_BACK:
        paid = settlement.settlement_plan(order, agent_gross=0).paid
        return Preview(decision, _TARGET[decision], 0, 0, 0, paid)
    else:
        raise ValidationFailed(f"Unknown decision {decision[:40]!r}.", code="unknown_decision")
    return Preview(decision, _TARGET[decision], plan.agent_share, plan.refund, plan.fee, plan.paid, agent_amount_usd)


# The largest price an order can carry (Order.quoted_price_usd: 9 digits, 2 of them cents).
AMOUNT_MAX = Decimal("9999999.99")


def parse_amount(raw: str) -> Decimal:
    """A split's agent amount as typed: dollars with at most two places, e.g. 20 or 20.00. Checked
    before it is rounded: 1e400 or forty nines are refused with a sentence, never a decimal error."""
    text = raw.strip().removeprefix("$").replace(",", "")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        amount = Decimal("NaN")
    if not text or not amount.is_finite() or amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValidationFailed(
            f"The agent's amount must be dollars with at most two decimals, like 20.00 (got {raw[:20]!r}).",
            code="invalid_amount",
            details={"agent_amount_usd": "not an amount in dollars"},
        )
    if abs(amount) > AMOUNT_MAX:
        raise ValidationFailed(
            f"The agent's amount must be a dollar amount less than the order's price (got {raw[:20]!r}).",
            code="invalid_amount",
            details={"agent_amount_usd": "out of range"},
        )
    return amount.quantize(Decimal("0.01"))


def net_sentence(preview: Preview) -> str:
    """What a decision moves, in net USDC, as the confirmation and the recorded note state it."""
    if not preview.moves_money:
        return "No money moves; the escrow stays held."
    return (
        f"The agent receives {usdc_text(preview.agent)} USDC (after the platform's fee of "
        f"{usdc_text(preview.platform)} USDC); the buyer gets back {usdc_text(preview.buyer)} USDC."
    )


def usd(base_units: int) -> Decimal:
    return base_units_to_usd(base_units)


def usdc_text(base_units: int) -> str:
    """25000000 -> "25.00": how a sentence states an amount of USDC."""
    return usd_text(base_units_to_usd(base_units), grouped=True)


# --- the decision ---------------------------------------------------------------------------------


def dispute_resolve(
    *, order_id: str, decision: str, staff_user_id: int, note: str, agent_amount_usd: Decimal | None = None
) -> Order:
    """Decide a dispute through `transition()`, with the staff member and the note on its OrderEvent.

    Locks the order row first and refuses (409 `not_disputed`) unless it is still disputed, so a form
    submitted twice, or by two staff members at once, decides once and moves money once; the second
    gets a refusal that says what was decided, not a silent no-op. Side effects (payout and refund
    tasks, webhooks) are sent by the transition after commit."""
    note = note_check(note, decision)
    actor = Principal(staff_user_id=staff_user_id)
    with transaction.atomic():
        order = Order.objects.select_for_update(of=("self",)).select_related("service", "agent").get(pk=order_id)
        disputed_check(order)
        check(order, decision, actor)
        preview = decision_preview(order, decision, agent_amount_usd)
        # Staff's note, then what it moved in net amounts: "$35 to the agent" is 31.50 after the fee.
        data: dict[str, Any] = {"note": f"{note}\n\n{net_sentence(preview)}" if preview.moves_money else note}
        if decision == SPLIT:
            data["agent_amount_usd"] = str(preview.agent_amount_usd)
        return transition(order.id, decision, actor, **data)


def note_check(note: str, decision: str) -> str:
    """The note staff write with a decision (required), stripped; the decision a known one."""
    note = note.strip()
    if not note:
        raise ValidationFailed("Write a note: it is recorded on the order and shown to the buyer and the agent.")
    if len(note) > NOTE_MAX:
        raise ValidationFailed(f"The note is {len(note)} characters; keep it to {NOTE_MAX}.")
    if decision not in DECISIONS:
        raise ValidationFailed(f"Unknown decision {decision[:40]!r}.", code="unknown_decision")
    return note


def disputed_check(order: Order) -> None:
    """409 `not_disputed`, saying what was decided, unless the order is still disputed."""
    if order.status != Status.DISPUTED:
        raise Conflict(_not_disputed(order), code="not_disputed", details={"status": order.status})


def _not_disputed(order: Order) -> str:
    resolution = resolution_to_dict(order)
    if resolution is None:
        return f"This order is {order.status.replace('_', ' ')}, not disputed: there is nothing to decide. Nothing was changed."
    when = datetime.fromisoformat(resolution["decided_at"])
    return (
        f"This dispute was already decided ({DECISION_LABELS[resolution['decision']].lower()}, "
        f"{when:%Y-%m-%d %H:%M} UTC); the order is {order.status.replace('_', ' ')}. Nothing was changed."
    )


# --- the queue ----------------------------------------------------------------------------------


def dispute_queue(queryset: QuerySet[Any]) -> QuerySet[Any]:
    """Disputed orders, the oldest dispute first, each with when it was disputed (`disputed_at`) and
    from which status (`disputed_from`: an undelivered, overdue order, or a delivered one)."""
    latest = OrderEvent.objects.filter(order=OuterRef("pk"), action="dispute").order_by("-id")
    queue: QuerySet[Any] = (
        queryset.filter(status=Status.DISPUTED)
        .annotate(
            disputed_at=Subquery(latest.values("created_at")[:1]),
            disputed_from=Subquery(latest.values("from_status")[:1]),
        )
        .order_by("disputed_at", "id")
    )
    return queue  # annotated with disputed_at and disputed_from


def disputed_undelivered(disputed_from: str | None) -> bool:
    """Disputed for no delivery within the turnaround (the table's `overdue` dispute rows)."""
    return disputed_from in AWAITING_DELIVERY
