"""Looking an order up for a caller, in the style of Zulip's `access_*` helpers: the order and the
caller's role on it, or a 404 for a stranger exactly as for an order that does not exist, so an
order's id tells a stranger nothing. Every lookup of an order for a caller goes through here."""

from __future__ import annotations

from lib.errors import NotFound
from lib.principal import Principal
from orders.core.transitions import Role, locked, role_of
from orders.models import Order


def access_order(actor: Principal, order_id: str, *, lock: bool = False) -> tuple[Order, Role]:
    """The order (with its service and agent) and `actor`'s role on it; 404 for strangers.
    `lock=True`: the row locked for a change, inside the caller's transaction (transitions.locked)."""
    if lock:
        order = locked(order_id)
    else:
        found = Order.objects.select_related("service", "agent", "buyer_agent").filter(pk=order_id).first()
        if found is None:
            raise no_such_order()
        order = found
    return order, role_on(order, actor)


def role_on(order: Order, actor: Principal) -> Role:
    """`actor`'s role on `order`; 404 for strangers, as for an order that does not exist."""
    role = role_of(order, actor)
    if role is None:
        raise no_such_order()
    return role


def no_such_order() -> NotFound:
    return NotFound("No such order.", code="order_not_found")
