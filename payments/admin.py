from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Case, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse

from atelier.lib.wallets import Chain
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
from payments.services import payment_return
from payments.tasks import retry_transfer


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
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
class OutgoingTransferAdmin(ReadOnlyAdmin):
    """Payouts and refunds: status, the chain transaction, the last error; failed ones can be retried."""

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
    actions = ("retry",)
    change_list_template = "admin/payments/outgoingtransfer/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[OutgoingTransfer]:
        # Failed ones first (they wait for staff), then those still on their way, then the settled.
        rank = Case(
            When(status=TransferStatus.FAILED, then=Value(0)),
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
        retried = 0
        for transfer in queryset.exclude(status=TransferStatus.CONFIRMED):
            retry_transfer(transfer)
            retried += 1
        self.message_user(request, f"{retried} transfer(s) queued again.", messages.SUCCESS)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("journal", "order", "kind", "account", "chain", "amount", "created_at")
    list_filter = ("kind", "account", "chain")
    search_fields = ("order__id", "journal")


@admin.register(Reconciliation)
class ReconciliationAdmin(ReadOnlyAdmin):
    """`manage.py reconcile` runs: on-chain escrow against the ledger, the newest first."""

    list_display = ("ran_at", "chain", "on_chain", "ledger", "unexplained", "is_clean")
    list_filter = ("chain",)
    ordering = ("-ran_at",)

    @admin.display(boolean=True, description="clean")
    def is_clean(self, obj: Reconciliation) -> bool:
        return obj.is_clean
