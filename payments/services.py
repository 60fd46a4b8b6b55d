"""Payments' public face to the other apps: wallet sign-in, escrow verification, settlement.

Sign-in is replay-safe: the server writes the exact message with a single-use nonce, the wallet
signs it, and the nonce is burned by one conditional UPDATE before the signature is checked, so
a nonce can open at most one session however many requests race for it.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from atelier.lib.errors import Conflict, ServiceUnavailable, Unauthorized, ValidationFailed
from atelier.lib.tasks import enqueue
from atelier.lib.validation import Invalid
from orders.models import Order
from payments import chains, ledger, wallets
from payments.chains.config import base_config
from payments.ledger import usd_to_base_units
from payments.models import (
    LedgerKind,
    OutgoingTransfer,
    Payment,
    PaymentStatus,
    SignInChallenge,
    TransferKind,
    WalletSession,
)

SESSION_PREFIX = "atws_"
PAYMENT_CLOCK_SLACK_SECONDS = 60


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
    """
    now = timezone.now()
    burned = SignInChallenge.objects.filter(nonce=nonce, used_at__isnull=True, expires_at__gt=now).update(used_at=now)
    if not burned:
        raise Unauthorized(
            "This sign-in request has expired or was already used; ask for a new one.", code="invalid_nonce"
        )
    challenge = SignInChallenge.objects.get(nonce=nonce)
    if not wallets.verify_signature(challenge.chain, challenge.wallet, challenge.message, signature):
        raise Unauthorized("The signature does not match the wallet.", code="invalid_signature")
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    session = WalletSession.objects.create(
        token_hash=hashlib.sha256(token.encode()).hexdigest(),
        wallet=challenge.wallet,
        chain=challenge.chain,
        expires_at=now + timedelta(seconds=settings.WALLET_SESSION_TTL_SECONDS),
    )
    return session, token


def wallet_session_authenticate(token: str) -> WalletIdentity:
    digest = hashlib.sha256(token.encode()).hexdigest()
    session = WalletSession.objects.filter(token_hash=digest).first()
    if session is None or session.revoked_at is not None or session.expires_at <= timezone.now():
        raise Unauthorized("The wallet session is not valid; sign in again.", code="invalid_session")
    return WalletIdentity(session.wallet, session.chain)


def wallet_session_revoke(token: str) -> None:
    digest = hashlib.sha256(token.encode()).hexdigest()
    WalletSession.objects.filter(token_hash=digest, revoked_at__isnull=True).update(revoked_at=timezone.now())


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


# --- Escrow: verifying payments ----------------------------------------------------------------


def price_base_units(order: Order) -> int:
    return usd_to_base_units(order.quoted_price_usd or Decimal(0))


def payer_wallet(order: Order) -> str:
    """The wallet that must sign or send the payment: the buyer's, or a buyer agent's own wallet."""
    if order.buyer_agent is not None:
        agent = order.buyer_agent
        return agent.payout_address_base if order.payment_chain == wallets.BASE else agent.payout_wallet
    return order.buyer_wallet


def payment_instructions(order: Order) -> dict[str, object] | None:
    """What to pay for `order`, as the API and the order page show it. No network I/O.
    None when this server has no escrow configured for the order's chain."""
    try:
        instructions = chains.client(order.payment_chain).payment_instructions()
    except chains.ChainError:
        return None
    return {
        "chain": order.payment_chain,
        "amount_base_units": price_base_units(order),
        "escrow_address": instructions.escrow_address,
        "token_account": instructions.token_account,
        "token": instructions.token,
        "decimals": instructions.decimals,
        "payment_reference": order.payment_reference,
    }


def normalize_tx_hash(chain: str, tx_hash: str) -> str:
    try:
        return chains.client(chain).normalize_tx_hash(tx_hash)
    except chains.PaymentRejected as exc:
        raise ValidationFailed(exc.message, code=exc.code, details={"escrow_tx_hash": exc.message}) from None
    except chains.ChainUnavailable as exc:  # e.g. this chain's escrow is not configured: 503, not a 500
        raise ServiceUnavailable(
            f"The {chain} network cannot be reached right now; nothing was changed, try again.",
            code="chain_unavailable",
        ) from exc


def payment_verify(order: Order, *, chain: str, tx_hash: str) -> chains.VerifiedTransfer | None:
    """Check `tx_hash` on-chain for `order`. None while it is not final; raises a 4xx when it can
    never pay this order, and 503 when the chain cannot be asked. Network I/O: call outside transactions."""
    buyer = payer_wallet(order)
    if not buyer:
        raise ValidationFailed(
            f"The buying agent has no {chain} wallet to pay from; set it with PATCH /api/agents/me.",
            code="no_payer_wallet",
        )
    try:
        return chains.client(chain).verify_payment(
            tx_hash,
            buyer=buyer,
            min_amount=price_base_units(order),
            reference=order.payment_reference,
            # Block clocks drift a little from ours; a minute of slack, never more.
            not_before=int(order.created_at.timestamp()) - PAYMENT_CLOCK_SLACK_SECONDS,
        )
    except chains.PaymentPending:
        return None
    except chains.PaymentRejected as exc:
        raise ValidationFailed(exc.message, code=exc.code, details={"escrow_tx_hash": exc.message}) from None
    except chains.ChainUnavailable as exc:
        raise ServiceUnavailable(
            f"The {chain} network cannot be reached right now; nothing was changed, try again.",
            code="chain_unavailable",
        ) from exc


def ensure_hash_unused(order: Order, *, chain: str, tx_hash: str) -> None:
    """409 before any chain I/O when the transaction already pays (or waits to pay) another order.
    Races past this check are settled by the unique constraint in `payment_record`."""
    if Payment.objects.filter(chain=chain, tx_hash=tx_hash).exclude(order=order).exists():
        raise Conflict("This transaction already pays another order.", code="tx_hash_used")


def payment_claim(order: Order, *, chain: str, tx_hash: str) -> Payment:
    """Hold `tx_hash` for `order` while it is not final. Raises 409 if another order holds it."""
    existing = Payment.objects.filter(chain=chain, tx_hash=tx_hash).first()
    if existing is not None:
        if existing.order_id != order.id:
            raise Conflict("This transaction already pays another order.", code="tx_hash_used")
        return existing
    try:
        with transaction.atomic():
            return Payment.objects.create(order=order, chain=chain, tx_hash=tx_hash, status=PaymentStatus.PENDING)
    except IntegrityError:
        raise Conflict("This transaction already pays another order.", code="tx_hash_used") from None


def payment_release_claim(order: Order, *, chain: str, tx_hash: str) -> None:
    """A pending transaction turned out not to pay this order: free the hash."""
    Payment.objects.filter(order=order, chain=chain, tx_hash=tx_hash, status=PaymentStatus.PENDING).delete()


def payment_record(order: Order, *, chain: str, transfer: chains.VerifiedTransfer) -> Payment:
    """Inside the caller's transaction: the verified payment row and its escrow journal.

    Raises 409 if the transaction already pays another order (the unique constraint decides races).
    """
    payment = Payment.objects.select_for_update().filter(chain=chain, tx_hash=transfer.tx_hash).first()
    if payment is not None and payment.order_id != order.id:
        raise Conflict("This transaction already pays another order.", code="tx_hash_used")
    fields = {
        "status": PaymentStatus.VERIFIED,
        "payer": transfer.payer,
        "amount_base_units": transfer.amount,
        "verified_at": timezone.now(),
    }
    if payment is None:
        try:
            with transaction.atomic():
                payment = Payment.objects.create(order=order, chain=chain, tx_hash=transfer.tx_hash, **fields)
        except IntegrityError:
            raise Conflict("This transaction already pays another order.", code="tx_hash_used") from None
    else:
        for name, value in fields.items():
            setattr(payment, name, value)
        payment.save(update_fields=list(fields))
    ledger.escrow_in(order, chain, transfer.amount)
    return payment


def pending_payment(order: Order) -> Payment | None:
    return order.payments.filter(status=PaymentStatus.PENDING).first()


# --- Settlement: called by orders.transitions inside the transition's transaction ---------------


def _verified_payment(order: Order) -> Payment | None:
    return order.payments.filter(status=PaymentStatus.VERIFIED).first()


def _agent_destination(order: Order) -> tuple[str, str]:
    agent = order.agent
    if agent.payout_chain == wallets.BASE:
        return wallets.BASE, agent.payout_address_base
    return wallets.SOLANA, agent.payout_wallet


def _schedule(transfer: OutgoingTransfer) -> None:
    from payments.tasks import send_transfer  # the task module imports this one

    enqueue(send_transfer, transfer.pk)  # in this transaction: the transfer and its task commit together


def _payout(order: Order, amount: int) -> None:
    if amount <= 0:
        return
    chain, address = _agent_destination(order)
    _schedule(
        OutgoingTransfer.objects.create(
            order=order, kind=TransferKind.PAYOUT, chain=chain, to_address=address, amount_base_units=amount
        )
    )


def _refund(order: Order, payment: Payment, amount: int, *, kind: LedgerKind = LedgerKind.REFUND_DUE) -> None:
    if amount <= 0:
        return
    ledger.refund_due(order, payment.chain, amount, kind=kind)
    _schedule(
        OutgoingTransfer.objects.create(
            order=order,
            kind=TransferKind.REFUND,
            chain=payment.chain,
            to_address=payment.payer,
            amount_base_units=amount,
        )
    )


def settle_release(order: Order) -> dict[str, int]:
    """Approval (or staff release): 90% of the price to the agent, 10% fee, any overpayment back."""
    return settle_split(order, agent_gross=price_base_units(order))


def settle_split(order: Order, *, agent_gross: int) -> dict[str, int]:
    """`agent_gross` of the escrow goes to the agent (less the fee); the rest back to the buyer."""
    payment = _verified_payment(order)
    if payment is None:
        return {}
    paid = payment.amount_base_units
    agent_gross = min(agent_gross, paid)
    agent_share, fee = ledger.release(order, payment.chain, agent_gross) if agent_gross else (0, 0)
    _payout(order, agent_share)
    back = paid - agent_gross
    over = paid - price_base_units(order)
    _refund(order, payment, back, kind=LedgerKind.OVERPAYMENT_DUE if back == over else LedgerKind.REFUND_DUE)
    return {"agent_share": agent_share, "fee": fee, "refund": back}


def settle_refund(order: Order) -> dict[str, int]:
    """Cancellation of a paid order (or staff refund): everything paid goes back to the buyer."""
    return settle_split(order, agent_gross=0)
