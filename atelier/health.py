"""`GET /healthz`: can this app server do its work? For load balancers and `make run`.

200 `{"status": "ok", "checks": {...}}` when the database and the shared cache answer and the rate
limiter can count;
503 with the failing checks' reasons otherwise. Not rate-limited and no session: a probe calls it
every few seconds.
"""

from __future__ import annotations

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from atelier.lib import ratelimit


def problems() -> dict[str, str | None]:
    """Each check's failure (a sentence), or None where it passed."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = None
    except Exception as exc:
        database = f"the database does not answer ({type(exc).__name__}: {exc})"
    try:
        cache.get("healthz")
        shared_cache = None
    except Exception as exc:
        shared_cache = f"the shared cache does not answer ({type(exc).__name__}: {exc})"
    return {"database": database, "cache": shared_cache, "rate_limiter": ratelimit.health()}


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    found = problems()
    failing = {name: reason for name, reason in found.items() if reason}
    return JsonResponse(
        {"status": "failing" if failing else "ok", "checks": {name: reason or "ok" for name, reason in found.items()}},
        status=503 if failing else 200,
    )
