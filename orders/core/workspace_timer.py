"""The workspace timer: a workspace closes (the system's `expire`: in_progress -> delivered) when
its window passes. Opening it queues `expire_workspace` for that moment (`queue_the_close`, on
orders.core.effects.workspace_opened), and every request that reads the order checks it too
(`workspace_expire_if_due`), so a late or missing worker never keeps a window open to its users.
A quota used up closes it at once instead (orders.workspaces).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.tasks import task
from django.utils import timezone

from lib.errors import Conflict
from lib.principal import SYSTEM
from lib.tasks import enqueue
from orders.core.table import Action
from orders.core.transitions import transition
from orders.models import Order, Status


def workspace_expire_if_due(order: Order) -> bool:
    """Close `order`'s workspace if its window has passed and it is still open: the system's
    `expire`. No query unless it is due. True when the order was (or just got) expired."""
    due = order.workspace_expires_at
    if order.status != Status.IN_PROGRESS or due is None or due > timezone.now():
        return False
    try:
        transition(order.id, Action.EXPIRE, SYSTEM, note="window closed")
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
    if order.status == Status.IN_PROGRESS and order.workspace_expires_at is not None:
        # At least a second on: a worker clock a little ahead must not spin on this task.
        expire_workspace_at(order.id, max(order.workspace_expires_at, timezone.now() + timedelta(seconds=1)))
        return "not due yet"
    return "nothing to do"


def expire_workspace_at(order_id: str, at: datetime) -> None:
    """Queue `expire_workspace` for `at`, with the change that opens the workspace. A backend that
    cannot defer gets nothing: every request that touches the order checks the expiry anyway."""
    if expire_workspace.get_backend().supports_defer:
        enqueue(expire_workspace.using(run_after=at), order_id)


def queue_the_close(sender: type[Order], order: Order, **kwargs: Any) -> None:
    """effects.workspace_opened (connected in orders.apps): queue the window's close with the
    opening, in its transaction."""
    if order.workspace_expires_at is not None:
        expire_workspace_at(order.id, order.workspace_expires_at)
