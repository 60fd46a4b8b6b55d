"""Webhook delivery in the background."""

from __future__ import annotations

from django.tasks import task


@task()
def deliver_webhook(delivery_id: str, attempt: int = 1) -> str:
    """One attempt at a delivery; on failure it queues the next itself (see webhooks.services)."""
    from webhooks.services import delivery_attempt  # services imports this module

    return delivery_attempt(delivery_id, attempt=attempt)
