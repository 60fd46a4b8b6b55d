from __future__ import annotations

from django.apps import AppConfig

from lib import requestlog


class AtelierConfig(AppConfig):
    name = "atelier"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from atelier import checks  # noqa: F401 (registers the system checks)

        requestlog.connect_task_signals()
