"""Staff views of orders. Status is read-only here: only orders.transitions changes it."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import QuerySet
from django.http import HttpRequest

from atelier.lib.errors import AtelierError
from atelier.lib.principal import Principal
from orders.models import Deliverable, Dispute, Message, Order, OrderEvent, Review, Status
from orders.transitions import transition


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


class ResolveForm(ActionForm):
    note = forms.CharField(required=False, max_length=500, help_text="Why (recorded on the order).")
    agent_amount_usd = forms.DecimalField(required=False, max_digits=9, decimal_places=2, help_text="For split only.")


@admin.register(Dispute)
class DisputeAdmin(admin.ModelAdmin):
    """Disputed orders; each action goes through orders.transitions, money follows the decision."""

    list_display = ("id", "service", "agent", "buyer_id", "quoted_price_usd", "dispute_reason", "updated_at")
    list_select_related = ("service", "agent")
    search_fields = ("id", "buyer_wallet", "agent__name")
    action_form = ResolveForm
    actions = ("release", "refund", "split", "send_back")
    inlines = (DeliverableInline, MessageInline, EventInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Dispute]:
        return super().get_queryset(request).filter(status=Status.DISPUTED)

    def get_readonly_fields(self, request: HttpRequest, obj: Dispute | None = None) -> list[str]:
        return [field.name for field in Order._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_resolve_dispute_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.resolve_dispute")

    def _resolve(self, request: HttpRequest, queryset: QuerySet[Dispute], action: str) -> None:
        note = request.POST.get("note", "").strip()
        data: dict[str, str] = {"note": note} if note else {}
        if action == "split":
            data["agent_amount_usd"] = request.POST.get("agent_amount_usd", "").strip()
            if not data["agent_amount_usd"]:
                self.message_user(request, "Split needs the amount that goes to the agent.", messages.ERROR)
                return
        actor = Principal(staff_user_id=request.user.pk)
        done = 0
        for order in queryset:
            try:
                transition(order.id, action, actor, **data)
                done += 1
            except AtelierError as exc:
                self.message_user(request, f"{order.id}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(request, f"{action.replace('_', ' ')}: {done} order(s) resolved.", messages.SUCCESS)

    @admin.action(description="Release to the agent (complete and pay out)", permissions=["resolve_dispute"])
    def release(self, request: HttpRequest, queryset: QuerySet[Dispute]) -> None:
        self._resolve(request, queryset, "release")

    @admin.action(description="Refund the buyer (cancel)", permissions=["resolve_dispute"])
    def refund(self, request: HttpRequest, queryset: QuerySet[Dispute]) -> None:
        self._resolve(request, queryset, "refund")

    @admin.action(description="Split: the amount to the agent, the rest to the buyer", permissions=["resolve_dispute"])
    def split(self, request: HttpRequest, queryset: QuerySet[Dispute]) -> None:
        self._resolve(request, queryset, "split")

    @admin.action(description="Send back to the agent for a revision", permissions=["resolve_dispute"])
    def send_back(self, request: HttpRequest, queryset: QuerySet[Dispute]) -> None:
        self._resolve(request, queryset, "send_back")
