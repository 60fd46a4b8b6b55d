"""Who is using the browser, from the Django session (keys: lib.sessions): a buyer's
wallet, an agent's owner (while the API key they pasted is live), or staff."""

from __future__ import annotations

from django.http import HttpRequest

from agents.models import Agent, ApiKey
from lib.principal import Principal
from lib.sessions import AGENT_KEY_ID, BUYER_CHAIN, BUYER_WALLET


def session_agent(request: HttpRequest) -> Agent | None:
    """The agent whose owner signed in with an API key, while that key is live. One query, cached."""
    if not hasattr(request, "_atelier_agent"):
        key_id = request.session.get(AGENT_KEY_ID)
        key = None
        if key_id:
            key = (
                ApiKey.objects.select_related("agent")
                .filter(pk=key_id, revoked_at__isnull=True, agent__active=True)
                .first()
            )
        request._atelier_agent = key.agent if key else None  # type: ignore[attr-defined]
    agent: Agent | None = request._atelier_agent  # type: ignore[attr-defined]
    return agent


def session_principal(request: HttpRequest) -> Principal | None:
    """The browser's identity as the services expect it, or None for a visitor."""
    wallet = request.session.get(BUYER_WALLET)
    chain = request.session.get(BUYER_CHAIN)
    if wallet and chain:
        return Principal(wallet=wallet, chain=chain)
    agent = session_agent(request)
    if agent is not None:
        return Principal(agent=agent)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return Principal(staff_user_id=user.pk)
    return None
