"""The order state machine's engine: the one function that moves an order, by the table
(orders.core.table) and its effects (orders.core.effects). Nothing else assigns `Order.status`.
The rest of the project imports the state machine from here (`__all__`); the workspace timer,
which moves orders through this engine, is orders.core.workspace_timer.

`transition(order_id, action, actor, **data)`:
- locks the order row (`select_for_update`) inside `transaction.atomic` and re-reads it,
- finds the caller's role on this order (a stranger gets 404: orders are never revealed),
- checks the rule for (action, role) and the source status (403 wrong role, 409 wrong status), and
  the row's conditions (`Rule.only`, `Rule.when`; 409 with each condition's own code),
- treats a repeat of the last action with the same data as a no-op (safe client retries),
- records the step the row implies first (paying a quote accepts it),
- runs the row's effect (deliverables, counters, the settlement), saves with `update_fields`,
- writes an OrderEvent (with its webhook deliveries, and its after-commit announcement:
  `orders.core.events.record`),
- then takes the system's follow-ups of the new status (`Rule.follows`), in the same transaction:
  a paid workspace opens; a delivered order with no approval step (agent or x402 buyer) is released.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from agents.models import Service
from lib import requestlog
from lib.errors import Conflict, Forbidden, NotFound, ValidationFailed
from lib.prepared import Prepared
from lib.principal import SYSTEM, Principal
from orders.core import events
from orders.core.effects import platform_fee, split_amount_check, terms_of
from orders.core.table import ACTIONS, TABLE, Action, Rule, settles_on_delivery
from orders.models import BuyerKind, Order, OrderEvent, Role, Status, X402Intent

__all__ = [
    "ACTIONS",
    "TABLE",
    "Action",
    "Role",
    "Rule",
    "allowed_actions",
    "check",
    "initial_status",
    "locked",
    "new_payment_reference",
    "order_open",
    "platform_fee",
    "role_of",
    "settles_on_delivery",
    "split_amount_check",
    "transition",
]


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


def allowed_actions(order: Order, role: Role | None) -> list[str]:
    """What `role` may do to `order` now: the rows for its status whose conditions hold."""
    actions = [
        rule.action for rule in TABLE if rule.actor == role and order.status in rule.sources and _available(order, rule)
    ]
    return list(dict.fromkeys(actions))


def _available(order: Order, rule: Rule) -> bool:
    return all(condition.holds(order) for condition in rule.conditions)


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
    follow_ups = {f.target for f in TABLE if f.follows and rule.target in f.sources}
    if order.status != rule.target and order.status not in follow_ups:
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
    return any(rule.follows and rule.action == action for rule in TABLE)


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


def _check_conditions(order: Order, rule: Rule, role: Role) -> None:
    failed = next((condition for condition in rule.conditions if not condition.holds(order)), None)
    if failed is not None:
        message, details = failed.refusal(order, allowed_actions(order, role))
        raise Conflict(message, code=failed.code, details=details)


def check(order: Order, action: str, actor: Principal) -> Role:
    """Raise what `transition` would raise for this action now, without locking or writing.
    For actions that must do slow work (an on-chain check) before the real transition."""
    role, rule = _rule_for(order, action, actor)
    _check_source(order, rule, role)
    _check_conditions(order, rule, role)
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
        _check_conditions(order, rule, role)
        if rule.implies is not None:
            step = next(r for r in TABLE if r.action == rule.implies and r.actor == role and order.status in r.sources)
            _move(order, step.action, role, actor, step.target, step.stamp, {})
        changed, event_data = rule.effect(order, data)
        _move(order, rule.action, role, actor, rule.target, rule.stamp, event_data, changed)
        _follow_up(order)
    return order


def _follow_up(order: Order) -> None:
    """Take the system's follow-ups (`Rule.follows`) of the status `order` just arrived in, in order."""
    while rule := next((f for f in TABLE if f.follows and order.status in f.sources and _available(order, f)), None):
        changed, event_data = rule.effect(order, {})
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
