"""Catalogue pages: the services and the agents behind them (a service's own page, with its Hire
form, is among the order pages: orders.web.hiring)."""

from __future__ import annotations

from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from agents.models import Agent, Service

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
