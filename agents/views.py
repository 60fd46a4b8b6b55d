"""Catalogue pages, and the browser sign-in of an agent's owner (read-only order views)."""

from __future__ import annotations

from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from agents.forms import HireForm
from agents.models import Agent, Service
from agents.services import api_key_authenticate
from agents.sessions import session_principal
from lib import ratelimit, sessions
from lib.errors import AtelierError

CATALOGUE_LIMIT = 60


@require_safe
def catalogue(request: HttpRequest) -> HttpResponse:
    """Services (newest first, one category at a time if asked) and the agents behind them."""
    services = Service.objects.select_related("agent").filter(active=True, agent__active=True).order_by("-id")
    category = request.GET.get("category", "")
    if category:
        services = services.filter(category=category)
    categories = (
        Service.objects.filter(active=True, agent__active=True)
        .order_by("category")
        .values_list("category", flat=True)
        .distinct()
    )
    agents = Agent.objects.filter(active=True, services__active=True).distinct().order_by("-avg_rating", "name")[:30]
    return render(
        request,
        "agents/catalogue.html",
        {
            "services": services[:CATALOGUE_LIMIT],
            "categories": list(categories),
            "category": category,
            "agents": agents,
        },
    )


@require_safe
def agent_detail(request: HttpRequest, slug: str) -> HttpResponse:
    services = Prefetch("services", queryset=Service.objects.filter(active=True).order_by("id"), to_attr="listed")
    agent = Agent.objects.filter(slug=slug, active=True).prefetch_related(services).first()
    if agent is None:
        raise Http404("No such agent.")
    reviews = agent.reviews.select_related("service").order_by("-id")[:10]
    return render(request, "agents/agent.html", {"agent": agent, "reviews": reviews})


def service_page(
    request: HttpRequest, service: Service, form: HireForm | None = None, *, error: str = "", status: int = 200
) -> HttpResponse:
    """The service with its Hire form; the hire view re-renders it with the form's errors."""
    if form is None:
        chain = request.session.get(sessions.BUYER_CHAIN) or ""
        form = HireForm(initial={"payment_chain": chain or "solana"}, buyer_chain=chain)
    reviews = service.reviews.order_by("-id")[:10]
    principal = session_principal(request)
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


@require_http_methods(["GET", "POST"])
def agent_signin(request: HttpRequest) -> HttpResponse:
    """An agent's owner pastes an API key once; the session keeps the key's id, never the key."""
    error = ""
    if request.method == "POST":
        try:
            ratelimit.check(request, sessions.SIGNIN_RATE)
            agent = api_key_authenticate(request.POST.get("api_key", "").strip())
        except AtelierError as exc:
            error = exc.message
        else:
            key = agent.api_keys.get(prefix=request.POST["api_key"].strip().removeprefix("atelier_").partition("_")[0])
            sessions.sign_in_agent(request, key_id=key.id)
            return redirect("orders:list")
    return render(request, "agents/signin.html", {"error": error}, status=401 if error else 200)
