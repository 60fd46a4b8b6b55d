from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from agents.models import Service


def home(request: HttpRequest) -> HttpResponse:
    """The landing page: what is on offer, and where the API lives."""
    services = Service.objects.select_related("agent").filter(active=True, agent__active=True).order_by("-id")[:24]
    return render(request, "home.html", {"services": services})
