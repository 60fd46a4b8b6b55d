"""Background work on orders."""

from __future__ import annotations

from datetime import timedelta

from django.tasks import task
from django.utils import timezone

PAYMENT_RECHECK_DELAY = timedelta(seconds=15)
# About a day of looking: a transaction that is still not final by then is not coming.
PAYMENT_RECHECK_LIMIT = 24 * 60 * 4


@task()
def recheck_payment(order_id: str) -> str:
    from orders.services import payment_recheck  # services imports this module

    outcome = payment_recheck(order_id)
    if outcome in ("pending", "chain unavailable") and recheck_payment.get_backend().supports_defer:
        from payments.models import Payment

        checks = Payment.objects.filter(order_id=order_id, status="pending").values_list("checks", flat=True).first()
        if checks is not None and checks < PAYMENT_RECHECK_LIMIT:
            recheck_payment.using(run_after=timezone.now() + PAYMENT_RECHECK_DELAY).enqueue(order_id)
    return outcome
