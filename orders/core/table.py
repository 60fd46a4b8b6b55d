"""The transition table: every move an order may make, as one row each. A row says who moves the
order (`actor`), from where (`sources`) to where (`target`), what it needs of the order besides its
status (`only`, `when`: `Condition`s), what it writes (`effect`, orders.core.effects), the step it
takes first (`implies`), and whether the system takes it by itself on arrival (`follows`).

The engine that runs it is orders.core.transitions; nothing else decides what may happen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from orders.core import effects
from orders.core.effects import Effect
from orders.models import BuyerKind, Order, Role, Status


class Action(StrEnum):
    """Everything that can happen to an order (the API's PATCH `action` and the agent's endpoints)."""

    QUOTE = "quote"
    ACCEPT = "accept"
    PAY = "pay"
    OPEN_WORKSPACE = "open_workspace"
    START = "start"
    DELIVER = "deliver"
    APPROVE = "approve"
    REVISION = "revision"
    DISPUTE = "dispute"
    CANCEL = "cancel"
    RELEASE = "release"
    REFUND = "refund"
    SPLIT = "split"
    SEND_BACK = "send_back"
    EXPIRE = "expire"


def settles_on_delivery(order: Order) -> bool:
    """Agent-to-agent and x402 orders have no approval step: delivering them completes them and
    releases the escrow at once (the system's `release`), with no watermark. Settling on delivery,
    not on payment, keeps the buyer's escrow protection until something is delivered."""
    return order.buyer_kind in (BuyerKind.AGENT, BuyerKind.X402)


# --- conditions: what a row needs of the order besides its status ------------------------------
# A refusal builds the 409's message and details from the order and what its caller may do instead.

Refusal = Callable[[Order, list[str]], tuple[str, dict[str, Any]]]


def _not_overdue(order: Order, allowed: list[str]) -> tuple[str, dict[str, Any]]:
    details: dict[str, Any] = {"status": order.status, "allowed_actions": allowed}
    due = order.due_at
    if due is None:
        return "A workspace is never overdue: it can be disputed once its window closes and it is delivered.", details
    details["due_at"] = due.isoformat()
    message = (
        f"The agent has until {due:%Y-%m-%d %H:%M} UTC to deliver; until then this order can be "
        "disputed only once something is delivered."
    )
    return message, details


def _no_revisions_left(order: Order, allowed: list[str]) -> tuple[str, dict[str, Any]]:
    limit = order.max_revisions
    message = f"This order has used all {limit} revisions; approve it or open a dispute."
    return message, {"max_revisions": limit, "revision_count": order.revision_count}


def _not_a_workspace(order: Order, allowed: list[str]) -> tuple[str, dict[str, Any]]:
    message = "Only a workspace order (weekly, monthly or a quota pack) has a workspace to open or expire."
    return message, {"status": order.status, "allowed_actions": allowed}


def _approval_required(order: Order, allowed: list[str]) -> tuple[str, dict[str, Any]]:
    message = (
        "This order is released when its buyer approves it; only agent-to-agent and x402 orders are "
        "released on delivery."
    )
    return message, {"status": order.status, "allowed_actions": allowed}


class Condition(StrEnum):
    """A named test of the order that a row needs besides its status. A row whose condition fails
    is not offered (`allowed_actions`), and taking it is refused with 409 `code`."""

    holds: Callable[[Order], bool]
    code: str
    refusal: Refusal

    def __new__(cls, name: str, holds: Callable[[Order], bool], code: str, refusal: Refusal) -> Condition:
        condition = str.__new__(cls, name)
        condition._value_ = name
        condition.holds = holds
        condition.code = code
        condition.refusal = refusal
        return condition

    # No delivery within the agent's committed turnaround (`Order.due_at`: after payment, or after the
    # latest revision request). Workspaces are never overdue: their window closes them.
    OVERDUE = "overdue", lambda order: order.overdue, "not_overdue", _not_overdue
    REVISIONS_LEFT = (
        "revisions_left",
        lambda order: order.revision_count < order.max_revisions,
        "revision_limit_reached",
        _no_revisions_left,
    )
    WORKSPACE = "workspace", lambda order: order.is_workspace, "not_a_workspace", _not_a_workspace
    SETTLES_ON_DELIVERY = "settles_on_delivery", settles_on_delivery, "approval_required", _approval_required


# --- the rows ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    action: Action
    actor: Role
    sources: frozenset[Status]
    target: Status
    stamp: str | None = None  # the Order timestamp field set on arrival
    # The orders this row is for at all (workspaces; orders with no approval step; with revisions left).
    only: Condition | None = None
    # A second row of an action, from other statuses, that opens when its condition holds (a dispute
    # before delivery, once overdue). One actor's rows for an action never share a source.
    when: Condition | None = None
    # A step this row takes first, recorded as its own event (paying a quote accepts it).
    implies: Action | None = None
    # What the action writes besides status, and the data of its event.
    effect: Effect = effects.note
    # The system's own step, taken at once wherever the row is available for the status an order
    # just arrived in, in the same transaction and under the same lock.
    follows: bool = False

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return tuple(condition for condition in (self.only, self.when) if condition is not None)


def _rule(
    action: Action,
    actor: Role,
    sources: set[Status],
    target: Status,
    stamp: str | None = None,
    *,
    only: Condition | None = None,
    when: Condition | None = None,
    implies: Action | None = None,
    effect: Effect = effects.note,
    follows: bool = False,
) -> Rule:
    return Rule(action, actor, frozenset(sources), target, stamp, only, when, implies, effect, follows)


S = Status
# Creation is not a row here: a new order starts in `pending_quote` for quote-priced services and in
# `quoted` (at the listed price) for the rest; see `orders.core.transitions.initial_status`.
TABLE: tuple[Rule, ...] = (
    _rule(Action.QUOTE, Role.AGENT, {S.PENDING_QUOTE}, S.QUOTED, "quoted_at", effect=effects.quote),
    _rule(Action.ACCEPT, Role.BUYER, {S.QUOTED}, S.ACCEPTED, "accepted_at"),
    # Verified on-chain before this runs. From `quoted`, paying records the accept and then the pay.
    _rule(Action.PAY, Role.BUYER, {S.ACCEPTED}, S.PAID, "paid_at", effect=effects.pay),
    _rule(Action.PAY, Role.BUYER, {S.QUOTED}, S.PAID, "paid_at", implies=Action.ACCEPT, effect=effects.pay),
    # Paying a workspace order (weekly, monthly, quota packs) opens it.
    _rule(
        Action.OPEN_WORKSPACE,
        Role.SYSTEM,
        {S.PAID},
        S.IN_PROGRESS,
        "started_at",
        only=Condition.WORKSPACE,
        effect=effects.open_workspace,
        follows=True,
    ),
    _rule(Action.START, Role.AGENT, {S.PAID}, S.IN_PROGRESS, "started_at"),
    _rule(
        Action.DELIVER,
        Role.AGENT,
        {S.PAID, S.IN_PROGRESS, S.REVISION_REQUESTED, S.DISPUTED, S.DELIVERED},
        S.DELIVERED,
        "delivered_at",
        effect=effects.deliver,
    ),
    _rule(Action.APPROVE, Role.BUYER, {S.DELIVERED}, S.COMPLETED, "completed_at", effect=effects.release),
    _rule(
        Action.REVISION,
        Role.BUYER,
        {S.DELIVERED},
        S.REVISION_REQUESTED,
        "revision_requested_at",
        only=Condition.REVISIONS_LEFT,
        effect=effects.revision,
    ),
    _rule(Action.DISPUTE, Role.BUYER, {S.DELIVERED}, S.DISPUTED, effect=effects.dispute),
    _rule(
        Action.DISPUTE,
        Role.BUYER,
        {S.PAID, S.IN_PROGRESS, S.REVISION_REQUESTED},
        S.DISPUTED,
        when=Condition.OVERDUE,
        effect=effects.dispute,
    ),
    # Once the agent has started, the buyer can no longer walk away (an overdue order can be
    # disputed instead); the agent still can. Cancelling a paid order refunds it in full.
    _rule(
        Action.CANCEL,
        Role.BUYER,
        {S.PENDING_QUOTE, S.QUOTED, S.ACCEPTED, S.PAID},
        S.CANCELLED,
        "cancelled_at",
        effect=effects.refund,
    ),
    _rule(
        Action.CANCEL,
        Role.AGENT,
        {S.PENDING_QUOTE, S.QUOTED, S.ACCEPTED, S.PAID, S.IN_PROGRESS},
        S.CANCELLED,
        "cancelled_at",
        effect=effects.refund,
    ),
    # Staff resolve disputes: release to the agent, refund the buyer, split, or send back.
    _rule(Action.RELEASE, Role.STAFF, {S.DISPUTED}, S.COMPLETED, "completed_at", effect=effects.release),
    _rule(Action.REFUND, Role.STAFF, {S.DISPUTED}, S.CANCELLED, "cancelled_at", effect=effects.refund),
    _rule(Action.SPLIT, Role.STAFF, {S.DISPUTED}, S.COMPLETED, "completed_at", effect=effects.split),
    _rule(Action.SEND_BACK, Role.STAFF, {S.DISPUTED}, S.REVISION_REQUESTED, "revision_requested_at"),
    # A workspace's window closed or its quota is used up (orders.workspaces; a task and every request).
    _rule(Action.EXPIRE, Role.SYSTEM, {S.IN_PROGRESS}, S.DELIVERED, "delivered_at", only=Condition.WORKSPACE),
    # Delivering (or expiring) an order with no approval step releases its escrow and completes it.
    _rule(
        Action.RELEASE,
        Role.SYSTEM,
        {S.DELIVERED},
        S.COMPLETED,
        "completed_at",
        only=Condition.SETTLES_ON_DELIVERY,
        effect=effects.release,
        follows=True,
    ),
)
ACTIONS = tuple(dict.fromkeys(rule.action for rule in TABLE))
