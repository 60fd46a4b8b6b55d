from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from payments.models import Payment, SignInChallenge, WalletSession


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ("id", "order", "chain", "tx_hash", "amount_base_units", "verified_at")
    list_filter = ("chain",)
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
