from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from payments.models import LedgerEntry, OutgoingTransfer, Payment, SignInChallenge, TransferStatus, WalletSession
from payments.tasks import retry_transfer


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ("id", "order", "chain", "status", "tx_hash", "amount_base_units", "verified_at")
    list_filter = ("chain", "status")
    search_fields = ("tx_hash", "order__id", "payer")


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

    @admin.action(description="Retry the selected payouts and refunds")
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
