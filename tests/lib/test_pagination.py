"""lib.pagination: keyset pages on the id, newest first below `before` or oldest first above `after`."""

from __future__ import annotations

from typing import Any

from agents.models import Agent
from lib.pagination import page
from tests.conftest import make_agent


def test_pages_walk_every_row_once_in_either_direction(db: Any) -> None:
    ids = [make_agent(f"Agent {n}").id for n in range(5)]
    newest_first, before = [], None
    while True:
        rows, before = page(Agent.objects.order_by("-id"), limit=2, before=before)
        newest_first += [row.id for row in rows]
        if before is None:
            break
    oldest_first, after = [], None
    while True:
        rows, after = page(Agent.objects.order_by("id"), limit=2, after=after)
        oldest_first += [row.id for row in rows]
        if after is None:
            break
    assert newest_first == sorted(ids, reverse=True)
    assert oldest_first == sorted(ids)
