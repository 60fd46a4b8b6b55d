"""Wallet sign-in: the server writes the exact message with a single-use nonce, the wallet signs it,
and the nonce is burned by one conditional UPDATE before the signature is checked, so a nonce can
open at most one session however many requests race for it. The session is a bearer token
(`atws_...`) kept only as its hash.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from lib import wallets
from lib.errors import Unauthorized, ValidationFailed
from lib.prepared import Prepared
from lib.validation import Invalid
from payments.chains.config import base_config
from payments.models import SignInChallenge, WalletSession
from payments.signatures import verify_wallet_signature

SESSION_PREFIX = "atws_"


@dataclass(frozen=True)
class WalletIdentity:
    wallet: str
    chain: str


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def signin_message(*, chain: str, wallet: str, nonce: str, issued_at: datetime, expires_at: datetime) -> str:
    """EIP-4361 text for Base; the same fields (the SIWS layout) for Solana."""
    origin = settings.PUBLIC_URL.rstrip("/")
    domain = origin.split("://", 1)[-1]
    account = "Ethereum" if chain == wallets.BASE else "Solana"
    chain_id = base_config().chain_id if chain == wallets.BASE else settings.SOLANA_CLUSTER
    return (
        f"{domain} wants you to sign in with your {account} account:\n{wallet}\n\n"
        "Sign in to Atelier to hire AI agents.\n\n"
        f"URI: {origin}\nVersion: 1\nChain ID: {chain_id}\nNonce: {nonce}\n"
        f"Issued At: {_iso(issued_at)}\nExpiration Time: {_iso(expires_at)}"
    )


def signin_challenge_create(*, chain: str, wallet: str) -> SignInChallenge:
    try:
        wallet = wallets.normalize_address(chain, wallet)
    except Invalid as exc:
        raise ValidationFailed(f"wallet {exc}.", details={"wallet": str(exc)}) from None
    now = timezone.now().replace(microsecond=0)
    expires = now + timedelta(seconds=settings.SIGNIN_NONCE_TTL_SECONDS)
    nonce = secrets.token_hex(16)  # EIP-4361 wants >= 8 alphanumerics
    message = signin_message(chain=chain, wallet=wallet, nonce=nonce, issued_at=now, expires_at=expires)
    return SignInChallenge.objects.create(nonce=nonce, wallet=wallet, chain=chain, message=message, expires_at=expires)


def signin_complete(*, nonce: str, signature: str) -> tuple[WalletSession, str]:
    """Burn the nonce, verify the signature over the stored message, open a session.

    Returns the session and its bearer token (shown once). A failed signature burns the nonce too.
    A Base smart account's signature is checked on chain (EIP-1271, ERC-6492): 503 when the chain
    cannot be asked, and the nonce is spent all the same (ask for a new one).
    """
    now = timezone.now()
    burned = SignInChallenge.objects.filter(nonce=nonce, used_at__isnull=True, expires_at__gt=now).update(used_at=now)
    if not burned:
        raise Unauthorized(
            "This sign-in request has expired or was already used; ask for a new one.", code="invalid_nonce"
        )
    challenge = SignInChallenge.objects.get(nonce=nonce)
    if not verify_wallet_signature(challenge.chain, challenge.wallet, challenge.message, signature):
        raise Unauthorized("The signature does not match the wallet.", code="invalid_signature")
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    session = WalletSession.objects.create(
        token_hash=hashlib.sha256(token.encode()).hexdigest(),
        wallet=challenge.wallet,
        chain=challenge.chain,
        expires_at=now + timedelta(seconds=settings.WALLET_SESSION_TTL_SECONDS),
    )
    return session, token


# Every buyer request with a session token reads it: compiled once (lib.prepared).
_SESSION_BY_HASH = Prepared(lambda slot: WalletSession.objects.filter(token_hash=slot("digest")))


def wallet_session_authenticate(token: str) -> WalletIdentity:
    digest = hashlib.sha256(token.encode()).hexdigest()
    found = _SESSION_BY_HASH.fetch(digest=digest)
    session = found[0] if found else None
    if session is None or session.revoked_at is not None or session.expires_at <= timezone.now():
        raise Unauthorized("The wallet session is not valid; sign in again.", code="invalid_session")
    return WalletIdentity(session.wallet, session.chain)


def wallet_session_revoke(token: str) -> None:
    digest = hashlib.sha256(token.encode()).hexdigest()
    WalletSession.objects.filter(token_hash=digest, revoked_at__isnull=True).update(revoked_at=timezone.now())
