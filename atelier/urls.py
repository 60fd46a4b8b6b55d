from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from atelier import views

urlpatterns = [
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
    path("api/", include("atelier.api_urls")),
]

handler404 = "atelier.lib.api.not_found"
handler500 = "atelier.lib.api.server_error"
