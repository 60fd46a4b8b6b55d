from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps

from lib import requestlog


class AtelierConfig(AppConfig):
    name = "atelier"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from atelier import checks  # noqa: F401 (registers the system checks)

        requestlog.connect_task_signals()


class AtelierAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the project's site (atelier.admin_site): titled, the queue counted."""

    default = False  # named in INSTALLED_APPS; AtelierConfig stays this module's default
    default_site = "atelier.admin_site.AtelierAdminSite"
