"""Sign-in pages: a buyer's browser wallet (`window.solana` / `window.ethereum`) or the demo wallet,
and an agent's owner with an API key.

The browser flow: `static/signin.js` asks the wallet to connect, gets a nonce and the exact message
from POST /api/auth/nonce, has the wallet sign it, and posts nonce and signature to `signin_wallet`
as an ordinary form. The server burns the nonce, verifies the signature and stores the wallet in
the Django session (`buyer_wallet`, `buyer_chain`). Without JavaScript there is no browser wallet;
in local chain mode the demo wallet signs in with a plain form.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from agents.services import api_key_authenticate
from identity import sessions, wallet_signin
from lib import ratelimit
from lib.errors import AtelierError
from payments import demo_wallet


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        return target
    return "/orders/"


def signin_redirect(request: HttpRequest) -> HttpResponse:
    """To the sign-in page, and back to this page after."""
    return redirect(f"{reverse('signin')}?{urlencode({'next': request.get_full_path()})}")


@require_safe
def signin(request: HttpRequest) -> HttpResponse:
    return _signin_page(request)


def _signin_page(request: HttpRequest, *, error: str = "", status: int = 200) -> HttpResponse:
    context = {
        "next": _next_url(request),
        "error": error,
        "demo_address": demo_wallet.address_of(request.session.get(sessions.DEMO_SECRET, "")),
    }
    return render(request, "identity/signin.html", context, status=status)


@require_POST
def signin_wallet(request: HttpRequest) -> HttpResponse:
    """Finish a wallet sign-in: the nonce from /api/auth/nonce and the wallet's signature of its message."""
    try:
        ratelimit.check(request, sessions.SIGNIN_RATE)
        session, token = wallet_signin.signin_complete(
            nonce=request.POST.get("nonce", "").strip(), signature=request.POST.get("signature", "").strip()
        )
    except AtelierError as exc:
        return _signin_page(request, error=exc.message, status=exc.status)
    # The browser keeps a Django session; the bearer token made for scripts is never handed out.
    wallet_signin.wallet_session_revoke(token)
    sessions.sign_in_buyer(request, wallet=session.wallet, chain=session.chain)
    return redirect(_next_url(request))


@require_POST
def signin_demo(request: HttpRequest) -> HttpResponse:
    """Local chain mode only: a keypair for this browser, funded from the devchain faucet on first
    use, signs the sign-in message on the server. The same nonce and verification as any wallet."""
    if not sessions.demo_wallet_enabled():
        return _signin_page(request, error="The demo wallet exists only in local chain mode.", status=403)
    try:
        ratelimit.check(request, sessions.SIGNIN_RATE)
        secret = request.session.get(sessions.DEMO_SECRET)
        if not secret:
            secret = demo_wallet.new_secret()
            demo_wallet.fund(secret)
            request.session[sessions.DEMO_SECRET] = secret
        challenge = wallet_signin.signin_challenge_create(chain="solana", wallet=demo_wallet.address_of(secret))
        session, token = wallet_signin.signin_complete(
            nonce=challenge.nonce, signature=demo_wallet.sign_message(secret, challenge.message)
        )
    except AtelierError as exc:
        return _signin_page(request, error=exc.message, status=exc.status)
    wallet_signin.wallet_session_revoke(token)
    sessions.sign_in_buyer(request, wallet=session.wallet, chain=session.chain)
    return redirect(_next_url(request))


@require_http_methods(["GET", "POST"])
def agent_signin(request: HttpRequest) -> HttpResponse:
    """An agent's owner pastes an API key once; the session keeps the key's id, never the key."""
    error = ""
    if request.method == "POST":
        try:
            ratelimit.check(request, sessions.SIGNIN_RATE)
            agent = api_key_authenticate(request.POST.get("api_key", "").strip())
        except AtelierError as exc:
            error = exc.message
        else:
            key = agent.api_keys.get(prefix=request.POST["api_key"].strip().removeprefix("atelier_").partition("_")[0])
            sessions.sign_in_agent(request, key_id=key.id)
            return redirect("orders:list")
    return render(request, "identity/agent_signin.html", {"error": error}, status=401 if error else 200)


@require_POST
def signout(request: HttpRequest) -> HttpResponse:
    sessions.sign_out(request)
    return redirect("/")
