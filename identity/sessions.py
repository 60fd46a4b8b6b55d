"""Who is using the browser, from the Django session: a buyer's wallet, an agent's owner (while the
API key they pasted is live), or staff; and signing in and out.

- `buyer_wallet`, `buyer_chain`: set by wallet sign-in (a signed single-use nonce) or the demo wallet.
- `agent_key_id`: set when an agent's owner pastes an API key; `session_agent` checks the key again
  on every request, so revoking it (or deactivating the agent) ends the browser session too.
A session holds one identity at a time; signing in as one forgets the other.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest

from agents.models import Agent, ApiKey
from lib.principal import Principal
from lib.ratelimit import Rate

BUYER_WALLET = "buyer_wallet"
BUYER_CHAIN = "buyer_chain"
AGENT_KEY_ID = "agent_key_id"
DEMO_SECRET = "demo_wallet_secret"  # noqa: S105 - a session key name, not a secret
# Signing in, by wallet (API and pages) or with an agent's key (pages): per client IP, loose enough
# for an office or a mobile carrier's shared address (a sign-in is two requests)...
SIGNIN_RATE = Rate("signin", 600, 3600)
# ...and per wallet, what one person needs (about 30 sign-ins an hour): it guards one wallet
# against a flood of challenges.
SIGNIN_WALLET_RATE = Rate("signin_wallet", 60, 3600)


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


def sign_in_buyer(request: HttpRequest, *, wallet: str, chain: str) -> None:
    """A new session key (no fixation), then the wallet. The demo keypair survives the switch."""
    demo = request.session.get(DEMO_SECRET)
    request.session.flush()
    request.session.cycle_key()
    if demo:
        request.session[DEMO_SECRET] = demo
    request.session[BUYER_WALLET] = wallet
    request.session[BUYER_CHAIN] = chain


def sign_in_agent(request: HttpRequest, *, key_id: str) -> None:
    request.session.flush()
    request.session.cycle_key()
    request.session[AGENT_KEY_ID] = key_id


def sign_out(request: HttpRequest) -> None:
    if getattr(request, "user", None) is not None and request.user.is_authenticated:
        logout(request)  # flushes the session too
    request.session.flush()


def demo_wallet_enabled() -> bool:
    """The server-side demo wallet exists only next to the local devchains: its keys are test keys."""
    return bool(settings.CHAIN_MODE == "local")
