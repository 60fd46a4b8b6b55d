from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, URLResolver, include, path, re_path

from api.endpoints import unknown_endpoint
from atelier.health import healthz, readyz
from atelier.metrics import metrics

urlpatterns: list[URLPattern | URLResolver] = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/", include("atelier.api_urls")),
    re_path(r"^api(?:/|$)", unknown_endpoint),  # the envelope, in DEBUG too
    path("", include("atelier.page_urls")),
]


def bench_bare(request: HttpRequest) -> JsonResponse:
    """`make bench`'s baseline: the least a Django JSON view can do, through the same middleware."""
    return JsonResponse({"success": True, "data": {}})


if settings.ATELIER_BENCH:
    urlpatterns.insert(0, path("bench/bare", bench_bare))

handler404 = "api.endpoints.not_found"
handler500 = "api.endpoints.server_error"
