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


class PaymentStatus(models.TextChoices):
    PENDING = "pending"  # submitted, not final yet; holds the hash while a task re-checks it
    VERIFIED = "verified"


class Payment(models.Model):
    """An on-chain transfer into escrow for one order. A transaction pays one order, ever: the
    unique (chain, tx_hash) is held from submission, so two orders racing one hash get one row."""

    id = models.CharField(primary_key=True, max_length=40, default=ids.payment_id, editable=False)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    chain = models.CharField(max_length=10, choices=Chain.choices)
    tx_hash = models.CharField(max_length=128)
    status = models.CharField(max_length=10, choices=PaymentStatus.choices, default=PaymentStatus.VERIFIED)
    payer = models.CharField(max_length=64)
    amount_base_units = models.BigIntegerField(default=0)
    verified_at = models.DateTimeField(null=True, blank=True)
    checks = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chain", "tx_hash"], name="payment_tx_pays_once"),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(amount_base_units__gt=0, verified_at__isnull=False),
                name="payment_verified_has_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.chain}:{self.tx_hash}"


class LedgerAccount(models.TextChoices):
    ESCROW_WALLET = "escrow_wallet"  # asset: USDC held by the escrow wallet
    ORDER_ESCROW = "order_escrow"  # liability: what the order's buyer paid in, not yet released
    AGENT_PAYABLE = "agent_payable"  # liability: owed to the agent, until its payout is sent
    BUYER_REFUNDABLE = "buyer_refundable"  # liability: owed back to the buyer, until the refund is sent
    PLATFORM_REVENUE = "platform_revenue"  # the 10% fee


class LedgerKind(models.TextChoices):
    ESCROW_IN = "escrow_in"
    RELEASE = "release"  # price split into agent payable and fee
    REFUND_DUE = "refund_due"  # escrow (or part of it) owed back to the buyer
    OVERPAYMENT_DUE = "overpayment_due"  # what was paid beyond the price, owed back
    PAYOUT_OUT = "payout_out"
    REFUND_OUT = "refund_out"


class LedgerEntry(models.Model):
    """Double-entry rows in USDC base units: debits positive, credits negative; each journal sums to zero."""

    journal = models.CharField(max_length=40, db_index=True)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="ledger_entries")
    kind = models.CharField(max_length=20, choices=LedgerKind.choices)
    account = models.CharField(max_length=20, choices=LedgerAccount.choices)
    chain = models.CharField(max_length=10, choices=Chain.choices)
    amount = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # A journal kind posts once per order: a retried release or payout cannot post twice.
            models.UniqueConstraint(fields=["order", "kind", "account"], name="ledger_posts_once"),
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_amount_nonzero"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.account} {self.amount}"


class TransferKind(models.TextChoices):
    PAYOUT = "payout"
    REFUND = "refund"


class TransferStatus(models.TextChoices):
    PENDING = "pending"  # not signed yet (or its previous signing expired unsent)
    SIGNED = "signed"  # signed bytes persisted; sending or waiting for finality
    CONFIRMED = "confirmed"
    FAILED = "failed"  # cannot be sent (no wallet, RPC error) or landed and failed: visible, retryable


class OutgoingTransfer(models.Model):
    """A payout to the agent or a refund to the buyer. One of each kind per order, ever.

    Signed bytes are stored before the first send; a retry re-sends the same bytes, so a worker
    dying between signing and sending cannot pay twice.
    """

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="transfers")
    kind = models.CharField(max_length=10, choices=TransferKind.choices)
    chain = models.CharField(max_length=10, choices=Chain.choices)
    to_address = models.CharField(max_length=64, blank=True)
    amount_base_units = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=TransferStatus.choices, default=TransferStatus.PENDING)
    tx_hash = models.CharField(max_length=128, blank=True)
    raw_tx = models.BinaryField(null=True, blank=True)
    valid_until = models.BigIntegerField(null=True, blank=True)
    nonce = models.BigIntegerField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order", "kind"], name="transfer_once_per_order"),
            models.CheckConstraint(condition=Q(amount_base_units__gt=0), name="transfer_amount_positive"),
        ]
        indexes = [models.Index(fields=["status", "updated_at"], name="transfer_status_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount_base_units} to {self.to_address or '?'} ({self.status})"


class HotWalletNonce(models.Model):
    """The next nonce of an EVM escrow hot wallet, allocated under this row's lock."""

    address = models.CharField(primary_key=True, max_length=42)
    next_nonce = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.address}: {self.next_nonce}"
