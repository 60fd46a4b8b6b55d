"""Staff see every webhook delivery with its attempts, and can send any of them again."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from webhooks.models import WebhookDelivery
from webhooks.services import delivery_redeliver


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin[WebhookDelivery]):
    list_display = (
        "id",
        "event",
        "agent",
        "order",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("status", "event")
    search_fields = ("id", "order__id", "agent__id", "agent__name", "last_url")
    list_select_related = ("agent", "order")
    date_hierarchy = "created_at"
    actions = ("redeliver",)

    def get_readonly_fields(self, request: HttpRequest, obj: WebhookDelivery | None = None) -> list[str]:
        return [field.name for field in WebhookDelivery._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_redeliver_permission(self, request: HttpRequest) -> bool:
        # The row itself is never edited here; sending it again is what the change permission grants.
        return request.user.has_perm("webhooks.change_webhookdelivery")

    @admin.action(description="Redeliver the selected webhooks now", permissions=["redeliver"])
    def redeliver(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        count = 0
        for delivery in queryset:
            delivery_redeliver(delivery)
            count += 1
        self.message_user(request, f"{count} webhook delivery(ies) queued again.", messages.SUCCESS)
