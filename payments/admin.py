from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Case, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse

from lib.wallets import Chain
from payments.models import (
    LedgerEntry,
    OutgoingTransfer,
    Payment,
    PaymentStatus,
    Reconciliation,
    SignInChallenge,
    TransferStatus,
    WalletSession,
)
from payments.services import paying_payment, payment_return
from payments.tasks import retry_transfer, send_held_to


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class MoneyRecordAdmin(ReadOnlyAdmin):
    """Payments, transfers, ledger lines, reconciliations: append-only for everyone, superusers too
    (payments.models.AppendOnlyError, and PostgreSQL triggers). A correction is a new journal."""

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(MoneyRecordAdmin):
    """Claims, payments and unapplied transfers. Unapplied ones are returned by themselves unless
    they are dust; `return_to_sender` returns those on request."""

    list_display = (
        "id",
        "order",
        "chain",
        "status",
        "reason",
        "tx_hash",
        "log_index",
        "payer",
        "amount_base_units",
        "verified_at",
    )
    list_filter = ("chain", "status", "reason")
    search_fields = ("tx_hash", "order__id", "payer")
    actions = ("return_to_sender",)

    def has_return_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payments.return_payment")

    @admin.action(description="Return the selected unapplied transfers to their senders", permissions=["return"])
    def return_to_sender(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        returned = 0
        with transaction.atomic():
            for payment in queryset.filter(status=PaymentStatus.UNAPPLIED, return_transfer__isnull=True):
                payment_return(payment)
                returned += 1
        self.message_user(request, f"{returned} return(s) queued.", messages.SUCCESS)


@admin.register(WalletSession)
class WalletSessionAdmin(ReadOnlyAdmin):
    list_display = ("id", "chain", "wallet", "created_at", "expires_at", "revoked_at")
    list_filter = ("chain",)
    search_fields = ("wallet",)
    exclude = ("token_hash",)


@admin.register(SignInChallenge)
class SignInChallengeAdmin(ReadOnlyAdmin):
    list_display = ("nonce", "chain", "wallet", "expires_at", "used_at")
    list_filter = ("chain",)
    search_fields = ("wallet",)


@admin.register(OutgoingTransfer)
class OutgoingTransferAdmin(MoneyRecordAdmin):
    """Payouts, refunds and returns: status, the chain transaction, the last error. Failed and held
    ones wait for staff: retry a failed one; a held one is sent once its recipient has a USDC account
    (by itself, or on retry), or, held because the paying account's owner did not sign, to the
    transaction's signer when staff send it there."""

    list_display = (
        "id",
        "order",
        "kind",
        "chain",
        "to_address",
        "amount_base_units",
        "status",
        "tx_hash",
        "attempts",
        "updated_at",
    )
    list_filter = ("status", "kind", "chain")
    search_fields = ("order__id", "tx_hash", "to_address")
    exclude = ("raw_tx",)
    readonly_fields = ("candidates",)
    actions = ("retry", "send_to_signer")
    change_list_template = "admin/payments/outgoingtransfer/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[OutgoingTransfer]:
        # Failed ones first (they wait for staff), then those still on their way, then the settled.
        rank = Case(
            When(status__in=[TransferStatus.FAILED, TransferStatus.HELD], then=Value(0)),
            When(status__in=[TransferStatus.PENDING, TransferStatus.SIGNED], then=Value(1)),
            default=Value(2),
        )
        return super().get_queryset(request).annotate(urgency=rank).order_by("urgency", "-updated_at")

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """The queue, under the latest reconciliation of each chain (`manage.py reconcile`)."""
        latest = [Reconciliation.objects.filter(chain=chain).order_by("-ran_at").first() for chain in Chain.values]
        context = {**(extra_context or {}), "reconciliations": [run for run in latest if run is not None]}
        context["unreconciled_chains"] = [chain for chain, run in zip(Chain.values, latest, strict=True) if run is None]
        return super().changelist_view(request, context)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        # The row itself is never edited here; queueing it again is what the change permission grants.
        return request.user.has_perm("payments.change_outgoingtransfer")

    @admin.action(description="Retry the selected payouts, refunds and returns", permissions=["retry"])
    def retry(self, request: HttpRequest, queryset: QuerySet[OutgoingTransfer]) -> None:
        retried = undecided = 0
        for transfer in queryset.exclude(status=TransferStatus.CONFIRMED):
            with transaction.atomic():
                if retry_transfer(OutgoingTransfer.objects.select_for_update().get(pk=transfer.pk)):
                    retried += 1
                else:
                    undecided += 1
        self.message_user(request, f"{retried} transfer(s) queued again.", messages.SUCCESS)
        if undecided:
            self.message_user(
                request,
                f"{undecided} held transfer(s) have nowhere chosen to go: use “Send held transfers to the paying "
                "transaction's signer” once you know the signer paid.",
                messages.WARNING,
            )

    @admin.display(description="who could have paid (the paying account's owner, then the signers)")
    def candidates(self, obj: OutgoingTransfer) -> str:
        payment = paying_payment(obj)
        if payment is None:
            return "-"
        owner = f"{payment.payer} (owner of {payment.source_account or 'the paying account'}; "
        owner += "signed)" if payment.payer_signed else "did not sign)"
        return "; ".join([owner, *(f"{signer} (signed)" for signer in payment.signers if signer != payment.payer)])

    @admin.action(description="Send held transfers to the paying transaction's signer", permissions=["retry"])
    def send_to_signer(self, request: HttpRequest, queryset: QuerySet[OutgoingTransfer]) -> None:
        """Only when the paying transaction had exactly one signer other than the paying account's
        owner (the fee payer who routed the swap or executed the vault): anything less clear is
        a conversation with the buyer first."""
        sent, unclear = 0, []
        for transfer in queryset.filter(status=TransferStatus.HELD):
            payment = paying_payment(transfer)
            signers = [s for s in payment.signers if s != payment.payer] if payment is not None else []
            if len(signers) != 1:
                unclear.append(str(transfer.pk))
                continue
            with transaction.atomic():
                send_held_to(OutgoingTransfer.objects.select_for_update().get(pk=transfer.pk), signers[0])
            sent += 1
        self.message_user(request, f"{sent} held transfer(s) sent to their signer.", messages.SUCCESS)
        if unclear:
            self.message_user(
                request, f"Not sent (no single signer to send to): {', '.join(unclear)}.", messages.WARNING
            )


@admin.register(LedgerEntry)
class LedgerEntryAdmin(MoneyRecordAdmin):
    list_display = ("journal", "order", "kind", "account", "chain", "amount", "created_at")
    list_filter = ("kind", "account", "chain")
    search_fields = ("order__id", "journal")


@admin.register(Reconciliation)
class ReconciliationAdmin(MoneyRecordAdmin):
    """`manage.py reconcile` runs: on-chain escrow against the ledger, the newest first."""

    list_display = ("ran_at", "chain", "on_chain", "ledger", "unexplained", "is_clean")
    list_filter = ("chain",)
    ordering = ("-ran_at",)

    @admin.display(boolean=True, description="clean")
    def is_clean(self, obj: Reconciliation) -> bool:
        return obj.is_clean
