"""The per-request wallet signature: a wallet signs `atelier:{wallet}:{ts}`, or (v2) the method, path
and body of one request, instead of holding a session. Each signed message is accepted once."""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from identity.wallet_signin import WalletIdentity
from lib import wallets
from lib.errors import ServiceUnavailable, Unauthorized
from lib.validation import Invalid

# A signed timestamp may be this far ahead of our clock: enough for a client's drift, too little to
# sign credentials for later and keep them in reserve.
WALLET_SIGNATURE_FUTURE_SKEW_SECONDS = 30
WALLET_SIGNATURE_V2 = "2"


@dataclass(frozen=True)
class SignedRequest:
    """What the v2 per-request signature covers besides the wallet and the timestamp."""

    method: str
    path: str  # with its query string, as sent
    body_sha256: str  # hex


def wallet_signature_message(*, wallet: str, timestamp: str, request: SignedRequest | None = None) -> str:
    """`atelier:{wallet}:{ts}` (the product's form), or, bound to one request,
    `atelier-v2:{wallet}:{ts}:{METHOD}:{path}:{sha256hex(body)}`."""
    if request is None:
        return f"atelier:{wallet}:{timestamp}"
    return f"atelier-v2:{wallet}:{timestamp}:{request.method}:{request.path}:{request.body_sha256}"


def wallet_signature_authenticate(
    *, wallet: str, signature: str, timestamp: str, request: SignedRequest | None = None
) -> WalletIdentity:
    """A per-request wallet signature: over `wallet_signature_message(...)`, `ts` at most 5 minutes
    old and 30 s ahead, accepted once (then remembered in the shared cache until it would expire).

    `ts` is unix seconds or milliseconds, as sent; the message is built from the exact string.
    """
    chain = wallets.chain_of(wallet)
    try:
        wallet_normalized = wallets.normalize_address(chain, wallet)
    except Invalid as exc:
        raise Unauthorized(f"wallet {exc}.", code="invalid_wallet") from None
    try:
        ts = int(timestamp)
        signed_at = ts / 1000 if ts > 10**11 else float(ts)
    except (ValueError, OverflowError):  # OverflowError: hundreds of digits do not fit a float
        raise Unauthorized("wallet_sig_ts must be a unix timestamp.", code="invalid_signature") from None
    now = time.time()
    if signed_at < now - settings.WALLET_SIGNATURE_WINDOW_SECONDS:
        raise Unauthorized("The wallet signature has expired; sign a fresh timestamp.", code="signature_expired")
    if signed_at > now + WALLET_SIGNATURE_FUTURE_SKEW_SECONDS:
        raise Unauthorized(
            f"The wallet signature's timestamp is {signed_at - now:.0f} s ahead of the server's clock; "
            "sign the current time (check the clock).",
            code="signature_in_future",
        )
    message = wallet_signature_message(wallet=wallet, timestamp=timestamp, request=request)
    if not wallets.verify_signature(chain, wallet_normalized, message, signature):
        raise Unauthorized("The wallet signature does not match.", code="invalid_signature")
    # Burnt only once verified, so a forgery cannot use up someone's real signature. Keyed by the
    # signed message, not the signature bytes: an ECDSA signature has a second valid form.
    # Remembered a little past the window: other app servers' clocks may run behind this one's.
    remaining = signed_at + settings.WALLET_SIGNATURE_WINDOW_SECONDS - now
    _burn_signed_message(chain, message, ttl=max(0, math.ceil(remaining)) + WALLET_SIGNATURE_FUTURE_SKEW_SECONDS)
    return WalletIdentity(wallet_normalized, chain)


def _burn_signed_message(chain: str, message: str, *, ttl: int) -> None:
    key = "walletsig:" + hashlib.sha256(f"{chain}:{message}".encode()).hexdigest()
    try:
        # add() is atomic in every backend: of two racing requests, exactly one adds the key.
        fresh = cache.add(key, 1, timeout=ttl)
    except Exception as exc:  # Redis down: fail closed, a replay check that did not run is no check
        raise ServiceUnavailable(
            "Wallet signatures cannot be checked right now; retry, or sign in for a session token.",
            code="signature_check_unavailable",
        ) from exc
    if not fresh:
        raise Unauthorized(
            "This wallet signature was already used; sign each request afresh.", code="signature_replayed"
        )
