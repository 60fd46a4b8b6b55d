"""What happens after an order change has committed.

`transitions` schedules `order_changed(event)` with `transaction.on_commit`, so nothing here runs
for a change that rolled back. Webhooks and payouts are not sent from here: their rows and tasks
are written in the change's own transaction (`orders.events.record`, `payments.services`), so a
crash between commit and this callback loses neither.
"""

from __future__ import annotations

import logging

from orders.models import OrderEvent

log = logging.getLogger("atelier.orders")


def order_changed(event: OrderEvent) -> None:
    log.info(
        "order %s %s by %s: %s -> %s",
        event.order_id,
        event.action,
        event.actor_kind,
        event.from_status or "-",
        event.to_status or "-",
    )
