"""System checks for `manage.py check --deploy`: what would make a deployment quietly unsafe."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Warning, register

from lib import ratelimit


@register("atelier", deploy=True)
def rate_limiter_counts(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The limiter fails open; a deployment whose counters are unreachable has no limits at all."""
    reason = ratelimit.health()
    if reason is None:
        return []
    return [
        Warning(
            f"Rate limits are off: {reason}.",
            hint="Run `manage.py migrate` (it creates the counters' table), or fix CACHE_URL.",
            id="atelier.W001",
        )
    ]


@register("atelier", deploy=True)
def chain_mode(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.CHAIN_MODE != "local":
        return []
    return [
        Warning(
            "CHAIN_MODE is local: payments are checked against the local devchain with its test keys, "
            "and the demo wallet signs in for anyone.",
            hint="Set CHAIN_MODE=rpc with SOLANA_RPC_URL, BASE_RPC_URL and the escrow secrets.",
            id="atelier.W002",
        )
    ]
