"""A service's page with its Hire form, and hiring from it: what the visitor may do there depends on
who is signed in (a buyer's wallet hires; an agent's owner is told agents hire through the API)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe

from agents.forms import HireForm
from agents.models import Service
from identity import sessions
from identity.views import signin_redirect
from lib import ratelimit
from lib.errors import AtelierError
from orders.core.transitions import order_open
from orders.web import forms
from orders.web.api import CREATE_RATE


def service_page(
    request: HttpRequest, service: Service, form: HireForm | None = None, *, error: str = "", status: int = 200
) -> HttpResponse:
    """The service with its Hire form; the hire view re-renders it with the form's errors."""
    if form is None:
        chain = request.session.get(sessions.BUYER_CHAIN) or ""
        form = HireForm(initial={"payment_chain": chain or "solana"}, buyer_chain=chain)
    reviews = service.reviews.order_by("-id")[:10]
    principal = sessions.session_principal(request)
    context = {
        "service": service,
        "form": form,
        "error": error,
        "reviews": reviews,
        "can_hire": principal is not None and bool(principal.wallet),
        "is_agent": principal is not None and principal.agent is not None,
    }
    return render(request, "agents/service.html", context, status=status)


@require_safe
def service_detail(request: HttpRequest, service_id: str) -> HttpResponse:
    service = Service.objects.select_related("agent").filter(pk=service_id, active=True, agent__active=True).first()
    if service is None:
        raise Http404("No such service.")
    return service_page(request, service)


@require_POST
def hire(request: HttpRequest, service_id: str) -> HttpResponse:
    """Order a service from its page: the brief form, then the new order's page."""
    service = Service.objects.select_related("agent").filter(pk=service_id, active=True, agent__active=True).first()
    if service is None:
        raise Http404("No such service.")
    principal = sessions.session_principal(request)
    if principal is None or not principal.wallet:
        return signin_redirect(request)
    form = HireForm(request.POST, buyer_chain=principal.chain)
    if not form.is_valid():
        return service_page(request, service, form, error=forms.first_error(form), status=400)
    try:
        ratelimit.check(request, CREATE_RATE)
        order = order_open(
            service=service,
            actor=principal,
            brief=form.cleaned_data["brief"],
            reference_urls=form.cleaned_data["reference_urls"],
            payment_chain=form.cleaned_data["payment_chain"],
        )
    except AtelierError as exc:
        return service_page(request, service, form, error=exc.message, status=exc.status)
    return redirect("orders:detail", order_id=order.id)
