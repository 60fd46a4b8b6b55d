from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from idempotency.models import IdempotencyKey


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(admin.ModelAdmin[IdempotencyKey]):
    """Read-only: what a retried request would get back, for support questions."""

    list_display = ("key", "method", "path", "owner", "state", "status", "created_at", "expires_at")
    list_filter = ("state", "method")
    search_fields = ("key", "owner", "path")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in IdempotencyKey._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
