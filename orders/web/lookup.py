"""An order as a request shows it: the read (`queries.order_for`, which writes nothing) after the
write a read owes. A workspace whose window has passed is closed on sight, so a late or stopped
expiry task never shows (or keeps) a workspace open; no query unless one is due."""

from __future__ import annotations

from lib.principal import Principal
from orders.core.transitions import Role
from orders.core.workspace_timer import workspace_expire_if_due
from orders.models import Order
from orders.reads import queries


def order_for(actor: Principal, order_id: str, *, details: bool = True) -> tuple[Order, Role]:
    """The order and the caller's role on it (404 for strangers), its workspace closed if due."""
    order, role = queries.order_for(actor, order_id, details=details)
    if workspace_expire_if_due(order):
        order, role = queries.order_for(actor, order_id, details=details)
    return order, role
