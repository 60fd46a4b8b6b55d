"""The buyer's pages: my orders, the order page and its polling; its one POST view is in
`orders.web.actions`.

Views stay thin: reads through `orders.reads.queries`.

Agents' owners (signed in with an API key) and staff see the same page read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_safe
from django_htmx.middleware import HtmxDetails

from identity import sessions
from identity.sessions import session_principal
from identity.views import signin_redirect
from lib.errors import Forbidden, NotFound
from lib.principal import Principal
from orders.checkout import recheck, solana_pay_watch
from orders.core.transitions import Role, allowed_actions
from orders.models import (
    AWAITING_DELIVERY,
    MESSAGING_STATUSES,
    PAYABLE,
    BuyerKind,
    Message,
    Order,
    OrderEvent,
    Review,
    Status,
)
from orders.reads import attention, queries, resolution
from orders.reads.rendering import deliverable_items, delivery_versions, earlier_deliverables, timeline
from orders.web import forms, lookup
from payments import checkout, demo_wallet
from payments.shapes import PaymentInstructions

TEMPLATE = "orders/detail.html"


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


MESSAGE_PAGE = 50  # the latest messages shown; earlier ones a link away
TIMELINE_LIMIT = 100
LIST_PAGE = 25
POLL_SECONDS = 3


def signin_url_for(next_path: str) -> str:
    return f"{reverse('signin')}?{urlencode({'next': next_path})}"


# --- my orders ----------------------------------------------------------------------------------


@require_safe
def order_list(request: HttpRequest) -> HttpResponse:
    """The caller's orders, newest first, a page at a time."""
    principal = session_principal(request)
    if principal is None:
        return signin_redirect(request)
    rows, cursor = queries.order_page(principal, limit=LIST_PAGE, before=request.GET.get("before") or None)
    pending = {order.id for order in rows if queries.payment_pending(order)}
    waiting = attention.needs_you(order.id for order in rows) if principal.wallet else {}
    return render(
        request,
        "orders/list.html",
        {
            "orders": rows,
            "pending": pending,
            "needs": waiting,
            "resolved": attention.resolutions(order.id for order in rows),
            "next_cursor": cursor,
            "principal": principal,
        },
    )


# --- the order page -----------------------------------------------------------------------------


@dataclass
class Page:
    """What the order page shows: built once per request from a fixed number of queries."""

    order: Order
    role: Role
    principal: Principal
    error: str = ""
    error_target: str = ""  # "panel" or "messages": where the refusal is shown
    forms: dict[str, Form] | None = None
    before: str = ""  # a cursor into earlier messages

    def context(self, request: HttpRequest) -> dict[str, Any]:
        order, role = self.order, self.role
        is_buyer = role == Role.BUYER and order.buyer_kind != BuyerKind.AGENT
        stamp = queries.latest_event_id(order)  # first: what is read next is at least this new
        events = list(order.events.exclude(action="message").order_by("-id")[:TIMELINE_LIMIT])[::-1]
        return {
            "order": order,
            "service": order.service,
            "role": role.value,
            "is_buyer": is_buyer,
            "read_only": not is_buyer,
            "actions": allowed_actions(order, role) if is_buyer else [],
            "change_stamp": stamp,
            "error": self.error,
            "error_target": self.error_target,
            "poll_seconds": POLL_SECONDS,
            **_payment_context(request, order, is_buyer),
            **_work_context(order, role, events, is_buyer),
            **self._messages_context(is_buyer),
            **self._forms_context(),
        }

    def _messages_context(self, is_buyer: bool) -> dict[str, Any]:
        messages, earlier = self._messages()
        return {
            "messages": messages,
            "earlier_cursor": earlier,
            "viewing_earlier": bool(self.before),
            "last_message_id": messages[-1].id if messages else "",
            "messaging_open": self.order.status in MESSAGING_STATUSES,
            "can_message": is_buyer and self.order.status in MESSAGING_STATUSES,
        }

    def _forms_context(self) -> dict[str, Form]:
        """Each form of the page, the refused one bound (its text kept), the others empty."""
        bound = self.forms or {}
        return {
            "revision_form": bound.get("revision") or forms.RevisionForm(),
            "dispute_form": bound.get("dispute") or forms.DisputeForm(),
            "cancel_form": bound.get("cancel") or forms.CancelForm(),
            "pay_form": bound.get("pay") or forms.PayForm(initial={"payment_chain": self.order.payment_chain}),
            "message_form": bound.get("message") or forms.MessageForm(),
            "review_form": bound.get("review") or forms.ReviewForm(),
            "prompt_form": bound.get("generate") or forms.PromptForm(),
        }

    def _messages(self) -> tuple[list[Message], str]:
        """The latest MESSAGE_PAGE messages (or those before a cursor), oldest first."""
        queryset = self.order.messages.order_by("-id")
        if self.before:
            queryset = queryset.filter(id__lt=self.before)
        rows = list(queryset[: MESSAGE_PAGE + 1])
        earlier = rows[MESSAGE_PAGE - 1].id if len(rows) > MESSAGE_PAGE else ""
        return rows[:MESSAGE_PAGE][::-1], earlier


def _payment_context(request: HttpRequest, order: Order, is_buyer: bool) -> dict[str, Any]:
    """The quote, how to pay it, and where a payment stands (one state at a time)."""
    payable = order.status in PAYABLE
    payment = checkout.payment_instructions(order) if payable else None
    return {
        "payment": payment,
        **_checkout_codes(payment, order),
        "base_wallet_pay": is_buyer and order.buyer_chain == "base" and bool(order.buyer_wallet),
        # The Wallet Standard chain a Solana wallet sends the payment on: the devchain is localnet.
        "solana_wallet_chain": "solana:localnet"
        if settings.CHAIN_MODE == "local"
        else f"solana:{settings.SOLANA_CLUSTER}",
        "payment_pending": _pending_claim(order),
        "base_confirmations": settings.BASE_CONFIRMATIONS,
        "unapplied_transfers": queries.unapplied_transfers(order),
        "unapplied_total": queries.unapplied_total(order),
        "transfers": getattr(order, "transfer_list", []),
        "agent_share_usd": _agent_share(order),
        "demo_pay": is_buyer and payable and _demo_wallet_paid(request, order),
    }


def _pending_claim(order: Order) -> dict[str, Any] | None:
    """The claim waiting on the chain, and whether the chain had seen it when it was made: an unseen
    one (a typo, another network) keeps every way to pay on the page and is looked for a few minutes."""
    claim = queries.pending_claim(order)
    if claim is None:
        return None
    event = (
        OrderEvent.objects.filter(order=order, action="payment_pending", data__tx_hash=claim.tx_hash)
        .order_by("-id")
        .first()
    )
    return {
        "claim": claim,
        "seen": bool(event is None or event.data.get("seen", True)),
        "until": claim.created_at + recheck.UNSEEN_CLAIM_TTL,
        "minutes": int(recheck.UNSEEN_CLAIM_TTL.total_seconds() // 60),
    }


def _agent_share(order: Order) -> Decimal | None:
    """What approving moves to the agent: the price less the platform fee."""
    if order.quoted_price_usd is None:
        return None
    return (order.quoted_price_usd - (order.platform_fee_usd or Decimal(0))).quantize(Decimal("0.01"))


def _demo_wallet_paid(request: HttpRequest, order: Order) -> bool:
    secret = request.session.get(sessions.DEMO_SECRET, "")
    return sessions.demo_wallet_enabled() and bool(secret) and demo_wallet.address_of(secret) == order.buyer_wallet


def _work_context(order: Order, role: Role, events: list[OrderEvent], is_buyer: bool) -> dict[str, Any]:
    """What the agent delivered (numbered versions, current first), the workspace, the review, the timeline."""
    review = Review.objects.filter(order=order).first() if order.status == Status.COMPLETED else None
    quota_left = order.quota_left
    versions = delivery_versions(earlier_deliverables(order, role), events)
    return {
        "deliverables": deliverable_items(order, role),
        "versions": versions,
        "current_version": max(sum(event.action == "deliver" for event in events), len(versions) + 1),
        "timeline": timeline(events),
        "last_event_id": events[-1].id if events else "",
        "resolution": resolution.resolution_to_dict(order),
        "review": review,
        "can_review": is_buyer and order.status == Status.COMPLETED and review is None,
        "workspace": order.is_workspace,
        # While the agent owes a delivery: when it is due (a workspace has its window instead).
        "due_at": order.due_at if order.status in AWAITING_DELIVERY else None,
        "quota_left": quota_left,
        "can_generate": is_buyer
        and order.is_workspace
        and order.status == Status.IN_PROGRESS
        and quota_left != 0
        and (order.workspace_expires_at is None or order.workspace_expires_at > timezone.now()),
    }


def _checkout_codes(payment: PaymentInstructions | None, order: Order) -> dict[str, str]:
    """The QR codes of the checkout links, as inline SVG, and the Solana Pay transaction request
    link (`solana:` and this order's endpoint, at PUBLIC_URL: the address wallets can reach)."""
    if payment is None:
        return {}
    if payment.get("solana_pay_url"):
        endpoint = settings.PUBLIC_URL.rstrip("/") + reverse("solana_pay_request", args=[order.id])
        return {
            "solana_pay_qr": checkout.qr_svg(str(payment["solana_pay_url"]), title="Solana Pay QR code"),
            "solana_pay_request_url": checkout.transaction_request_url(endpoint),
        }
    if payment.get("eip681_url"):
        return {"eip681_qr": checkout.qr_svg(str(payment["eip681_url"]), title="EIP-681 payment QR code")}
    return {}


def viewer(request: HttpRequest, order_id: str, *, details: bool = True) -> tuple[Order, Role, Principal]:
    principal = session_principal(request)
    if principal is None:
        raise Forbidden("Sign in to see this order.", code="authentication_required")
    try:
        order, role = lookup.order_for(principal, order_id, details=details)
    except NotFound:
        raise Http404("No such order.") from None
    return order, role, principal


def _found_by_reference(request: HttpRequest, order: Order, order_id: str, *, details: bool = True) -> Order:
    """A payable order: re-check its waiting claims and look for its Solana Pay transfer now
    (throttled), and keep a worker looking while the page is away. Re-read when that paid it."""
    if order.status not in PAYABLE:
        return order
    if solana_pay_watch.payment_look(order) == "paid":
        order, _role, _principal = viewer(request, order_id, details=details)
    return order


@require_safe
def order_detail(request: HttpRequest, order_id: str) -> HttpResponse:
    if session_principal(request) is None:
        return signin_redirect(request)
    order, role, principal = viewer(request, order_id)
    order = _found_by_reference(request, order, order_id)
    shown = Page(order, role, principal, before=request.GET.get("before", ""))
    return render(request, TEMPLATE, shown.context(request))


@require_safe
def order_poll(request: HttpRequest, order_id: str) -> HttpResponse:
    """HTMX polling: new messages appended, and the order panel when something else happened.

    The common case, a tab left open on an order where nothing happened, answers 204 (htmx swaps
    nothing) from one query: the poller's URL carries the id of the latest event the page has seen
    (`v`), and every change the page shows records an event. A payable order whose payment look is
    due (orders.checkout.solana_pay_watch.payment_look) takes the long way, which looks."""
    principal = session_principal(request)
    if principal is None:  # signed out elsewhere: say so once and stop polling; nothing typed is touched
        signin_url = signin_url_for(reverse("orders:detail", args=[order_id]))
        return render(request, f"{TEMPLATE}#session_ended", {"signin_url": signin_url})
    seen = request.GET.get("v", "")
    state = queries.poll_state(principal, order_id) if seen else None
    if state is not None and state[1] == seen and not solana_pay_watch.payment_look_due(state[0]):
        return HttpResponse(status=204)
    order, role, principal = viewer(request, order_id, details=False)
    order = _found_by_reference(request, order, order_id, details=False)
    stamp = queries.latest_event_id(order)  # first: what is read next is at least this new
    after = request.GET.get("after", "")
    messages = order.messages.order_by("id")
    if after:
        messages = messages.filter(id__gt=after)
    new_messages = list(messages[:MESSAGE_PAGE])
    last_event = (
        OrderEvent.objects.filter(order=order).exclude(action="message").order_by("-id").values_list("id", flat=True)
    ).first() or ""
    changed = last_event != request.GET.get("event", "")
    if not changed:
        last_message = new_messages[-1].id if new_messages else after
        can_message = request.GET.get("m") == "1"
        context = {
            "order": order,
            "last_message_id": last_message,
            "last_event_id": last_event,
            "change_stamp": stamp,
            "can_message": can_message,
            "new_messages": new_messages,
            "poll_seconds": POLL_SECONDS,
            "role": role.value,
        }
        return render(request, f"{TEMPLATE}#poll", context)
    # Something happened besides messages: the panel again, out of band.
    order, role, principal = viewer(request, order_id)
    context = Page(order, role, principal).context(request)
    # preserve_forms: the page keeps every form as the buyer left it (hx-preserve), typed text and all.
    context.update(new_messages=new_messages, panel_oob=True, change_stamp=stamp, preserve_forms=True)
    if (request.GET.get("m") == "1") == context["can_message"]:
        return render(request, f"{TEMPLATE}#poll", context)
    # Messaging opened (paid) or closed: the whole message box (its poller included) replaces the poller.
    body = render_to_string(f"{TEMPLATE}#messages", context, request) + render_to_string(
        f"{TEMPLATE}#panel", context, request
    )
    return HttpResponse(body, headers={"HX-Retarget": "#messages", "HX-Reswap": "outerHTML"})
