"""Staff are told of disputes: a new dispute, and an order newly overdue (the buyer may now dispute
it or cancel), by one email to every active staff member holding `resolve_dispute`. The scheduler's
`announce_to_staff` job runs this every minute, so a burst (ten disputes in a minute) is one email.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from orders.models import AWAITING_DELIVERY, Order, OrderEvent, StaffNotice, Status

RESOLVE_PERMISSION = "orders.resolve_dispute"
# Older than this is not news: a first run (or one after an outage) does not mail the whole history.
LOOKBACK = timedelta(days=1)


def staff_to_tell() -> list[str]:
    users = (
        get_user_model()
        .objects.with_perm(RESOLVE_PERMISSION, backend="django.contrib.auth.backends.ModelBackend")
        .filter(is_staff=True)
        .exclude(email="")
    )
    return sorted({user.email for user in users})


def announce_to_staff(now: datetime | None = None) -> int:
    """Tell staff, in one email, of every dispute and newly overdue order not told yet. Returns how
    many were in it (0: no email). The notices are recorded in the same transaction; the email is
    sent after it commits, so a failed run tells nobody twice and a rolled-back one tells nobody."""
    now = now or timezone.now()
    since = now - LOOKBACK
    with transaction.atomic():
        told = set(StaffNotice.objects.filter(at__gte=since - LOOKBACK).values_list("order_id", "kind", "at"))
        disputes = [
            event
            for event in OrderEvent.objects.filter(action="dispute", created_at__gte=since)
            .select_related("order", "order__agent")
            .order_by("created_at")
            if event.order.status == Status.DISPUTED
            and (event.order_id, StaffNotice.Kind.DISPUTE, event.created_at) not in told
        ]
        overdue = [
            order
            for order in Order.objects.filter(status__in=AWAITING_DELIVERY, paid_at__isnull=False)
            .select_related("agent")
            .order_by("paid_at")
            if order.overdue
            and order.due_at is not None
            and order.due_at >= since
            and (order.id, StaffNotice.Kind.OVERDUE, order.due_at) not in told
        ]
        if not disputes and not overdue:
            return 0
        StaffNotice.objects.bulk_create(
            [StaffNotice(order_id=e.order_id, kind=StaffNotice.Kind.DISPUTE, at=e.created_at) for e in disputes]
            + [StaffNotice(order=o, kind=StaffNotice.Kind.OVERDUE, at=o.due_at) for o in overdue if o.due_at],
            ignore_conflicts=True,
        )
        subject, body = _email(disputes, overdue)
        recipients = staff_to_tell()
        if recipients:
            transaction.on_commit(lambda: send_mail(subject, body, None, recipients))
    return len(disputes) + len(overdue)


def _email(disputes: list[OrderEvent], overdue: list[Order]) -> tuple[str, str]:
    parts = []
    if disputes:
        parts.append(f"{len(disputes)} new dispute{'s' if len(disputes) != 1 else ''}")
    if overdue:
        parts.append(f"{len(overdue)} order{'s' if len(overdue) != 1 else ''} overdue")
    lines = []
    for event in disputes:
        order = event.order
        lines.append(
            f"Disputed {event.created_at:%Y-%m-%d %H:%M} UTC: {order.id}, ${order.quoted_price_usd}, "
            f"{order.agent.name}. “{order.dispute_reason[:200]}”\n"
            f"  Resolve: {settings.PUBLIC_URL}{reverse('admin:orders_dispute_resolve', args=[order.id])}"
        )
    for order in overdue:
        lines.append(
            f"Overdue since {order.due_at:%Y-%m-%d %H:%M} UTC: {order.id}, ${order.quoted_price_usd}, "
            f"{order.agent.name}, nothing delivered ({order.status.replace('_', ' ')}); the buyer may "
            f"now dispute it.\n  Order: {settings.PUBLIC_URL}{reverse('admin:orders_order_change', args=[order.id])}"
        )
    queue = f"{settings.PUBLIC_URL}{reverse('admin:orders_dispute_changelist')}"
    body = "\n\n".join(lines) + f"\n\nThe queue, the longest waiting first: {queue}\n"
    return f"Atelier: {' and '.join(parts)}", body
