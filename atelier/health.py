"""`GET /healthz` and `GET /readyz`, for load balancers, orchestrators and `make run`.

- `/healthz`: the process is up and answers (liveness). Always 200 while it can run a view; it
  touches nothing shared, so a database outage does not get every app server restarted.
- `/readyz`: this app server can do its work (readiness): the database, the shared cache, the rate
  limiter able to count, the private file storage, and each chain's RPC answering. 200
  `{"status": "ok", "checks": {...}}`, or 503 with a short reason per failing check.

Not rate-limited and no session: a probe calls them every few seconds. Reasons name the kind of
failure (the exception's class), never a URL, key or message that could carry a credential; the
details go to the log.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from atelier.lib import ratelimit
from atelier.lib.privatestorage import private_storage

log = logging.getLogger("atelier.health")

# Each chain's cheapest read; both answer on the devchain and on public nodes.
CHAIN_PROBES = {"solana": "getLatestBlockhash", "base": "eth_blockNumber"}
CHAIN_PROBE_TIMEOUT_SECONDS = 3.0


def _failed(check: str, what: str, exc: Exception) -> str:
    log.warning("readyz: %s failing: %s", check, exc, exc_info=False)
    return f"{what} ({type(exc).__name__})"


def _chain(chain: str) -> str | None:
    url = settings.SOLANA_RPC_URL if chain == "solana" else settings.BASE_RPC_URL
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": CHAIN_PROBES[chain], "params": []}
    try:
        response = requests.post(url, json=body, timeout=CHAIN_PROBE_TIMEOUT_SECONDS)
        response.raise_for_status()
        if "result" not in response.json():
            raise ValueError("no result in the JSON-RPC answer")
    except Exception as exc:
        return _failed(chain, f"the {chain} RPC does not answer", exc)
    return None


def problems(*, chains: bool = True) -> dict[str, str | None]:
    """Each check's failure (a sentence), or None where it passed."""
    found: dict[str, str | None] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        found["database"] = None
    except Exception as exc:
        found["database"] = _failed("database", "the database does not answer", exc)
    try:
        cache.get("readyz")
        found["cache"] = None
    except Exception as exc:
        found["cache"] = _failed("cache", "the shared cache does not answer", exc)
    limiter = ratelimit.health()
    if limiter is not None:
        log.warning("readyz: rate_limiter failing: %s", limiter)
        limiter = re.sub(r"\((\w+): .*\)$", r"(\1)", limiter, flags=re.DOTALL)  # the class, not the message
    found["rate_limiter"] = limiter
    try:
        private_storage().exists("readyz-probe")
        found["storage"] = None
    except Exception as exc:
        found["storage"] = _failed("storage", "the private file storage does not answer", exc)
    if chains:
        for chain in CHAIN_PROBES:
            found[f"chain_{chain}"] = _chain(chain)
    return found


def _answer(found: dict[str, str | None]) -> JsonResponse:
    failing = {name: reason for name, reason in found.items() if reason}
    return JsonResponse(
        {"status": "failing" if failing else "ok", "checks": {name: reason or "ok" for name, reason in found.items()}},
        status=503 if failing else 200,
    )


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    return _answer(problems())
