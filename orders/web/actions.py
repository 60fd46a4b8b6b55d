"""The order page's one POST view: every button posts here with its `action`.

Writes go through `orders.core.transitions.transition`, `orders.core.services` and the checkout.
Without HTMX it redirects back to the page after a success and re-renders the page with the message
after a refusal; with HTMX it renders the changed part (`orders/detail.html#panel`, `#messages`). A
refused action (409, 400, 403) shows its sentence in place, with the status code, never a blank swap.
"""

from __future__ import annotations

from collections.abc import Callable

from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_POST

from identity import sessions
from identity.sessions import session_principal
from lib import ratelimit
from lib.errors import AtelierError, Forbidden
from lib.principal import Principal
from orders import workspaces
from orders.checkout import claims
from orders.core import services
from orders.core.transitions import Role, transition
from orders.models import MESSAGING_STATUSES, BuyerKind, Order
from orders.web import forms
from orders.web.messages_api import MESSAGE_RATE
from orders.web.views import TEMPLATE, HtmxHttpRequest, Page, signin_url_for, viewer
from payments import checkout, demo_wallet


def _session_ended(request: HtmxHttpRequest, order_id: str) -> HttpResponse:
    """An action from an order page whose session ended: sign in, then back to the order (never the
    POST URL). htmx follows HX-Redirect as a whole-page visit; atelier.js keeps what was typed."""
    url = signin_url_for(reverse("orders:detail", args=[order_id]))
    if request.htmx:
        return HttpResponse(status=204, headers={"HX-Redirect": url})
    return redirect(url)


Handler = Callable[[HttpRequest, Order, Principal], None]


def _bound(request: HttpRequest, name: str, form_class: type[Form]) -> Form:
    form = form_class(request.POST)
    if not form.is_valid():
        raise _Invalid(name, form)
    return form


class _Invalid(Exception):
    def __init__(self, name: str, form: Form) -> None:
        super().__init__(forms.first_error(form))
        self.name = name
        self.form = form


def _accept(request: HttpRequest, order: Order, actor: Principal) -> None:
    transition(order.id, "accept", actor)


def _approve(request: HttpRequest, order: Order, actor: Principal) -> None:
    transition(order.id, "approve", actor)


def _revision(request: HttpRequest, order: Order, actor: Principal) -> None:
    form = _bound(request, "revision", forms.RevisionForm)
    transition(order.id, "revision", actor, feedback=form.cleaned_data["feedback"])


def _dispute(request: HttpRequest, order: Order, actor: Principal) -> None:
    form = _bound(request, "dispute", forms.DisputeForm)
    transition(order.id, "dispute", actor, reason=form.cleaned_data["reason"])


def _cancel(request: HttpRequest, order: Order, actor: Principal) -> None:
    form = _bound(request, "cancel", forms.CancelForm)
    reason = form.cleaned_data["reason"]
    transition(order.id, "cancel", actor, **({"reason": reason} if reason else {}))


def _pay(request: HttpRequest, order: Order, actor: Principal) -> None:
    form = _bound(request, "pay", forms.PayForm)
    claims.order_pay(
        order_id=order.id,
        actor=actor,
        tx_hash=form.cleaned_data["escrow_tx_hash"],
        chain=form.cleaned_data["payment_chain"],
        payer_signature=form.cleaned_data["payer_signature"],
    )


def _pay_demo(request: HttpRequest, order: Order, actor: Principal) -> None:
    """The demo wallet sends the USDC transfer on the devchain; then it is verified like any payment."""
    secret = request.session.get(sessions.DEMO_SECRET, "")
    if not sessions.demo_wallet_enabled() or demo_wallet.address_of(secret) != order.buyer_wallet:
        raise Forbidden("This order was not placed with the demo wallet.", code="demo_wallet_unavailable")
    instructions = checkout.payment_instructions(order)
    if instructions is None or order.payment_chain != "solana":
        order.payment_chain = "solana"
        instructions = checkout.payment_instructions(order)
    if instructions is None:
        raise Forbidden("No Solana escrow is configured on this server.", code="demo_wallet_unavailable")
    signature = demo_wallet.pay(secret, instructions)
    claims.order_pay(order_id=order.id, actor=actor, tx_hash=signature, chain="solana")


def _message(request: HttpRequest, order: Order, actor: Principal) -> None:
    form = _bound(request, "message", forms.MessageForm)
    ratelimit.check(request, MESSAGE_RATE)
    services.message_post(order=order, role=Role.BUYER, actor=actor, content=form.cleaned_data["content"])


def _review(request: HttpRequest, order: Order, actor: Principal) -> None:
    form = _bound(request, "review", forms.ReviewForm)
    services.review_create(
        order=order,
        role=Role.BUYER,
        actor=actor,
        rating=form.cleaned_data["rating"],
        comment=form.cleaned_data["comment"],
    )


def _generate(request: HttpRequest, order: Order, actor: Principal) -> None:
    form = _bound(request, "generate", forms.PromptForm)
    workspaces.prompt_create(order_id=order.id, actor=actor, prompt=form.cleaned_data["prompt"])


HANDLERS: dict[str, Handler] = {
    "accept": _accept,
    "pay": _pay,
    "pay_demo": _pay_demo,
    "approve": _approve,
    "revision": _revision,
    "dispute": _dispute,
    "cancel": _cancel,
    "message": _message,
    "review": _review,
    "generate": _generate,
}
# Which part of the page each action changes (and where its refusal is shown).
MESSAGE_ACTIONS = frozenset({"message"})


@require_POST
def order_act(request: HtmxHttpRequest, order_id: str) -> HttpResponse:
    """Every button on the order page posts here with its `action`."""
    if session_principal(request) is None:
        return _session_ended(request, order_id)
    order, role, principal = viewer(request, order_id)
    could_message = order.status in MESSAGING_STATUSES
    action = request.POST.get("action", "")
    target = "messages" if action in MESSAGE_ACTIONS else "panel"
    handler = HANDLERS.get(action)
    bound: dict[str, Form] = {}
    error, status = "", 200
    try:
        if handler is None:
            raise Forbidden(f"Unknown action {action[:40]!r}.", code="unknown_action")
        if role != Role.BUYER or order.buyer_kind == BuyerKind.AGENT:
            raise Forbidden("This view is read-only for you; agents act through the API.", code="read_only")
        handler(request, order, principal)
    except _Invalid as exc:
        bound[exc.name] = exc.form
        error, status = str(exc), 400
    except AtelierError as exc:
        error, status = exc.message, exc.status
    if not error and not request.htmx:
        return redirect(reverse("orders:detail", args=[order.id]) + ("#messages" if target == "messages" else ""))
    # Re-read after the write (or the refusal): the panel shows what is true now.
    order, role, principal = viewer(request, order_id)
    page = Page(order, role, principal, error=error, error_target=target, forms=bound)
    context = page.context(request)
    if not request.htmx:
        return render(request, TEMPLATE, context, status=status)
    if target == "messages":
        return render(request, f"{TEMPLATE}#messages", context, status=status)
    # The panel, and the poller with the new event id so the next poll does not redraw it again;
    # the whole message box (poller included) when messaging opened or closed with this action.
    body = render_to_string(f"{TEMPLATE}#panel", context, request)
    if could_message != context["messaging_open"]:
        context["messages_oob"] = True
        body += render_to_string(f"{TEMPLATE}#messages", context, request)
    else:
        context["poller_oob"] = True
        body += render_to_string(f"{TEMPLATE}#poller", context, request)
    return HttpResponse(body, status=status)
