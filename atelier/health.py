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

from lib import ratelimit
from lib.privatestorage import private_storage
from payments.models import Reconciliation
from payments.reconcile import FEE_UNITS, fee_balance_low

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


def warnings() -> dict[str, str]:
    """What needs an operator soon but does not stop this server's work: a hot wallet short of the
    coin that pays its fees (read by the last reconciliation; no chain call here)."""
    found = {}
    for chain in CHAIN_PROBES:
        last = Reconciliation.objects.filter(chain=chain).order_by("-ran_at").first()
        if last is not None and fee_balance_low(last):
            found[f"hot_wallet_{chain}"] = (
                f"the {chain} hot wallet holds {last.fee_balance} {FEE_UNITS[chain]} for fees, below the floor of "
                f"{settings.HOT_WALLET_FEE_FLOOR[chain]}: payouts and refunds stop when it runs out"
            )
    return found


def _answer(found: dict[str, str | None], warned: dict[str, str] | None = None) -> JsonResponse:
    failing = {name: reason for name, reason in found.items() if reason}
    body: dict[str, Any] = {
        "status": "failing" if failing else "ok",
        "checks": {name: reason or "ok" for name, reason in found.items()},
    }
    if warned:
        body["warnings"] = warned
    return JsonResponse(body, status=503 if failing else 200)


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    found = problems()
    try:
        warned = warnings()
    except Exception as exc:  # the database check above says why
        log.warning("readyz: warnings not read: %s", exc)
        warned = {}
    return _answer(found, warned)
