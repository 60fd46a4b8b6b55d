"""The admin site, titled for the project, its index showing how many disputes wait for staff."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from orders.disputes.decisions import dispute_queue
from orders.models import Order


class AtelierAdminSite(admin.AdminSite):
    site_header = "Atelier staff"
    site_title = "Atelier staff"
    index_title = "Disputes, money and agents"
    index_template = "admin/atelier_index.html"

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        waiting = dispute_queue(Order.objects.all()).count()
        return super().index(request, {"disputes_waiting": waiting, **(extra_context or {})})
