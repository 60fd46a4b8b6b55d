"""Background work on orders."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.tasks import task
from django.utils import timezone

from atelier.lib.tasks import enqueue, retry_later

PAYMENT_RECHECK_DELAY = timedelta(seconds=15)
PAYMENT_RECHECK_CAP = timedelta(minutes=5)
# About a day of looking (backoff caps at 5 minutes, 2.5 on average with jitter): a transaction that
# is still not final by then is not coming.
PAYMENT_RECHECK_LIMIT = 24 * 60 // 2


@task()
def recheck_payment(order_id: str) -> str:
    from orders.paying import payment_recheck  # paying imports this module

    outcome = payment_recheck(order_id)
    if outcome in ("pending", "chain unavailable"):
        from payments.models import Payment

        claims = Payment.objects.filter(order_id=order_id, status="pending").order_by("-checks")
        checks = claims.values_list("checks", flat=True).first()
        if checks is not None and checks < PAYMENT_RECHECK_LIMIT:
            retry_later(
                recheck_payment, order_id, attempt=checks + 1, base=PAYMENT_RECHECK_DELAY, cap=PAYMENT_RECHECK_CAP
            )
    return outcome


@task()
def expire_workspace(order_id: str) -> str:
    """Close a workspace whose window has passed (`expire`: in_progress -> delivered). Safe to run
    any number of times; early (a clock ahead of ours), it queues itself again for the expiry."""
    from orders.models import Order
    from orders.workspaces import workspace_expire_if_due  # workspaces imports transitions, which imports this

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
