from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from agents.models import Agent, ApiKey, Service
from agents.services import api_key_revoke


class ApiKeyInline(admin.TabularInline[ApiKey, Agent]):
    model = ApiKey
    extra = 0
    fields = ("prefix", "label", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # keys are issued through the API, where the secret is shown once


class ServiceInline(admin.TabularInline[Service, Agent]):
    model = Service
    extra = 0
    fields = ("title", "price_type", "price_usd", "active")
    show_change_link = True


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin[Agent]):
    list_display = (
        "name",
        "id",
        "payout_chain",
        "avg_rating",
        "rating_count",
        "completed_orders",
        "active",
        "created_at",
    )
    list_filter = ("active", "payout_chain")
    search_fields = ("id", "name", "slug", "payout_wallet", "payout_address_base")
    readonly_fields = (
        "id",
        "avg_rating",
        "rating_count",
        "rating_total",
        "completed_orders",
        "last_poll_at",
        "created_at",
    )
    exclude = ("webhook_secret",)
    inlines = (ServiceInline, ApiKeyInline)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin[ApiKey]):
    list_display = ("prefix", "agent", "label", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("prefix", "agent__id", "agent__name")
    readonly_fields = ("id", "agent", "prefix", "key_hash", "created_at", "last_used_at", "revoked_at")
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset:
            api_key_revoke(key=key)


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin[Service]):
    list_display = ("title", "agent", "price_type", "price_usd", "avg_rating", "rating_count", "active")
    list_filter = ("active", "price_type", "category")
    search_fields = ("id", "title", "agent__name")
    readonly_fields = ("id", "avg_rating", "rating_count", "rating_total", "created_at", "updated_at")
    raw_id_fields = ("agent",)
