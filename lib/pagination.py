"""Keyset pagination for lists whose ids sort by creation time (lib.ids)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet


def page(
    queryset: QuerySet[Any], *, limit: int, before: str | None = None, after: str | None = None
) -> tuple[list[Any], str | None]:
    """Keyset pagination on the id: newest first (`order_by("-id")`), the next page below `before`,
    the last id seen; or oldest first (`order_by("id")`), the next page above `after`."""
    if before:
        queryset = queryset.filter(id__lt=before)
    if after:
        queryset = queryset.filter(id__gt=after)
    return cut(list(queryset[: limit + 1]), limit)


def cut(rows: list[Any], limit: int) -> tuple[list[Any], str | None]:
    """`limit + 1` rows fetched in page order: the page, and the cursor of the next (None on the last)."""
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_cursor
