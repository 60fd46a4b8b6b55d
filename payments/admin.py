from __future__ import annotations

from typing import Any, TypeVar

from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Case, Model, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from lib.money import usd_text
from lib.wallets import Chain
from payments.ledger import base_units_to_usd
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
from payments.settlement import paying_payment, payment_return
from payments.tasks import retry_transfer, send_held_to


def usdc(base_units: int | None) -> str:
    """Base units as USDC, the way every admin page shows money: 25000000 -> "25.00 USDC"."""
    return "-" if base_units is None else f"{usd_text(base_units_to_usd(base_units), grouped=True)} USDC"


def short(value: str) -> SafeString | str:
    """An address or hash shortened for a list (7xKXtg…gAsU), whole in its tooltip."""
    if not value:
        return "-"
    if len(value) <= 14:
        return value
    return format_html('<code title="{}">{}…{}</code>', value, value[:6], value[-4:])


def explorer(value: str, chain: str, *, address: bool = False) -> str:
    """The block explorer's page of a transaction (SOLANA_/BASE_EXPLORER_TX_URL) or, on the same
    explorer, of an address (its /address/ page); "" when no explorer is set (the devchains)."""
    pattern: str = {"solana": settings.SOLANA_EXPLORER_TX_URL, "base": settings.BASE_EXPLORER_TX_URL}.get(chain, "")
    if not (pattern and value):
        return ""
    return (pattern.replace("/tx/{tx}", "/address/{tx}") if address else pattern).replace("{tx}", value)


def whole(value: str, chain: str, *, address: bool = False) -> SafeString | str:
    """For a detail page: the whole value, a copy button and the explorer's link."""
    if not value:
        return "-"
    link = explorer(value, chain, address=address)
    return format_html(
        '<code class="desk-wrap">{}</code> <button type="button" class="copy-button" data-copy-text="{}">Copy</button>{}',
        value,
        value,
        format_html(' <a href="{}" rel="noopener noreferrer" target="_blank">View on the explorer</a>', link)
        if link
        else "",
    )


def age(moment: Any) -> str:
    """How long ago, in the largest unit that reads at a glance: 12 min, 5 h, 3 d 4 h."""
    minutes = int((timezone.now() - moment).total_seconds() // 60)
    hours = minutes // 60
    if hours >= 24:
        return f"{hours // 24} d {hours % 24} h"
    return f"{hours} h" if hours else f"{minutes} min"


_M = TypeVar("_M", bound=Model)


class ReadOnlyAdmin(admin.ModelAdmin[_M]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class MoneyRecordAdmin(ReadOnlyAdmin[_M]):
    """Payments, transfers, ledger lines, reconciliations: append-only for everyone, superusers too
    (payments.models.AppendOnlyError, and PostgreSQL triggers). A correction is a new journal."""

    class Media:
        css = {"all": ("admin_desk.css",)}
        js = ("admin_copy.js",)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(MoneyRecordAdmin[Payment]):
    """Claims, payments and unapplied transfers. Unapplied ones are returned by themselves unless
    they are dust; `return_to_sender` returns those on request."""

    list_display = (
        "id",
        "status",
        "amount",
        "order",
        "chain",
        "reason",
        "tx",
        "log_index",
        "from_wallet",
        "verified_at",
    )
    list_filter = ("chain", "status", "reason")
    fields = (
        ("status", "reason"),
        ("amount", "due"),
        "order",
        "chain",
        "transaction",
        "log_index",
        "payer_wallet",
        "source_account",
        ("payer_signed", "signers"),
        ("verified_at", "created_at"),
        "checks",
    )
    readonly_fields = ("amount", "due", "transaction", "payer_wallet")

    @admin.display(description="amount", ordering="amount_base_units")
    def amount(self, obj: Payment) -> str:
        return usdc(obj.amount_base_units)

    @admin.display(description="due")
    def due(self, obj: Payment) -> str:
        return usdc(obj.due_base_units) if obj.due_base_units else "-"

    @admin.display(description="tx")
    def tx(self, obj: Payment) -> SafeString | str:
        return short(obj.tx_hash)

    @admin.display(description="from")
    def from_wallet(self, obj: Payment) -> SafeString | str:
        return short(obj.payer)

    @admin.display(description="transaction")
    def transaction(self, obj: Payment) -> SafeString | str:
        return whole(obj.tx_hash, obj.chain)

    @admin.display(description="from (payer)")
    def payer_wallet(self, obj: Payment) -> SafeString | str:
        return whole(obj.payer, obj.chain, address=True)

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
class WalletSessionAdmin(ReadOnlyAdmin[WalletSession]):
    list_display = ("id", "chain", "wallet", "created_at", "expires_at", "revoked_at")
    list_filter = ("chain",)
    search_fields = ("wallet",)
    exclude = ("token_hash",)


@admin.register(SignInChallenge)
class SignInChallengeAdmin(ReadOnlyAdmin[SignInChallenge]):
    list_display = ("nonce", "chain", "wallet", "expires_at", "used_at")
    list_filter = ("chain",)
    search_fields = ("wallet",)


@admin.register(OutgoingTransfer)
class OutgoingTransferAdmin(MoneyRecordAdmin[OutgoingTransfer]):
    """Payouts, refunds and returns: status, the chain transaction, the last error. Failed and held
    ones wait for staff: retry a failed one; a held one is sent once its recipient has a USDC account
    (by itself, or on retry), or, held because the paying account's owner did not sign, to the
    transaction's signer when staff send it there."""

    # What staff act on first (status, kind, amount, order, age, attempts), then where it goes: short
    # enough to read every column at 1440 px; the whole address and hash are on the detail page.
    list_display = ("status", "kind", "amount", "order_ref", "age", "attempts", "chain", "to", "tx")
    list_display_links = ("status", "amount")
    list_filter = ("status", "kind", "chain")
    search_fields = ("order__id", "tx_hash", "to_address")
    fields = (
        ("status", "kind", "chain"),
        "amount",
        ("order", "payment"),
        "recipient",
        "recipient_token_account",
        "transaction",
        ("attempts", "last_error"),
        "held_reason",
        "candidates",
        ("created_at", "updated_at", "confirmed_at"),
    )
    readonly_fields = ("amount", "recipient", "recipient_token_account", "transaction", "candidates")
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

    @admin.display(description="amount", ordering="amount_base_units")
    def amount(self, obj: OutgoingTransfer) -> str:
        return usdc(obj.amount_base_units)

    @admin.display(description="order", ordering="order_id")
    def order_ref(self, obj: OutgoingTransfer) -> SafeString | str:
        if obj.order_id is None:
            return f"return of {obj.payment_id}"
        head, _, tail = str(obj.order_id).rpartition("_")
        return format_html(
            '<a href="{}">{}_<wbr>{}</a>', reverse("admin:orders_order_change", args=[obj.order_id]), head, tail
        )

    @admin.display(description="age", ordering="created_at")
    def age(self, obj: OutgoingTransfer) -> str:
        return age(obj.created_at)

    @admin.display(description="to")
    def to(self, obj: OutgoingTransfer) -> SafeString | str:
        return short(obj.to_address)

    @admin.display(description="tx")
    def tx(self, obj: OutgoingTransfer) -> SafeString | str:
        return short(obj.tx_hash)

    @admin.display(description="to")
    def recipient(self, obj: OutgoingTransfer) -> SafeString | str:
        return whole(obj.to_address, obj.chain, address=True)

    @admin.display(description="to token account")
    def recipient_token_account(self, obj: OutgoingTransfer) -> SafeString | str:
        return whole(obj.to_token_account, obj.chain, address=True)

    @admin.display(description="transaction")
    def transaction(self, obj: OutgoingTransfer) -> SafeString | str:
        return whole(obj.tx_hash, obj.chain)

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
class LedgerEntryAdmin(MoneyRecordAdmin[LedgerEntry]):
    list_display = ("journal", "order", "kind", "account", "chain", "amount_usdc", "created_at")
    list_filter = ("kind", "account", "chain")
    search_fields = ("order__id", "journal")
    fields = ("journal", "order", "payment", "kind", "account", "chain", "amount_usdc", "created_at")
    readonly_fields = ("amount_usdc",)

    @admin.display(description="amount (debit +, credit -)", ordering="amount")
    def amount_usdc(self, obj: LedgerEntry) -> str:
        return usdc(obj.amount)


@admin.register(Reconciliation)
class ReconciliationAdmin(MoneyRecordAdmin[Reconciliation]):
    """`manage.py reconcile` runs: on-chain escrow against the ledger, the newest first."""

    list_display = ("ran_at", "chain", "on_chain_usdc", "ledger_usdc", "unexplained_usdc", "is_clean")
    list_filter = ("chain",)
    ordering = ("-ran_at",)
    fields = ("ran_at", "chain", "on_chain_usdc", "ledger_usdc", "unexplained_usdc", "explained", "fee_balance")
    readonly_fields = ("ran_at", "on_chain_usdc", "ledger_usdc", "unexplained_usdc")

    @admin.display(description="escrow on chain")
    def on_chain_usdc(self, obj: Reconciliation) -> str:
        return usdc(obj.on_chain)

    @admin.display(description="ledger")
    def ledger_usdc(self, obj: Reconciliation) -> str:
        return usdc(obj.ledger)

    @admin.display(description="unexplained")
    def unexplained_usdc(self, obj: Reconciliation) -> str:
        return usdc(obj.unexplained)

    @admin.display(boolean=True, description="clean")
    def is_clean(self, obj: Reconciliation) -> bool:
        return obj.is_clean
