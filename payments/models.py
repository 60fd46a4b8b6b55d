from __future__ import annotations

from typing import Any, TypeVar

from django.db import IntegrityError, models
from django.db.models import Q

from lib import ids
from lib.wallets import Chain


class AppendOnlyError(IntegrityError):
    """A money record edited or deleted: reconciliation rests on them, so a correction is a new
    journal (or a new row), never an edit. PostgreSQL's triggers (migration 0005) refuse the same."""


def _refuse(what: str) -> AppendOnlyError:
    return AppendOnlyError(f"{what} refused: money records are append-only; a correction is a new journal.")


class LedgerQuerySet(models.QuerySet["LedgerEntry"]):
    def update(self, **kwargs: Any) -> int:
        raise _refuse("UPDATE of ledger lines")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise _refuse("DELETE of ledger lines")


_Kept = TypeVar("_Kept", bound=models.Model)


class KeptQuerySet(models.QuerySet[_Kept]):
    """Rows that may change status (through their own function) but are never deleted."""

    def delete(self) -> tuple[int, dict[str, int]]:
        raise _refuse(f"DELETE of {self.model._meta.verbose_name_plural}")


class PaymentQuerySet(models.QuerySet["Payment"]):
    def delete(self) -> tuple[int, dict[str, int]]:
        # A pending claim holds no money (it is dropped when its transfer pays another order or
        # never arrives); a verified or unapplied payment is a money record.
        if self.exclude(status=PaymentStatus.PENDING).exists():
            raise _refuse("DELETE of verified or unapplied payments")
        return super().delete()


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
    # A buyer's claim of a transfer not final yet (or not on chain yet). It holds nothing: claims of
    # one hash by several orders may wait side by side; the transfer's own content decides which
    # order (if any) it pays once it is final.
    PENDING = "pending"
    VERIFIED = "verified"  # final, bound to its order, and applied: the order is paid by it
    # Final and in escrow, but applied to no order (underpaid, no or unknown reference, the order or
    # the x402 offer could no longer take it, nobody claimed it): returned to its sender.
    UNAPPLIED = "unapplied"


class UnappliedReason(models.TextChoices):
    UNDERPAID = "underpaid"
    ORDER_NOT_PAYABLE = "order_not_payable"
    NO_REFERENCE = "no_reference"
    UNKNOWN_REFERENCE = "unknown_reference"
    INTENT_EXPIRED = "intent_expired"
    UNCLAIMED = "unclaimed"
    TOO_OLD = "too_old"


ACCOUNTED = (PaymentStatus.VERIFIED, PaymentStatus.UNAPPLIED)
# The log_index of a row that accounts for a whole transaction, whichever logs it carries: Base rows
# recorded before payments were bound per log (and rows code from before then inserts during a
# rolling deploy, by the column's database default). No log of such a transaction pays anything else.
WHOLE_TRANSACTION = 2_147_483_647


class Payment(models.Model):
    """An on-chain transfer into escrow: claimed for an order (pending), applied to it (verified), or
    accounted for and returned (unapplied). A transfer is accounted for once, ever: the unique
    (chain, tx_hash, log_index) over verified and unapplied rows; pending claims hold nothing.

    On Base a transfer is one USDC Transfer log into escrow, so a bundle carrying several buyers'
    transfers pays each of their orders, and no log twice. A Solana transaction is one transfer
    (its escrow deltas summed, bound by its one memo): its rows keep log_index 0. Not null: in a
    unique constraint NULLs never collide, which would let a Solana transaction count twice."""

    id = models.CharField(primary_key=True, max_length=40, default=ids.payment_id, editable=False)
    # Unapplied transfers may name no order (no memo, an unknown one, an x402 offer never taken).
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="payments", null=True, blank=True)
    chain = models.CharField(max_length=10, choices=Chain.choices)
    tx_hash = models.CharField(max_length=128)
    # Base: the index in its block of the Transfer log that paid (unknown, 0, while only claimed).
    # Inserted without it (code from before this column, during a rolling deploy): the whole transaction.
    log_index = models.PositiveIntegerField(default=0, db_default=WHOLE_TRANSACTION)
    status = models.CharField(max_length=10, choices=PaymentStatus.choices, default=PaymentStatus.VERIFIED)
    # Pending: the proven payer on Base (empty on Solana, where the memo binds). Otherwise the wallet
    # the USDC came from, where any return goes.
    payer = models.CharField(max_length=64)
    amount_base_units = models.BigIntegerField(default=0)
    due_base_units = models.BigIntegerField(default=0)  # unapplied: what the order or offer asked for
    reason = models.CharField(max_length=20, choices=UnappliedReason.choices, blank=True)
    # Solana: the token account the USDC left (where a return or refund goes while it is open), and
    # whether its owner (`payer`) signed the transaction. A swap route or a vault program moves USDC
    # out of an account whose owner never signed: money back to it would go to the pool, so it is held
    # for staff, with the transaction's signers as the other candidates.
    source_account = models.CharField(max_length=64, blank=True)
    payer_signed = models.BooleanField(default=True)
    signers = models.JSONField(default=list, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    checks = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PaymentQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["chain", "tx_hash", "log_index"],
                condition=Q(status__in=["verified", "unapplied"]),
                name="payment_log_accounted_once",
            ),
            models.UniqueConstraint(
                fields=["order", "chain", "tx_hash"], condition=Q(status="pending"), name="payment_claim_once"
            ),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(amount_base_units__gt=0, verified_at__isnull=False),
                name="payment_verified_has_amount",
            ),
            models.CheckConstraint(
                condition=~Q(status="verified") | Q(order__isnull=False), name="payment_verified_has_order"
            ),
            models.CheckConstraint(
                condition=Q(status="unapplied", reason__gt="") | (~Q(status="unapplied") & Q(reason="")),
                name="payment_unapplied_has_reason",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="payment_status_idx")]
        permissions = [("return_payment", "Can return an unapplied transfer to its sender")]

    def __str__(self) -> str:
        return f"{self.chain}:{self.tx_hash}#{self.log_index}" if self.log_index else f"{self.chain}:{self.tx_hash}"

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        if self.status != PaymentStatus.PENDING:
            raise _refuse("DELETE of a verified or unapplied payment")
        return super().delete(*args, **kwargs)


class LedgerAccount(models.TextChoices):
    ESCROW_WALLET = "escrow_wallet"  # asset: USDC held by the escrow wallet
    ORDER_ESCROW = "order_escrow"  # liability: what the order's buyer paid in, not yet released
    AGENT_PAYABLE = "agent_payable"  # liability: owed to the agent, until its payout is sent
    BUYER_REFUNDABLE = "buyer_refundable"  # liability: owed back to the buyer, until the refund is sent
    PLATFORM_REVENUE = "platform_revenue"  # the 10% fee
    # liability: arrived in escrow, applied to no order, owed back to its sender until returned
    UNAPPLIED_REFUNDABLE = "unapplied_refundable"
    # equity: what the escrow wallet already held when the ledger began (`reconcile --record-opening`)
    OPENING_BALANCE = "opening_balance"


class LedgerKind(models.TextChoices):
    ESCROW_IN = "escrow_in"
    RELEASE = "release"  # price split into agent payable and fee
    REFUND_DUE = "refund_due"  # escrow (or part of it) owed back to the buyer
    OVERPAYMENT_DUE = "overpayment_due"  # what was paid beyond the price, owed back
    PAYOUT_OUT = "payout_out"
    REFUND_OUT = "refund_out"
    UNAPPLIED_IN = "unapplied_in"  # a transfer into escrow that pays no order
    RETURN_OUT = "return_out"  # that transfer sent back
    OPENING = "opening"  # the escrow's balance before the ledger began, once per chain


class LedgerEntry(models.Model):
    """Double-entry rows in USDC base units: debits positive, credits negative; each journal sums to zero.
    An order's journals name the order; an unapplied transfer's name its payment (and no order)."""

    journal = models.CharField(max_length=40, db_index=True)
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, related_name="ledger_entries", null=True, blank=True
    )
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="ledger_entries", null=True, blank=True)
    kind = models.CharField(max_length=20, choices=LedgerKind.choices)
    account = models.CharField(max_length=20, choices=LedgerAccount.choices)
    chain = models.CharField(max_length=10, choices=Chain.choices)
    amount = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = LedgerQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "ledger entries"
        constraints = [
            # A journal kind posts once per order (or unapplied transfer): a retried release or
            # payout cannot post twice.
            models.UniqueConstraint(fields=["order", "kind", "account"], name="ledger_posts_once"),
            models.UniqueConstraint(fields=["payment", "kind", "account"], name="ledger_unapplied_posts_once"),
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_amount_nonzero"),
            models.CheckConstraint(
                condition=(Q(order__isnull=True) ^ Q(payment__isnull=True))
                | Q(kind="opening", order__isnull=True, payment__isnull=True),
                name="ledger_names_order_or_payment",
            ),
            models.UniqueConstraint(
                fields=["chain", "account"], condition=Q(kind="opening"), name="ledger_opening_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.account} {self.amount}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise _refuse("UPDATE of a ledger line")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise _refuse("DELETE of a ledger line")


class TransferKind(models.TextChoices):
    PAYOUT = "payout"
    REFUND = "refund"
    RETURN = "return"  # an unapplied transfer sent back to its sender


class TransferStatus(models.TextChoices):
    PENDING = "pending"  # not signed yet (or its previous signing expired unsent)
    SIGNED = "signed"  # signed bytes persisted; sending or waiting for finality
    CONFIRMED = "confirmed"
    FAILED = "failed"  # cannot be sent (no wallet, RPC error) or landed and failed: visible, retryable
    # Not sent, and not sent by itself: sending would cost the escrow more than a fee (the recipient
    # has no USDC account to receive it) or could reach the wrong person (the paying account's owner
    # did not sign). Shown on the order and in the transfers queue until the recipient has an account
    # (looked at again by the scheduler) or staff decide.
    HELD = "held"


class OutgoingTransfer(models.Model):
    """A payout to the agent, a refund to the buyer (one of each kind per order, ever), or the return
    of an unapplied transfer to its sender (one per unapplied payment, ever).

    Signed bytes are stored before the first send; a retry re-sends the same bytes, so a worker
    dying between signing and sending cannot pay twice.
    """

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="transfers", null=True, blank=True)
    payment = models.OneToOneField(
        Payment, on_delete=models.PROTECT, related_name="return_transfer", null=True, blank=True
    )
    kind = models.CharField(max_length=10, choices=TransferKind.choices)
    chain = models.CharField(max_length=10, choices=Chain.choices)
    to_address = models.CharField(max_length=64, blank=True)
    # Solana: the token account a return or refund goes to while it is open (the one the USDC came
    # from); otherwise the owner's existing associated account. Never an account created by us.
    to_token_account = models.CharField(max_length=64, blank=True)
    amount_base_units = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=TransferStatus.choices, default=TransferStatus.PENDING)
    tx_hash = models.CharField(max_length=128, blank=True)
    raw_tx = models.BinaryField(null=True, blank=True)
    valid_until = models.BigIntegerField(null=True, blank=True)
    nonce = models.BigIntegerField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    held_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    objects = KeptQuerySet["OutgoingTransfer"].as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["order", "kind"], condition=Q(kind__in=["payout", "refund"]), name="transfer_once_per_order"
            ),
            models.CheckConstraint(condition=Q(amount_base_units__gt=0), name="transfer_amount_positive"),
            models.CheckConstraint(
                condition=(Q(kind="return") & Q(payment__isnull=False))
                | (~Q(kind="return") & Q(order__isnull=False, payment__isnull=True)),
                name="transfer_names_its_source",
            ),
        ]
        indexes = [models.Index(fields=["status", "updated_at"], name="transfer_status_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount_base_units} to {self.to_address or '?'} ({self.status})"

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise _refuse("DELETE of an outgoing transfer")


class HotWalletNonce(models.Model):
    """The next nonce of an EVM escrow hot wallet, allocated under this row's lock."""

    address = models.CharField(primary_key=True, max_length=42)
    next_nonce = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.address}: {self.next_nonce}"


class ScanCursor(models.Model):
    """How far the escrow scan has decided every inbound transfer, per chain (Solana: a signature;
    Base: a block number). Everything after it is looked at again on the next scan."""

    chain = models.CharField(primary_key=True, max_length=10, choices=Chain.choices)
    position = models.CharField(max_length=128, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.chain} after {self.position or 'the start'}"


class Reconciliation(models.Model):
    """One run of `manage.py reconcile` for one chain: the escrow wallet's USDC on chain against the
    ledger, and the transactions that explain any difference."""

    chain = models.CharField(max_length=10, choices=Chain.choices)
    ran_at = models.DateTimeField(auto_now_add=True)
    on_chain = models.BigIntegerField()
    ledger = models.BigIntegerField()
    explained = models.JSONField(default=list)  # [{"tx_hash", "amount", "why"}], amounts signed
    unexplained = models.BigIntegerField()
    # The hot wallet's balance of the chain's own coin (lamports, wei), which pays every payout's fee:
    # a metric, and a readiness warning below settings.HOT_WALLET_FEE_FLOOR.
    fee_balance = models.DecimalField(max_digits=40, decimal_places=0, null=True, blank=True)

    objects = KeptQuerySet["Reconciliation"].as_manager()

    class Meta:
        indexes = [models.Index(fields=["chain", "-ran_at"], name="reconciliation_latest_idx")]

    def __str__(self) -> str:
        return f"{self.chain} at {self.ran_at:%Y-%m-%d %H:%M}: {'clean' if self.is_clean else self.unexplained}"

    @property
    def is_clean(self) -> bool:
        return self.unexplained == 0

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise _refuse("DELETE of a reconciliation")
