"""The order state machine: the one table that says what may happen, and the one function that
makes it happen. Nothing else assigns `Order.status`.

`transition(order_id, action, actor, **data)`:
- locks the order row (`select_for_update`) inside `transaction.atomic` and re-reads it,
- finds the caller's role on this order (a stranger gets 404: orders are never revealed),
- checks the rule for (action, role) and the source status (403 wrong role, 409 wrong status), and
  the row's condition if it names one (`Rule.when`: `overdue`; 409 with its own code),
- treats a repeat of the last action with the same data as a no-op (safe client retries),
- runs the action's guard and writes (deliverables, counters), saves with `update_fields`,
- writes an OrderEvent (with its webhook deliveries, and its after-commit announcement:
  `orders.core.events.record`),
- then runs the system's follow-ups of the new status, in the same transaction (`FOLLOW_UPS`): a
  paid workspace opens; a delivered order with no approval step (agent or x402 buyer) is released.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from django.db import transaction
from django.db.models import F
from django.tasks import task
from django.utils import timezone

from agents.models import Agent, PriceType, Service
from lib import requestlog
from lib.errors import Conflict, Forbidden, NotFound, ValidationFailed
from lib.prepared import Prepared
from lib.principal import SYSTEM, Principal
from lib.tasks import enqueue
from orders.core import events
from orders.deliverables import fetching
from orders.models import BuyerKind, Deliverable, Order, OrderEvent, Role, Status, WorkspaceKind, X402Intent
from payments import settlement as payment_settlement
from payments.ledger import base_units_to_usd, split_fee, usd_to_base_units


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


@dataclass(frozen=True)
class Rule:
    action: Action
    actor: Role
    sources: frozenset[Status]
    target: Status
    stamp: str | None = None  # the Order timestamp field set on arrival
    # A condition on the order besides its status (a key of WHEN); "" for none. An action may have
    # several rows for one actor, from different sources, each with its own condition.
    when: str = ""
    # A step this row takes first, recorded as its own event (paying a quote accepts it).
    implies: Action | None = None


def _rule(
    action: Action,
    actor: Role,
    sources: set[Status],
    target: Status,
    stamp: str | None = None,
    *,
    when: str = "",
    implies: Action | None = None,
) -> Rule:
    return Rule(action, actor, frozenset(sources), target, stamp, when, implies)


S = Status
# Creation is not a row here: a new order starts in `pending_quote` for quote-priced services and in
# `quoted` (at the listed price) for the rest; see `initial_status`.
TABLE: tuple[Rule, ...] = (
    _rule(Action.QUOTE, Role.AGENT, {S.PENDING_QUOTE}, S.QUOTED, "quoted_at"),
    _rule(Action.ACCEPT, Role.BUYER, {S.QUOTED}, S.ACCEPTED, "accepted_at"),
    # Verified on-chain before this runs. From `quoted`, paying records the accept and then the pay.
    _rule(Action.PAY, Role.BUYER, {S.ACCEPTED}, S.PAID, "paid_at"),
    _rule(Action.PAY, Role.BUYER, {S.QUOTED}, S.PAID, "paid_at", implies=Action.ACCEPT),
    # A follow-up of `pay` for workspace orders (weekly, monthly, quota packs): see FOLLOW_UPS.
    _rule(Action.OPEN_WORKSPACE, Role.SYSTEM, {S.PAID}, S.IN_PROGRESS, "started_at"),
    _rule(Action.START, Role.AGENT, {S.PAID}, S.IN_PROGRESS, "started_at"),
    _rule(
        Action.DELIVER,
        Role.AGENT,
        {S.PAID, S.IN_PROGRESS, S.REVISION_REQUESTED, S.DISPUTED, S.DELIVERED},
        S.DELIVERED,
        "delivered_at",
    ),
    _rule(Action.APPROVE, Role.BUYER, {S.DELIVERED}, S.COMPLETED, "completed_at"),
    _rule(Action.REVISION, Role.BUYER, {S.DELIVERED}, S.REVISION_REQUESTED, "revision_requested_at"),
    _rule(Action.DISPUTE, Role.BUYER, {S.DELIVERED}, S.DISPUTED),
    # No delivery within the agent's committed turnaround (`Order.due_at`: after payment, or after
    # the latest revision request) is a reason to dispute before anything is delivered. Workspaces
    # are never overdue: their window closes them.
    _rule(Action.DISPUTE, Role.BUYER, {S.PAID, S.IN_PROGRESS, S.REVISION_REQUESTED}, S.DISPUTED, when="overdue"),
    # Once the agent has started, the buyer can no longer walk away (an overdue order can be
    # disputed instead); the agent still can. Cancelling a paid order refunds it in full.
    _rule(Action.CANCEL, Role.BUYER, {S.PENDING_QUOTE, S.QUOTED, S.ACCEPTED, S.PAID}, S.CANCELLED, "cancelled_at"),
    _rule(
        Action.CANCEL,
        Role.AGENT,
        {S.PENDING_QUOTE, S.QUOTED, S.ACCEPTED, S.PAID, S.IN_PROGRESS},
        S.CANCELLED,
        "cancelled_at",
    ),
    # Staff resolve disputes: release to the agent, refund the buyer, split, or send back.
    _rule(Action.RELEASE, Role.STAFF, {S.DISPUTED}, S.COMPLETED, "completed_at"),
    _rule(Action.REFUND, Role.STAFF, {S.DISPUTED}, S.CANCELLED, "cancelled_at"),
    _rule(Action.SPLIT, Role.STAFF, {S.DISPUTED}, S.COMPLETED, "completed_at"),
    _rule(Action.SEND_BACK, Role.STAFF, {S.DISPUTED}, S.REVISION_REQUESTED, "revision_requested_at"),
    # A workspace's window closed or its quota is used up (orders.workspaces; a task and every request).
    _rule(Action.EXPIRE, Role.SYSTEM, {S.IN_PROGRESS}, S.DELIVERED, "delivered_at"),
    # A follow-up of `deliver` and `expire` for orders with no approval step: see FOLLOW_UPS.
    _rule(Action.RELEASE, Role.SYSTEM, {S.DELIVERED}, S.COMPLETED, "completed_at"),
)
ACTIONS = tuple(dict.fromkeys(rule.action for rule in TABLE))
# The system's own steps that follow an arrival at once, in the same transaction and under the same
# lock, wherever the rule is available for the order (`_available`): paying a workspace order opens
# the workspace; delivering an order with no approval step releases its escrow and completes it.
FOLLOW_UPS: tuple[Rule, ...] = tuple(
    rule for rule in TABLE if rule.actor == Role.SYSTEM and rule.action in ("open_workspace", "release")
)
# How long a workspace stays open after payment, by the kind the order bought.
WORKSPACE_WINDOWS = {
    WorkspaceKind.WEEKLY: timedelta(days=7),
    WorkspaceKind.MONTHLY: timedelta(days=30),
    WorkspaceKind.QUOTA_PACK: timedelta(hours=24),
}


def settles_on_delivery(order: Order) -> bool:
    """Agent-to-agent and x402 orders have no approval step: delivering them completes them and
    releases the escrow at once (the system's `release`), with no watermark. Settling on delivery,
    not on payment, keeps the buyer's escrow protection until something is delivered."""
    return order.buyer_kind in (BuyerKind.AGENT, BuyerKind.X402)


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


def initial_status(service: Service) -> Status:
    return Status.QUOTED if service.auto_quoted else Status.PENDING_QUOTE


def role_of(order: Order, actor: Principal) -> Role | None:
    """The caller's part in this order, or None for a stranger."""
    if actor.system:
        return Role.SYSTEM
    if actor.agent is not None:
        if actor.agent.id == order.agent_id:
            return Role.AGENT
        if actor.agent.id == order.buyer_agent_id:
            return Role.BUYER
        return None
    if actor.wallet:
        is_buyer = order.buyer_kind != BuyerKind.AGENT and (actor.wallet, actor.chain) == (
            order.buyer_wallet,
            order.buyer_chain,
        )
        return Role.BUYER if is_buyer else None
    if actor.staff_user_id is not None:
        return Role.STAFF
    return None


# The conditions a row may name (`Rule.when`): each a test of the order and the refusal when it fails.
WHEN: dict[str, tuple[Callable[[Order], bool], str]] = {
    "overdue": (lambda order: order.overdue, "not_overdue"),
}


def allowed_actions(order: Order, role: Role | None) -> list[str]:
    """What `role` may do to `order` now: the table, narrowed by guards that already know the answer."""
    actions = [
        rule.action for rule in TABLE if rule.actor == role and order.status in rule.sources and _available(order, rule)
    ]
    return list(dict.fromkeys(actions))


def _available(order: Order, rule: Rule) -> bool:
    if rule.when and not WHEN[rule.when][0](order):
        return False
    if rule.action == "revision":
        return order.revision_count < order.max_revisions
    if rule.action in ("open_workspace", "expire"):
        return order.is_workspace
    if rule.action == "release" and rule.actor == Role.SYSTEM:
        return settles_on_delivery(order)
    return True


def platform_fee(price: Decimal) -> Decimal:
    """The fee on `price` as the ledger books it (payments.ledger.split_fee): the agent's share is
    rounded down to the USDC base unit and the platform takes the remainder, so $100.05 shows (and
    moves) a fee of $10.005."""
    _agent_share, fee = split_fee(usd_to_base_units(price))
    return base_units_to_usd(fee)


# --- guards: check the data, write what the action changes besides status ---------------------
# Each returns the Order fields it changed and the data for the event.

Guard = Callable[[Order, dict[str, Any]], tuple[list[str], dict[str, Any]]]


def _quote(order: Order, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
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


def _pay(order: Order, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
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


def _deliver(order: Order, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    if order.is_workspace and order.status == S.IN_PROGRESS:
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


def _approve(order: Order, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    Agent.objects.filter(pk=order.agent_id).update(completed_orders=F("completed_orders") + 1)
    return [], {**_note(data), "settlement": payment_settlement.settle_release(order)}


def _revision(order: Order, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    limit = order.max_revisions
    if order.revision_count >= limit:
        raise Conflict(
            f"This order has used all {limit} revisions; approve it or open a dispute.",
            code="revision_limit_reached",
            details={"max_revisions": limit, "revision_count": order.revision_count},
        )
    order.revision_count += 1
    order.revision_feedback = data["feedback"]
    return ["revision_count", "revision_feedback"], {"feedback": data["feedback"]}


def _dispute(order: Order, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    order.dispute_reason = data["reason"]
    return ["dispute_reason"], {"reason": data["reason"]}


def _note(data: dict[str, Any]) -> dict[str, Any]:
    return {key: str(value) for key, value in data.items() if key in ("reason", "note", "agent_amount_usd")}


def _with_note(order: Order, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    return [], _note(data)


def _workspace_only(order: Order, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    # The table's `paid`/`in_progress` sources hold for workspace orders only (see `_available`).
    if not order.is_workspace:
        raise Conflict(
            "Only a workspace order (weekly, monthly or a quota pack) has a workspace to open or expire.",
            code="not_a_workspace",
            details={"status": order.status, "allowed_actions": allowed_actions(order, Role.SYSTEM)},
        )
    return _with_note(order, data)


def _open_workspace(order: Order, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The window opens at payment. Its close is a task queued with the opening (and every request
    that touches the order checks it too: workspace_expire_if_due, below)."""
    _changed, event_data = _workspace_only(order, data)
    order.workspace_expires_at = (order.paid_at or timezone.now()) + workspace_window(order)
    expire_workspace_at(order.id, order.workspace_expires_at)
    return ["workspace_expires_at"], {
        **event_data,
        "expires_at": order.workspace_expires_at.isoformat(),
        "quota_total": order.quota_total,
    }


def _release(order: Order, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Staff release a disputed order; the system releases a delivered one that has no approval step."""
    if order.status == S.DELIVERED and not settles_on_delivery(order):
        raise Conflict(
            "This order is released when its buyer approves it; only agent-to-agent and x402 orders are "
            "released on delivery.",
            code="approval_required",
            details={"status": order.status, "allowed_actions": allowed_actions(order, Role.SYSTEM)},
        )
    return _approve(order, data)


def _cancel(order: Order, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """A paid order is refunded in full (settlement finds nothing to refund on an unpaid one)."""
    return [], {**_note(data), "settlement": payment_settlement.settle_refund(order)}


def split_amount_check(order: Order, amount: Decimal) -> None:
    """A split gives the agent more than nothing and less than the price (else: release or refund)."""
    price = order.quoted_price_usd or Decimal(0)
    if not Decimal(0) < amount < price:
        raise ValidationFailed(
            f"agent_amount_usd must be more than 0 and less than the price ({price}); use release or refund otherwise.",
            details={"agent_amount_usd": "out of range"},
        )


def _split(order: Order, data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    amount = Decimal(str(data["agent_amount_usd"]))
    split_amount_check(order, amount)
    Agent.objects.filter(pk=order.agent_id).update(completed_orders=F("completed_orders") + 1)
    settlement = payment_settlement.settle_split(order, agent_gross=usd_to_base_units(amount))
    return [], {**_note(data), "settlement": settlement}


GUARDS: dict[str, Guard] = {
    "quote": _quote,
    "pay": _pay,
    "deliver": _deliver,
    "approve": _approve,
    "revision": _revision,
    "dispute": _dispute,
    "cancel": _cancel,
    "release": _release,
    "refund": _cancel,
    "split": _split,
    "open_workspace": _open_workspace,
    "expire": _workspace_only,
}


def _event_data(data: dict[str, Any]) -> dict[str, Any]:
    """The caller's data as stored on the event, for comparing a repeat with the original."""
    normalized = {}
    for key, value in data.items():
        if key == "payment":
            normalized["payment_id"] = value.id
        elif isinstance(value, Decimal):
            normalized[key] = str(value)
        else:
            normalized[key] = value
    return normalized


def _is_repeat(order: Order, rule: Rule, actor: Principal, data: dict[str, Any]) -> bool:
    # The order rests where the action took it, or where a follow-up of that took it.
    if order.status != rule.target and order.status not in {f.target for f in FOLLOW_UPS if rule.target in f.sources}:
        return False
    recent = order.events.exclude(to_status="").order_by("-id")[:2]
    last = next(
        (
            event
            for event in recent
            if not (event.actor_kind == Role.SYSTEM and event.action != rule.action and _is_follow_up(event.action))
        ),
        None,
    )
    if last is None or last.to_status != rule.target or last.action != rule.action or last.actor_id != actor.id:
        return False
    return all(last.data.get(key) == value for key, value in _event_data(data).items())


def _is_follow_up(action: str) -> bool:
    return any(rule.action == action for rule in FOLLOW_UPS)


# of=("self",): lock the order row only, not the joined service and agent. Every write reads it:
# compiled once (lib.prepared).
_LOCKED = Prepared(
    lambda slot: Order.objects.select_for_update(of=("self",)).select_related("service", "agent").filter(pk=slot("id"))
)


def locked(order_id: str) -> Order:
    """The order row locked for a change (its service and agent with it, not locked), inside the
    caller's transaction; 404 when there is none. The one lock every change of an order takes."""
    found = _LOCKED.fetch(id=order_id)
    if not found:
        raise NotFound("No such order.", code="order_not_found")
    order: Order = found[0]
    return order


def _record(
    order: Order, action: str, role: Role, actor: Principal, from_status: str, data: dict[str, Any]
) -> OrderEvent:
    return events.record(
        order, action, actor_kind=role, actor_id=actor.id, from_status=from_status, to_status=order.status, data=data
    )


def _rule_for(order: Order, action: str, actor: Principal) -> tuple[Role, Rule]:
    rules = [rule for rule in TABLE if rule.action == action]
    if not rules:
        raise ValidationFailed(f"Unknown action {action!r}.", code="unknown_action", details={"action": action})
    role = role_of(order, actor)
    if role is None:
        raise NotFound("No such order.", code="order_not_found")
    mine = [rule for rule in rules if rule.actor == role]
    if not mine:
        details = {"status": order.status, "allowed_actions": allowed_actions(order, role)}
        raise Forbidden(f"The {role} of an order cannot {action} it.", code="wrong_role", details=details)
    # The row for the order's status, if any (one actor's rows for an action never share a source);
    # otherwise the first, for `_check_source` to refuse.
    return role, next((rule for rule in mine if order.status in rule.sources), mine[0])


def _check_source(order: Order, rule: Rule, role: Role) -> None:
    if order.status not in rule.sources:
        details = {"status": order.status, "allowed_actions": allowed_actions(order, role)}
        raise Conflict(
            f"Cannot {rule.action} an order that is {order.status}.", code="invalid_transition", details=details
        )


def _check_when(order: Order, rule: Rule, role: Role) -> None:
    if not rule.when or WHEN[rule.when][0](order):
        return
    details: dict[str, Any] = {"status": order.status, "allowed_actions": allowed_actions(order, role)}
    due = order.due_at
    if rule.when == "overdue" and due is not None:
        details["due_at"] = due.isoformat()
        message = (
            f"The agent has until {due:%Y-%m-%d %H:%M} UTC to deliver; until then this order can be "
            "disputed only once something is delivered."
        )
    elif rule.when == "overdue":
        message = "A workspace is never overdue: it can be disputed once its window closes and it is delivered."
    else:
        message = f"{rule.action} needs the order to be {rule.when}."
    raise Conflict(message, code=WHEN[rule.when][1], details=details)


def check(order: Order, action: str, actor: Principal) -> Role:
    """Raise what `transition` would raise for this action now, without locking or writing.
    For actions that must do slow work (an on-chain check) before the real transition."""
    role, rule = _rule_for(order, action, actor)
    _check_source(order, rule, role)
    _check_when(order, rule, role)
    return role


def transition(order_id: str, action: str, actor: Principal, **data: Any) -> Order:
    """Move an order by `action`. Locks the order row; its events announce themselves after commit."""
    requestlog.bind(order_id=order_id)  # on this request's or task's log lines from here on
    with transaction.atomic():
        order = locked(order_id)
        role, rule = _rule_for(order, action, actor)
        if _is_repeat(order, rule, actor, data):
            return order
        _check_source(order, rule, role)
        _check_when(order, rule, role)
        if rule.implies is not None:
            step = next(r for r in TABLE if r.action == rule.implies and r.actor == role and order.status in r.sources)
            _move(order, step.action, role, actor, step.target, step.stamp, {})
        guard = GUARDS.get(action, _with_note)
        changed, event_data = guard(order, data)
        _move(order, action, role, actor, rule.target, rule.stamp, event_data, changed)
        _follow_up(order)
    return order


def _follow_up(order: Order) -> None:
    """Run the system's follow-ups of the status `order` just arrived in (FOLLOW_UPS), in order."""
    while rule := next((f for f in FOLLOW_UPS if order.status in f.sources and _available(order, f)), None):
        changed, event_data = GUARDS[rule.action](order, {})
        _move(order, rule.action, Role.SYSTEM, SYSTEM, rule.target, rule.stamp, event_data, changed)


def _move(
    order: Order,
    action: str,
    role: Role,
    actor: Principal,
    target: Status,
    stamp: str | None,
    event_data: dict[str, Any],
    changed: list[str] | None = None,
) -> OrderEvent:
    from_status = order.status
    order.status = target
    fields = ["status", "updated_at", *(changed or [])]
    if stamp:
        setattr(order, stamp, timezone.now())
        fields.append(stamp)
    order.save(update_fields=fields)
    event = _record(order, action, role, actor, from_status, event_data)
    return event


def new_payment_reference() -> str:
    return "atl-" + secrets.token_hex(10)


def order_open(
    *,
    service: Service,
    actor: Principal,
    brief: str,
    reference_urls: list[str],
    payment_chain: str,
    x402_intent: X402Intent | None = None,
) -> Order:
    """Create an order in its first status (the table's `create` rows) and record it.

    An x402 order (`x402_intent`) is bought by the wallet that paid (`actor`), at the price the 402
    quoted, under the intent's reference.
    """
    if actor.agent is not None:
        buyer: dict[str, Any] = {"buyer_kind": BuyerKind.AGENT, "buyer_agent": actor.agent}
    else:
        kind = BuyerKind.X402 if x402_intent is not None else BuyerKind.HUMAN
        buyer = {"buyer_kind": kind, "buyer_wallet": actor.wallet, "buyer_chain": actor.chain}
    price = x402_intent.price_usd if x402_intent is not None else service.price_usd
    status = initial_status(service)
    with transaction.atomic():
        order = Order.objects.create(
            service=service,
            agent_id=service.agent_id,
            brief=brief,
            reference_urls=reference_urls,
            payment_chain=payment_chain,
            payment_reference=x402_intent.reference if x402_intent is not None else new_payment_reference(),
            status=status,
            quoted_price_usd=price if service.auto_quoted else None,
            platform_fee_usd=platform_fee(price) if service.auto_quoted else None,
            quoted_at=timezone.now() if service.auto_quoted else None,
            # Auto-quoted: the terms are bought now. Quote-priced: a draft until `quote` copies them again.
            price_type=service.price_type,
            **terms_of(service),
            **buyer,
        )
        requestlog.bind(order_id=order.id)
        _record(order, "create", Role.BUYER, actor, "", {"service_id": service.id})
    return order


# --- the workspace timer: the system's `expire` when the window closes ------------------------


def workspace_expire_if_due(order: Order) -> bool:
    """Close `order`'s workspace if its window has passed and it is still open: the system's
    `expire`. No query unless it is due. True when the order was (or just got) expired."""
    due = order.workspace_expires_at
    if order.status != Status.IN_PROGRESS or due is None or due > timezone.now():
        return False
    try:
        transition(order.id, "expire", SYSTEM, note="window closed")
    except Conflict:  # moved on meanwhile (the agent cancelled, say): nothing to close
        return False
    return True


@task()
def expire_workspace(order_id: str) -> str:
    """Close a workspace whose window has passed (`expire`: in_progress -> delivered). Safe to run
    any number of times; early (a clock ahead of ours), it queues itself again for the expiry."""
    order = Order.objects.select_related("service").filter(pk=order_id).first()
    if order is None:
        return "no such order"
    if workspace_expire_if_due(order):
        return "expired"
    if order.status == "in_progress" and order.workspace_expires_at is not None:
        # At least a second on: a worker clock a little ahead must not spin on this task.
        expire_workspace_at(order.id, max(order.workspace_expires_at, timezone.now() + timedelta(seconds=1)))
        return "not due yet"
    return "nothing to do"


def expire_workspace_at(order_id: str, at: datetime) -> None:
    """Queue `expire_workspace` for `at`, with the change that opens the workspace. A backend that
    cannot defer gets nothing: every request that touches the order checks the expiry anyway."""
    if expire_workspace.get_backend().supports_defer:
        enqueue(expire_workspace.using(run_after=at), order_id)
