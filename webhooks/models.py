from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models
from django.db.models import Q

from agents.models import Agent
from lib import ids

if TYPE_CHECKING:  # the shapes read this module's choices at run time
    from webhooks.shapes import WebhookDeliveryData


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for its first or next attempt
    DELIVERED = "delivered", "Delivered"  # the endpoint answered 2xx
    FAILED = "failed", "Failed"  # out of retries (or no endpoint); redeliver to try again


class WebhookDelivery(models.Model):
    """One event for one agent: what is sent (fixed when the event happens) and how it went.

    The id is the delivery id the receiver sees (`webhook-id`, `X-Atelier-Delivery-Id`), the same on
    every attempt, so a receiver can drop repeats.
    """

    id = models.CharField(primary_key=True, max_length=40, default=ids.webhook_delivery_id, editable=False)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="webhook_deliveries")
    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="webhook_deliveries")
    order_event = models.ForeignKey("orders.OrderEvent", on_delete=models.CASCADE, related_name="webhook_deliveries")
    event = models.CharField(max_length=40)  # "order.paid"
    payload = models.JSONField()  # {event, order_id, data}: the body, the same on every attempt
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_url = models.CharField(max_length=500, blank=True, help_text="The endpoint of the last attempt.")
    # Pending: when the next attempt may run (while an attempt is in flight, the end of its lease).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Retries stop here: about a day after the event (or after a redeliver).
    retry_until = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        indexes = [
            # GET /api/agents/me/webhooks: one agent's deliveries, newest first, paged by id.
            models.Index(fields=["agent", "id"], name="webhook_agent_idx"),
            models.Index(fields=["status", "next_attempt_at"], name="webhook_status_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="webhook_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.agent_id} ({self.status})"

    def to_dict(self) -> WebhookDeliveryData:
        return {
            "id": self.id,
            "event": self.event,
            "order_id": self.order_id,
            "status": self.status,
            "attempts": self.attempts,
            "last_status_code": self.last_status_code,
            "last_error": self.last_error or None,
            "last_attempt_at": self.last_attempt_at.isoformat() if self.last_attempt_at else None,
            "next_attempt_at": (
                self.next_attempt_at.isoformat()
                if self.next_attempt_at and self.status == DeliveryStatus.PENDING
                else None
            ),
            "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
            "created_at": self.created_at.isoformat(),
            "payload": self.payload,
        }
