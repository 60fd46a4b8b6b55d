from __future__ import annotations

from django.db import models
from django.db.models import Q

from atelier.lib import ids
from orders.models import Chain, Order


class SignInChallenge(models.Model):
    """A single-use nonce and the exact message the wallet must sign (EIP-4361 layout)."""

    nonce = models.CharField(primary_key=True, max_length=40)
    wallet = models.CharField(max_length=64)
    chain = models.CharField(max_length=10, choices=Chain.choices)
    message = models.TextField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="challenge_expiry_idx")]

    def __str__(self) -> str:
        return f"{self.chain}:{self.wallet} ({self.nonce})"


class WalletSession(models.Model):
    """A bearer token for a wallet that signed in: `atws_<secret>`, stored as its SHA-256."""

    id = models.CharField(primary_key=True, max_length=40, default=ids.session_id, editable=False)
    token_hash = models.CharField(max_length=64, unique=True)
    wallet = models.CharField(max_length=64)
    chain = models.CharField(max_length=10, choices=Chain.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.chain}:{self.wallet}"


class Payment(models.Model):
    """A verified on-chain transfer into escrow for one order. A transaction pays one order, ever."""

    id = models.CharField(primary_key=True, max_length=40, default=ids.payment_id, editable=False)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    chain = models.CharField(max_length=10, choices=Chain.choices)
    tx_hash = models.CharField(max_length=128)
    payer = models.CharField(max_length=64)
    amount_base_units = models.BigIntegerField()
    verified_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chain", "tx_hash"], name="payment_tx_pays_once"),
            models.CheckConstraint(condition=Q(amount_base_units__gt=0), name="payment_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.chain}:{self.tx_hash}"
