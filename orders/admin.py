"""Staff views of orders. Status is read-only here: only orders.core.transitions changes it."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import URLPattern, path

from orders.disputes import decisions as disputes
from orders.disputes import desk as admin_desk
from orders.disputes.desk import ReadOnlyInline
from orders.models import Deliverable, Dispute, Message, Order, OrderEvent, Review


class EventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ("created_at", "action", "actor_kind", "actor", "from_status", "to_status", "data")
    readonly_fields = fields
    ordering = ("created_at",)

    @admin.display(description="by")
    def actor(self, event: OrderEvent) -> str:
        """Staff by their username, not `user:<pk>`; wallets and agents by their id."""
        if event.actor_kind == "staff" and event.actor_id.startswith("user:"):
            user = get_user_model().objects.filter(pk=event.actor_id.removeprefix("user:")).first()
            return f"staff {user.get_username()}" if user is not None else event.actor_id
        return event.actor_id


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
class OrderAdmin(admin.ModelAdmin[Order]):
    list_display = ("id", "status", "service", "agent", "buyer_kind", "quoted_price_usd", "created_at")
    list_filter = ("status", "buyer_kind", "payment_chain")
    search_fields = ("id", "buyer_wallet", "agent__name", "escrow_tx_hash", "payment_reference")
    list_select_related = ("service", "agent")
    date_hierarchy = "created_at"
    inlines = (DeliverableInline, MessageInline, EventInline, *admin_desk.MONEY_INLINES)

    def get_readonly_fields(self, request: HttpRequest, obj: Order | None = None) -> list[str]:
        # Everything: an order changes through its transitions, never by hand-editing a row.
        return [field.name for field in Order._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # no Save button over read-only fields: the page is for reading

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(OrderEvent)
class OrderEventAdmin(admin.ModelAdmin[OrderEvent]):
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
class MessageAdmin(admin.ModelAdmin[Message]):
    list_display = ("id", "order", "sender_role", "created_at")
    search_fields = ("order__id", "content")
    readonly_fields = ("id", "order", "sender_role", "sender_id", "content", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin[Review]):
    list_display = ("id", "order", "agent", "rating", "created_at")
    list_filter = ("rating",)
    readonly_fields = ("id", "order", "agent", "service", "rating", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Deliverable)
class DeliverableAdmin(admin.ModelAdmin[Deliverable]):
    list_display = ("id", "order", "media_type", "superseded", "created_at")
    list_filter = ("media_type", "superseded")
    readonly_fields = ("id", "order", "url", "media_type", "prompt", "superseded", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Dispute)
class DisputeAdmin(admin_desk.QueueColumns, admin.ModelAdmin[Dispute]):
    """The disputes queue, the oldest first; each dispute opens on its resolve page (admin_desk),
    where staff with `resolve_dispute` decide, one order at a time, through orders.core.transitions."""

    list_display = ("order_ref", "age", "amount", "chain", "agent_name", "kind", "reason")
    list_display_links = ("order_ref",)
    list_filter = ("payment_chain", admin_desk.AmountFilter, admin_desk.AgeFilter)
    list_select_related = ("agent",)
    search_fields = ("id", "buyer_wallet", "agent__name", "dispute_reason")
    # Each decision needs its own evidence, note and amount: no bulk resolving from the list.
    actions = None
    inlines = (DeliverableInline, MessageInline, EventInline, *admin_desk.MONEY_INLINES)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Dispute]:
        return disputes.dispute_queue(super().get_queryset(request))

    def get_readonly_fields(self, request: HttpRequest, obj: Dispute | None = None) -> list[str]:
        return [field.name for field in Order._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # read-only here; decisions are made on the resolve page

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        title = "Disputes waiting for a decision, the longest waiting first"
        return super().changelist_view(request, {"title": title, **(extra_context or {})})

    def get_urls(self) -> list[URLPattern]:
        resolve = path(
            "<path:object_id>/resolve/",
            self.admin_site.admin_view(partial(admin_desk.resolve_view, self)),
            name="orders_dispute_resolve",
        )
        return [resolve, *super().get_urls()]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """A dispute opens on its resolve page for staff who may decide; read-only for the rest."""
        if admin_desk.can_resolve(request):
            return redirect(admin_desk.resolve_url(unquote(object_id)))
        return super().change_view(request, object_id, form_url, extra_context)
