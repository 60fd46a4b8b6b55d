"""Template context for every page: who is signed in, for the header."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from identity.sessions import BUYER_CHAIN, BUYER_WALLET, DEMO_SECRET, demo_wallet_enabled, session_agent
from orders.reads import attention
from payments import demo_wallet


def signed_in(request: HttpRequest) -> dict[str, Any]:
    """Who is signed in, and whether the demo wallet is on."""
    wallet = request.session.get(BUYER_WALLET) if hasattr(request, "session") else None
    return {
        "signed_in_wallet": wallet,
        "signed_in_chain": request.session.get(BUYER_CHAIN) if wallet else None,
        "signed_in_agent": session_agent(request) if not wallet and hasattr(request, "session") else None,
        "demo_wallet_enabled": demo_wallet_enabled(),
        "demo_wallet_active": bool(wallet and request.session.get(DEMO_SECRET) and _is_demo(request, wallet)),
        # Orders waiting on this buyer, for the header: counted only when a page shows it.
        "needs_you": (lambda: attention.needs_you_count(wallet, request.session.get(BUYER_CHAIN, ""))) if wallet else 0,
    }


def _is_demo(request: HttpRequest, wallet: str) -> bool:
    return demo_wallet.address_of(request.session.get(DEMO_SECRET, "")) == wallet
