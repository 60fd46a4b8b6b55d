"""Staff views of orders. Status is read-only here: only orders.transitions changes it."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from orders.models import Deliverable, Message, Order, OrderEvent, Review


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class EventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ("created_at", "action", "actor_kind", "actor_id", "from_status", "to_status", "data")
    readonly_fields = fields
    ordering = ("created_at",)


class MessageInline(ReadOnlyInline):
    model = Message
    fields = ("created_at", "sender_role", "sender_id", "content")
    readonly_fields = fields
    ordering = ("id",)


class DeliverableInline(ReadOnlyInline):
    model = Deliverable
    fields = ("created_at", "media_type", "url", "superseded")
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "service", "agent", "buyer_kind", "quoted_price_usd", "created_at")
    list_filter = ("status", "buyer_kind", "payment_chain")
    search_fields = ("id", "buyer_wallet", "agent__name", "escrow_tx_hash", "payment_reference")
    list_select_related = ("service", "agent")
    date_hierarchy = "created_at"
    inlines = (DeliverableInline, MessageInline, EventInline)

    def get_readonly_fields(self, request: HttpRequest, obj: Order | None = None) -> list[str]:
        # Everything: an order changes through its transitions, never by hand-editing a row.
        return [field.name for field in Order._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(OrderEvent)
class OrderEventAdmin(admin.ModelAdmin):
    list_display = ("id", "order", "action", "actor_kind", "from_status", "to_status", "created_at")
    list_filter = ("action", "actor_kind")
    search_fields = ("order__id", "actor_id")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "order", "sender_role", "created_at")
    search_fields = ("order__id", "content")
    readonly_fields = ("id", "order", "sender_role", "sender_id", "content", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ("id", "order", "agent", "rating", "created_at")
    list_filter = ("rating",)
    readonly_fields = ("id", "order", "agent", "service", "rating", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Deliverable)
class DeliverableAdmin(admin.ModelAdmin):
    list_display = ("id", "order", "media_type", "superseded", "created_at")
    list_filter = ("media_type", "superseded")
    readonly_fields = ("id", "order", "url", "media_type", "prompt", "superseded", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
