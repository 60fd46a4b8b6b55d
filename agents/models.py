from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import models
from django.db.models import Q

from lib import ids

if TYPE_CHECKING:  # the shapes read this module's choices at run time
    from agents.shapes import AgentPrivateData, AgentPublicData, ServiceData


class PayoutChain(models.TextChoices):
    SOLANA = "solana", "Solana"
    BASE = "base", "Base"


class Agent(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=ids.agent_id, editable=False)
    name = models.CharField(max_length=60)
    slug = models.SlugField(max_length=80, unique=True)
    description = models.TextField(max_length=1000, blank=True)
    endpoint_url = models.URLField(max_length=500, blank=True, help_text="Where webhooks are sent.")
    webhook_secret = models.CharField(max_length=80, editable=False)
    payout_chain = models.CharField(max_length=10, choices=PayoutChain.choices, default=PayoutChain.SOLANA)
    payout_wallet = models.CharField(max_length=64, blank=True, help_text="Solana address.")
    payout_address_base = models.CharField(max_length=42, blank=True, help_text="EVM address on Base.")
    avg_rating = models.DecimalField(max_digits=3, decimal_places=2, default=Decimal("0.00"))
    rating_count = models.PositiveIntegerField(default=0)
    rating_total = models.PositiveIntegerField(default=0)
    completed_orders = models.PositiveIntegerField(default=0)
    last_poll_at = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(avg_rating__gte=0, avg_rating__lte=5), name="agent_avg_rating_0_5"),
            models.CheckConstraint(condition=Q(payout_chain__in=PayoutChain.values), name="agent_payout_chain_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    def to_public_dict(self) -> AgentPublicData:
        return {
            "id": self.id,
            "name": self.name,
            "slug": self.slug,
            "description": self.description,
            "avg_rating": str(self.avg_rating),
            "rating_count": self.rating_count,
            "completed_orders": self.completed_orders,
            "created_at": self.created_at.isoformat(),
        }

    def to_private_dict(self) -> AgentPrivateData:
        return {
            **self.to_public_dict(),
            "endpoint_url": self.endpoint_url,
            "payout_chain": self.payout_chain,
            "payout_wallet": self.payout_wallet,
            "payout_address_base": self.payout_address_base,
            "last_poll_at": self.last_poll_at.isoformat() if self.last_poll_at else None,
        }


class ApiKey(models.Model):
    """`atelier_<prefix>_<secret>`: the prefix finds the row, the SHA-256 of the whole key proves it."""

    id = models.CharField(primary_key=True, max_length=40, default=ids.api_key_id, editable=False)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="api_keys")
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    label = models.CharField(max_length=60, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"atelier_{self.prefix}_… ({self.agent_id})"


class PriceType(models.TextChoices):
    FIXED = "fixed", "Fixed price"
    QUOTE = "quote", "Quoted per order"
    WEEKLY = "weekly", "Weekly subscription"
    MONTHLY = "monthly", "Monthly subscription"


class Service(models.Model):
    id = models.CharField(primary_key=True, max_length=40, default=ids.service_id, editable=False)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="services")
    title = models.CharField(max_length=80)
    description = models.TextField(max_length=1000)
    category = models.CharField(max_length=40)
    price_usd = models.DecimalField(max_digits=9, decimal_places=2)
    price_type = models.CharField(max_length=10, choices=PriceType.choices)
    quota_limit = models.PositiveIntegerField(default=0)
    max_revisions = models.PositiveSmallIntegerField(default=3)
    turnaround_hours = models.PositiveIntegerField(default=48)
    active = models.BooleanField(default=True)
    avg_rating = models.DecimalField(max_digits=3, decimal_places=2, default=Decimal("0.00"))
    rating_count = models.PositiveIntegerField(default=0)
    rating_total = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["active", "category", "id"], name="service_catalogue_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(price_type__in=PriceType.values), name="service_price_type_valid"),
            models.CheckConstraint(condition=Q(price_usd__gte=0, price_usd__lte=1_000_000), name="service_price_range"),
            models.CheckConstraint(condition=Q(max_revisions__lte=10), name="service_max_revisions_0_10"),
            models.CheckConstraint(condition=Q(avg_rating__gte=0, avg_rating__lte=5), name="service_avg_rating_0_5"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def auto_quoted(self) -> bool:
        """Every price type but `quote` has its price known up front."""
        return self.price_type != PriceType.QUOTE

    @property
    def is_workspace(self) -> bool:
        return self.price_type in (PriceType.WEEKLY, PriceType.MONTHLY) or self.quota_limit > 0

    def to_dict(self) -> ServiceData:
        return {
            "id": self.id,
            "agent_id": self.agent_id,
            "title": self.title,
            "description": self.description,
            "category": self.category,
            "price_usd": str(self.price_usd),
            "price_type": self.price_type,
            "quota_limit": self.quota_limit,
            "max_revisions": self.max_revisions,
            "turnaround_hours": self.turnaround_hours,
            "active": self.active,
            "avg_rating": str(self.avg_rating),
            "rating_count": self.rating_count,
            "created_at": self.created_at.isoformat(),
        }
