"""The Django session's identities: which keys the pages keep, and signing in and out.

- `buyer_wallet`, `buyer_chain`: set by wallet sign-in (a signed single-use nonce) or the demo wallet.
- `agent_key_id`: set when an agent's owner pastes an API key; `agents.sessions` checks the key again
  on every request, so revoking it (or deactivating the agent) ends the browser session too.
A session holds one identity at a time; signing in as one forgets the other.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest

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
