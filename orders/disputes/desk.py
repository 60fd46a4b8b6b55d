"""The dispute desk inside Django admin: the queue's columns and filters, the money inlines on an
order, and the resolve page (the evidence on one page, a preview of what each decision moves, the
four decisions as buttons with a required note).

Reads and writes go through `orders.disputes.decisions` (and from there `transition()`); this module only
turns requests into calls and results into pages.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from lib.errors import AtelierError
from orders.deliverables import gate
from orders.disputes import decisions as disputes
from orders.disputes.decisions import DECISION_LABELS
from orders.models import Order, OrderEvent, Role
from orders.reads.rendering import event_text
from orders.reads.resolution import REFUND, RELEASE, SEND_BACK, SPLIT, resolution_to_dict
from payments.admin import usdc
from payments.models import LedgerEntry, OutgoingTransfer, Payment, PaymentStatus

RESOLVE_PERMISSION = "orders.resolve_dispute"
TEMPLATE = "admin/orders/dispute/resolve.html"


def can_resolve(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_staff and request.user.has_perm(RESOLVE_PERMISSION))


# --- the queue ----------------------------------------------------------------------------------


class AmountFilter(admin.SimpleListFilter):
    title = "amount"
    parameter_name = "amount"
    RANGES = {"lt50": (None, 50), "50-500": (50, 500), "gte500": (500, None)}

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("lt50", "under $50"), ("50-500", "$50 to $500"), ("gte500", "$500 and more")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        low, high = self.RANGES.get(self.value() or "", (None, None))
        if low is not None:
            queryset = queryset.filter(quoted_price_usd__gte=low)
        if high is not None:
            queryset = queryset.filter(quoted_price_usd__lt=high)
        return queryset


class AgeFilter(admin.SimpleListFilter):
    """How long the dispute has waited for staff (`disputed_at`, orders.disputes.decisions.dispute_queue)."""

    title = "waiting"
    parameter_name = "age"
    RANGES = {"lt1": (None, 1), "1-3": (1, 3), "gte3": (3, None)}

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("lt1", "under a day"), ("1-3", "1 to 3 days"), ("gte3", "3 days or more")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        newest, oldest = self.RANGES.get(self.value() or "", (None, None))
        now = timezone.now()
        if newest is not None:
            queryset = queryset.filter(disputed_at__lte=now - timedelta(days=newest))
        if oldest is not None:
            queryset = queryset.filter(disputed_at__gt=now - timedelta(days=oldest))
        return queryset


class QueueColumns:
    """The dispute queue's columns: short enough to read every one at 1440 px."""

    @admin.display(description="order", ordering="id")
    def order_ref(self, order: Any) -> str:
        # May break after the timestamp: the id stays whole for search and copy, the column narrow.
        head, _, tail = str(order.id).rpartition("_")
        return format_html("{}_<wbr>{}", head, tail)

    @admin.display(description="waiting", ordering="disputed_at")
    def age(self, order: Any) -> str:
        if order.disputed_at is None:
            return "-"
        minutes = int((timezone.now() - order.disputed_at).total_seconds() // 60)
        hours = minutes // 60
        if hours >= 24:
            return f"{hours // 24} d {hours % 24} h"
        return f"{hours} h" if hours else f"{minutes} min"

    @admin.display(description="amount", ordering="quoted_price_usd")
    def amount(self, order: Any) -> str:
        return f"${order.quoted_price_usd:,.2f}" if order.quoted_price_usd is not None else "-"

    @admin.display(description="chain", ordering="payment_chain")
    def chain(self, order: Any) -> str:
        return str(order.get_payment_chain_display())

    @admin.display(description="agent", ordering="agent__name")
    def agent_name(self, order: Any) -> str:
        return str(order.agent.name)

    @admin.display(description="kind")
    def kind(self, order: Any) -> str:
        if disputes.disputed_undelivered(order.disputed_from):
            return format_html(
                '<span class="desk-badge desk-overdue" title="{}">{}</span>',
                "No delivery within the turnaround",
                "overdue: nothing delivered",
            )
        return "delivered"

    @admin.display(description="reason")
    def reason(self, order: Any) -> str:
        return Truncator(order.dispute_reason).chars(110)


# --- money inlines on the order -------------------------------------------------------------------


class ReadOnlyInline(admin.TabularInline[Any, Any]):
    """Rows shown on an order's admin page that staff never add, change or delete there."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class _ReadOnly(ReadOnlyInline):
    show_change_link = True  # money rows link to their own (read-only) page

    @admin.display(description="amount")
    def amount(self, obj: Any) -> str:
        return usdc(obj.amount_base_units)

    @admin.display(description="due")
    def due(self, obj: Payment) -> str:
        return usdc(obj.due_base_units)


class PaymentInline(_ReadOnly):
    model = Payment
    verbose_name_plural = "payments (claims and verified)"
    fields = ("id", "chain", "status", "tx_hash", "payer", "amount", "verified_at", "created_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Payment]:
        return super().get_queryset(request).exclude(status=PaymentStatus.UNAPPLIED).order_by("created_at")


class UnappliedInline(_ReadOnly):
    model = Payment
    verbose_name = "unapplied inbound transfer"
    verbose_name_plural = "unapplied inbound transfers (arrived, paid nothing, returned)"
    fields = ("id", "chain", "reason", "tx_hash", "payer", "amount", "due", "verified_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Payment]:
        return super().get_queryset(request).filter(status=PaymentStatus.UNAPPLIED).order_by("created_at")


class TransferInline(_ReadOnly):
    model = OutgoingTransfer
    verbose_name_plural = "outgoing transfers (payouts, refunds, returns)"
    fields = ("kind", "chain", "to_address", "amount", "status", "tx_hash", "attempts", "last_error")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[OutgoingTransfer]:
        return super().get_queryset(request).order_by("id")


class LedgerInline(_ReadOnly):
    model = LedgerEntry
    verbose_name_plural = "ledger lines (debits +, credits -)"
    fields = ("journal", "kind", "account", "chain", "amount", "created_at")
    readonly_fields = fields
    show_change_link = False

    @admin.display(description="amount")
    def amount(self, obj: LedgerEntry) -> str:
        return usdc(obj.amount)

    def get_queryset(self, request: HttpRequest) -> QuerySet[LedgerEntry]:
        return super().get_queryset(request).order_by("id")


MONEY_INLINES = (PaymentInline, UnappliedInline, TransferInline, LedgerInline)


# --- the resolve page -----------------------------------------------------------------------------


def resolve_url(order_id: str) -> str:
    return reverse("admin:orders_dispute_resolve", args=[order_id])


def resolve_view(model_admin: admin.ModelAdmin[Any], request: HttpRequest, object_id: str) -> HttpResponse:
    """GET: the evidence and a preview of each decision. POST: `decision` (release, refund, split,
    send_back, or `preview_split`) with `note` and, for a split, `agent_amount_usd`. Release, refund
    and split move money: the first press previews what moves (in net amounts) and asks to confirm
    (`confirmed`, or for a split `previewed_amount`); only the confirmation decides. A refusal
    re-renders the page with its sentence and changes nothing; a decision redirects back here."""
    user_id = request.user.pk
    if not can_resolve(request) or user_id is None:
        raise PermissionDenied
    order = get_object_or_404(Order.objects.select_related("service", "agent", "buyer_agent"), pk=object_id)
    form = {"decision": "", "note": "", "agent_amount_usd": ""}
    error, status, split_preview, confirm = "", 200, None, None
    if request.method == "POST":
        form = {name: request.POST.get(name, "") for name in form}
        decision = form["decision"]
        try:
            amount = disputes.parse_amount(form["agent_amount_usd"]) if decision in (SPLIT, "preview_split") else None
            previewed = request.POST.get("previewed_amount", "")
            if decision == "preview_split" or (decision == SPLIT and previewed != str(amount)):
                split_preview = disputes.decision_preview(order, SPLIT, amount)
                if decision == SPLIT:
                    error = "The amount changed since the preview: check the new figures, then confirm."
                    status = 400
            elif decision in (RELEASE, REFUND) and request.POST.get("confirmed") != decision:
                disputes.note_check(form["note"], decision)
                disputes.disputed_check(order)
                confirm = disputes.decision_preview(order, decision)
            else:
                disputes.dispute_resolve(
                    order_id=order.id,
                    decision=decision,
                    staff_user_id=user_id,
                    note=form["note"],
                    agent_amount_usd=amount,
                )
                messages.success(request, _decided_message(order.id))
                return redirect(resolve_url(order.id))
        except AtelierError as exc:
            error, status = exc.message, exc.status
            order.refresh_from_db()
    context = {
        **model_admin.admin_site.each_context(request),
        **evidence(order),
        "opts": model_admin.model._meta,
        "title": f"Dispute {order.id}",
        "form": form,
        "error": error,
        "split_preview": split_preview,
        "split_net": disputes.net_sentence(split_preview) if split_preview else "",
        "confirm": confirm,
        "confirm_label": DECISION_LABELS.get(confirm.decision, "") if confirm else "",
        "confirm_net": disputes.net_sentence(confirm) if confirm else "",
        "fee_percent": f"{(Decimal(settings.PLATFORM_FEE_RATE) * 100).normalize():f}",
        "queue_url": reverse("admin:orders_dispute_changelist"),
    }
    return TemplateResponse(request, TEMPLATE, context, status=status)


def _decided_message(order_id: str) -> str:
    order = Order.objects.get(pk=order_id)
    resolution = resolution_to_dict(order)
    label = DECISION_LABELS.get(resolution["decision"] if resolution else "", "Decided")
    moved = ""
    if resolution and (resolution["agent_payout_base_units"] or resolution["refund_base_units"]):
        agent = disputes.usdc_text(resolution["agent_payout_base_units"])
        buyer = disputes.usdc_text(resolution["refund_base_units"])
        moved = f" The agent receives {agent} USDC; the buyer gets back {buyer} USDC."
    return f"{label}: recorded with your note; the order is {order.status.replace('_', ' ')}.{moved}"


def evidence(order: Order) -> dict[str, Any]:
    """Everything staff read before deciding, for the resolve page: a fixed number of queries."""
    events = list(order.events.order_by("id"))
    ledger = list(order.ledger_entries.order_by("id"))
    balances = {
        row["account"]: row["total"]
        for row in order.ledger_entries.values("account").annotate(total=Sum("amount")).order_by("account")
    }
    disputed = order.status == "disputed"
    previews = []
    if disputed:
        previews = [disputes.decision_preview(order, decision) for decision in (RELEASE, REFUND, SEND_BACK)]
    staff_ids = {event.actor_id.removeprefix("user:") for event in events if event.actor_kind == Role.STAFF}
    staff_names = {
        f"user:{pk}": username
        for pk, username in get_user_model().objects.filter(pk__in=staff_ids).values_list("pk", "username")
    }
    dispute_event = next((event for event in reversed(events) if event.action == "dispute"), None)
    return {
        "order": order,
        "disputed": disputed,
        "dispute_event": dispute_event,
        "undelivered": disputes.disputed_undelivered(dispute_event.from_status if dispute_event else None),
        "resolution": resolution_to_dict(order),
        "versions": _versions(order, events),
        "chat": list(order.messages.order_by("id")),
        # Messages are read in the thread; the timeline is what happened to the order.
        "events": [
            {"row": event, "text": event_text(event), "staff": staff_names.get(event.actor_id, event.actor_id)}
            for event in events
            if event.action != "message"
        ],
        "payments": list(order.payments.select_related("return_transfer").order_by("created_at")),
        "transfers": list(order.transfers.order_by("id")),
        "ledger": ledger,
        "balances": balances,
        "previews": previews,
        "price": order.quoted_price_usd or Decimal(0),
        "buyer_page": reverse("orders:detail", args=[order.id]),
        "order_admin": reverse("admin:orders_order_change", args=[order.id]),
        "agent_admin": reverse("admin:agents_agent_change", args=[order.agent_id]),
    }


def _versions(order: Order, events: list[OrderEvent]) -> list[dict[str, Any]]:
    """Every delivery, newest first, each with its deliverables (staff get the originals). A
    deliverable belongs to the first `deliver` event at or after it was written (same transaction)."""
    delivered_at = [event.created_at for event in events if event.action in ("deliver", "expire")]
    versions: dict[int, list[dict[str, Any]]] = {}
    for deliverable in order.deliverables.order_by("id"):
        deliverable.order = order
        number = next((n for n, at in enumerate(delivered_at, 1) if at >= deliverable.created_at), len(delivered_at))
        urls = gate.deliverable_urls(deliverable, Role.STAFF)  # staff see originals
        versions.setdefault(number, []).append({"row": deliverable, "urls": urls})
    return [
        {
            "number": number,
            "at": delivered_at[number - 1] if 0 < number <= len(delivered_at) else None,
            "items": items,
            "current": any(not item["row"].superseded for item in items),
        }
        for number, items in sorted(versions.items(), reverse=True)
    ]
