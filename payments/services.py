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
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from lib import wallets
from lib.errors import Conflict, ServiceUnavailable, Unauthorized, ValidationFailed
from lib.prepared import Prepared
from lib.tasks import enqueue
from lib.validation import Invalid
from payments import chains, checkout, ledger
from payments.chains.config import base_config
from payments.ledger import usd_to_base_units
from payments.models import (
    ACCOUNTED,
    WHOLE_TRANSACTION,
    LedgerKind,
    OutgoingTransfer,
    Payment,
    PaymentStatus,
    SignInChallenge,
    TransferKind,
    UnappliedReason,
    WalletSession,
)
from payments.shapes import PaymentInstructions, UnappliedTransfer
from payments.signatures import verify_wallet_signature
from payments.tasks import hold, send_transfer

if TYPE_CHECKING:  # for the type only: orders sits above payments and calls into it
    from orders.models import Order

SESSION_PREFIX = "atws_"
PAYMENT_CLOCK_SLACK_SECONDS = 60
# A claim of a transfer not final yet is looked at for a day, then dropped; an order waits on a few at most.
PAYMENT_CLAIM_TTL = timedelta(hours=24)
MAX_PENDING_CLAIMS = 5
# Below this an unapplied transfer is recorded but not returned by itself: returning dust costs the
# escrow more in fees than it sends, which a griefer could repeat at will. Staff can return it.
MIN_AUTO_RETURN_BASE_UNITS = 10_000  # 0.01 USDC


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


# --- Escrow: binding transfers to orders --------------------------------------------------------
#
# A self-declared address is never proof of who paid. A transfer binds to an order by its memo
# (Solana: the order's payment reference, exactly once), or on Base, which carries no reference, by
# a USDC Transfer log into escrow whose `from` is a proven payer, whoever sent the transaction (a
# bundler, a relayer): the buyer's wallet session (or per-request signature) on Base, or a
# signature by the paying account over `atelier:pay:<payment reference>` (EIP-191 by its key, or
# EIP-1271 / ERC-6492 by a smart account). Claims of a transfer that is not final yet hold nothing;
# whatever is final and in escrow is accounted for once, per Solana transaction and per Base log:
# applied to the order it is bound to, or recorded as unapplied and returned to its sender.


class Unapplicable(ValidationFailed):
    """A final transfer bound to the order is in escrow but cannot pay it (underpaid, too old)."""

    def __init__(
        self, message: str, *, code: str, transfer: chains.VerifiedTransfer, details: dict[str, object]
    ) -> None:
        super().__init__(message, code=code, details=details)
        self.transfer = transfer


def price_base_units(order: Order) -> int:
    return usd_to_base_units(order.quoted_price_usd or Decimal(0))


def pay_proof_message(reference: str) -> str:
    """What the sending wallet signs (EIP-191) to claim a Base transfer for the order with `reference`."""
    return f"atelier:pay:{reference}"


def proven_payer(
    *, chain: str, reference: str, signature: str, caller_wallet: str, caller_chain: str, payer: str = ""
) -> str | None:
    """The address proven to have paid a Base transfer for the order with `reference`: `payer` when
    it signed (its key, or as a smart account: EIP-1271 / ERC-6492, asked on chain), else the
    signer recovered from `signature`, else the caller's own wallet if it signed in on Base. Solana
    needs none (None): the memo binds. 400 when Base has no proof; 503 when a smart account's
    signature cannot be checked for want of the chain."""
    if chain == wallets.SOLANA:
        if signature or payer:
            name = "payer_signature" if signature else "payer"
            raise ValidationFailed(
                f"{name} is for Base; on Solana the memo binds the transfer to the order.",
                details={name: "not used with payment_chain=solana"},
            )
        return None
    message = pay_proof_message(reference)
    if payer:
        try:
            payer = wallets.normalize_evm_address(payer)
        except Invalid as exc:
            raise ValidationFailed(f"payer {exc}.", details={"payer": str(exc)}) from None
        if not signature:
            raise ValidationFailed(
                f"payer goes with payer_signature: the paying account's signature of {message!r}.",
                code="payer_proof_required",
                details={"payer_signature": "is required with payer"},
            )
        if not verify_wallet_signature(wallets.BASE, payer, message, signature):
            raise ValidationFailed(
                f"payer_signature is not {payer}'s signature of {message!r}.",
                code="invalid_payer_signature",
                details={"payer_signature": "must be the payer's signature (EIP-191, EIP-1271 or ERC-6492)"},
            )
        return payer
    if signature:
        recovered = wallets.recover_evm_signer(message, signature)
        if recovered is None:
            raise ValidationFailed(
                "payer_signature is not an EIP-191 signature (a smart account's goes with its address as payer).",
                code="invalid_payer_signature",
                details={"payer_signature": "must be 0x and 65 bytes of hex"},
            )
        return recovered
    if caller_chain == wallets.BASE and caller_wallet:
        return caller_wallet
    raise ValidationFailed(
        f"A Base transfer carries no reference: sign {message!r} with the wallet that sent it (EIP-191, "
        "personal_sign) and send it as payer_signature (a smart account: its signature, and its address as "
        "payer), or pay from the Base wallet you signed in with.",
        code="payer_proof_required",
        details={"payer_signature": f"signature of {message!r} by the paying wallet"},
    )


def payment_instructions(order: Order) -> PaymentInstructions | None:
    """What to pay for `order`, as the API and the order page show it. No network I/O.
    None when this server has no escrow configured for the order's chain."""
    try:
        instructions = chains.client(order.payment_chain).payment_instructions()
    except chains.ChainError:
        return None
    amount = price_base_units(order)
    solana = order.payment_chain == wallets.SOLANA
    return {
        "chain": order.payment_chain,
        "amount_base_units": amount,
        "escrow_address": instructions.escrow_address,
        "token_account": instructions.token_account,
        "token": instructions.token,
        "decimals": instructions.decimals,
        "chain_id": instructions.chain_id,
        "payment_reference": order.payment_reference,
        # Base has no memo: the proof a payer who did not sign in with the sending wallet signs.
        "payer_proof_message": pay_proof_message(order.payment_reference)
        if order.payment_chain == wallets.BASE
        else None,
        # Checkout links a wallet opens (payments.checkout): Solana Pay with the order's own
        # reference key, EIP-681 on Base.
        "reference_key": checkout.reference_key(order.payment_reference) if solana else None,
        "solana_pay_url": checkout.solana_pay_url(
            instructions, amount=amount, payment_reference=order.payment_reference, message=f"Order {order.id}"
        )
        if solana
        else None,
        "eip681_url": None if solana else checkout.eip681_url(instructions, amount=amount),
    }


def _unavailable(chain: str, exc: Exception) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"The {chain} network cannot be reached right now; nothing was changed, try again.", code="chain_unavailable"
    )


def normalize_tx_hash(chain: str, tx_hash: str) -> str:
    try:
        return chains.client(chain).normalize_tx_hash(tx_hash)
    except chains.PaymentRejected as exc:
        raise ValidationFailed(exc.message, code=exc.code, details={"escrow_tx_hash": exc.message}) from None
    except chains.ChainUnavailable as exc:  # e.g. this chain's escrow is not configured: 503, not a 500
        raise _unavailable(chain, exc) from exc


def _usdc(amount: int) -> str:
    return f"{Decimal(amount) / 10**6:.6f}".rstrip("0").rstrip(".") + " USDC"


def payment_verify(
    order: Order, *, chain: str, tx_hash: str, payer: str | None, final: bool = False
) -> chains.VerifiedTransfer | None:
    """Check `tx_hash` on-chain for `order`, as far as the chain can tell now: None when it is not on
    chain yet; a transfer (`final` or not) bound to the order and enough to pay it, never one
    accounted for already (a Base log that pays another order); 400 when it can never pay this
    order (`Unapplicable` when it is final, in escrow and bound to the order all the same); 409
    when everything the payer sent in it is accounted for; 503 when the chain cannot be asked.
    Network I/O: call outside transactions."""
    due = price_base_units(order)
    used = frozenset(
        Payment.objects.filter(chain=chain, tx_hash=tx_hash, status__in=ACCOUNTED).values_list("log_index", flat=True)
    )
    if WHOLE_TRANSACTION in used:  # accounted for before payments were bound per log
        raise Conflict("This transaction already pays another order.", code="tx_hash_used")
    try:
        return chains.client(chain).verify_payment(
            tx_hash,
            payer=payer,
            min_amount=due,
            reference=order.payment_reference,
            # Block clocks drift a little from ours; a minute of slack, never more.
            not_before=int(order.created_at.timestamp()) - PAYMENT_CLOCK_SLACK_SECONDS,
            final=final,
            accounted_logs=used,
        )
    except chains.PaymentPending:
        return None
    except chains.PaymentRejected as exc:
        if exc.code == "tx_hash_used":
            raise Conflict("This transaction already pays another order.", code="tx_hash_used") from None
        details: dict[str, object] = {"escrow_tx_hash": exc.message}
        transfer = exc.transfer
        if exc.code == "underpaid" and transfer is not None:
            details = {
                "received_base_units": transfer.amount,
                "due_base_units": due,
                "missing_base_units": due - transfer.amount,
            }
            message = (
                f"Received {_usdc(transfer.amount)} of {_usdc(due)} due ({_usdc(due - transfer.amount)} missing). "
                "One transaction must carry the whole price"
            )
            if not transfer.final:
                message += "."
            elif transfer.amount < MIN_AUTO_RETURN_BASE_UNITS:
                message += "; this one is too small to return by itself (support can)."
            elif not transfer.payer_signed:
                message += f"; it is held: {UNSIGNED_HOLD}."
            else:
                message += f"; this one is returned to {transfer.payer}."
            exc = chains.PaymentRejected(exc.code, message, transfer=transfer)
        if transfer is not None and transfer.final:
            raise Unapplicable(exc.message, code=exc.code, transfer=transfer, details=details) from None
        raise ValidationFailed(exc.message, code=exc.code, details=details) from None
    except chains.ChainUnavailable as exc:
        raise _unavailable(chain, exc) from exc


def accounted(chain: str, tx_hash: str, log_index: int | None = None) -> Payment | None:
    """The transfer's verified or unapplied row, if it has been accounted for: the Base log
    `log_index` of the transaction, or with None any transfer of it (Solana has one, at 0)."""
    rows = Payment.objects.filter(chain=chain, tx_hash=tx_hash, status__in=ACCOUNTED)
    if log_index is not None:
        rows = rows.filter(log_index__in=(log_index, WHOLE_TRANSACTION))
    return rows.order_by("log_index").first()


def ensure_hash_unused(order: Order, *, chain: str, tx_hash: str) -> None:
    """Before any chain I/O: the recorded refusal when the transaction carried this order's
    unapplied transfer; on Solana (one transfer per transaction) 409 when it pays another order or
    was accounted for without this order. A Base transaction may carry several payers' logs: which
    are still free the chain tells (`payment_verify`). Races past this check are settled by the
    unique constraint in `payment_record`."""
    rows = list(Payment.objects.filter(chain=chain, tx_hash=tx_hash, status__in=ACCOUNTED).order_by("log_index"))
    for payment in rows:
        if payment.order_id == order.id and payment.status == PaymentStatus.UNAPPLIED:
            raise ValidationFailed(
                unapplied_message(payment), code=payment.reason, details=dict(unapplied_to_dict(payment))
            )
    others = [payment for payment in rows if payment.order_id != order.id]
    if others and (chain != wallets.BASE or any(payment.log_index == WHOLE_TRANSACTION for payment in others)):
        raise Conflict("This transaction already pays another order.", code="tx_hash_used")


def payment_claim(order: Order, *, chain: str, tx_hash: str, payer: str | None) -> tuple[Payment, bool]:
    """Note that the buyer says `tx_hash` pays `order`, while it is not final. Holds nothing: other
    orders' claims of the same hash may wait beside it. Returns (claim, created)."""
    existing = order.payments.filter(chain=chain, tx_hash=tx_hash, status=PaymentStatus.PENDING).first()
    if existing is not None:
        return existing, False
    if order.payments.filter(status=PaymentStatus.PENDING).count() >= MAX_PENDING_CLAIMS:
        raise Conflict(
            f"This order already waits on {MAX_PENDING_CLAIMS} transactions; wait for them to be final.",
            code="too_many_pending_payments",
        )
    try:
        with transaction.atomic():
            claim = Payment.objects.create(
                order=order, chain=chain, tx_hash=tx_hash, status=PaymentStatus.PENDING, payer=payer or ""
            )
    except IntegrityError:  # the same claim, racing: the other request made it
        return order.payments.get(chain=chain, tx_hash=tx_hash, status=PaymentStatus.PENDING), False
    return claim, True


def pending_claims(order: Order) -> list[Payment]:
    return list(order.payments.filter(status=PaymentStatus.PENDING).order_by("created_at"))


def claim_expired(claim: Payment) -> bool:
    return claim.created_at + PAYMENT_CLAIM_TTL <= timezone.now()


def payment_release_claim(claim: Payment) -> None:
    """A claim that can never pay its order (or waited too long): drop it."""
    Payment.objects.filter(pk=claim.pk, status=PaymentStatus.PENDING).delete()


def payment_record(order: Order, *, chain: str, transfer: chains.VerifiedTransfer) -> Payment:
    """Inside the caller's transaction, with the order row locked: the verified payment row (this
    order's claim, if it made one) and its escrow journal. 409 if the transfer is accounted for
    already (the unique constraint decides races between orders)."""
    fields = {
        "status": PaymentStatus.VERIFIED,
        "log_index": transfer.log_index,
        "payer": transfer.payer,
        "amount_base_units": transfer.amount,
        "verified_at": timezone.now(),
        **_paying_account(transfer),
    }
    claim = order.payments.filter(chain=chain, tx_hash=transfer.tx_hash, status=PaymentStatus.PENDING).first()
    try:
        with transaction.atomic():
            if claim is None:
                payment = Payment.objects.create(order=order, chain=chain, tx_hash=transfer.tx_hash, **fields)
            else:
                payment = claim
                for name, value in fields.items():
                    setattr(payment, name, value)
                payment.save(update_fields=list(fields))
    except IntegrityError:
        raise Conflict("This transaction already pays another order.", code="tx_hash_used") from None
    ledger.escrow_in(order, chain, transfer.amount)
    return payment


def unapplied_record(
    *, order: Order | None, chain: str, transfer: chains.VerifiedTransfer, reason: str, due: int = 0
) -> tuple[Payment, bool]:
    """Inside the caller's transaction: a final transfer in escrow that pays no order is accounted
    for (a row, its journal) and its return to the sender is queued with it. Idempotent: a transfer
    accounted for already returns its row unchanged. Returns (row, created).

    Dust (below the automatic-return minimum) is accounted for but attached to no order: anyone can
    read an order's memo and send 0.000001 USDC with it, and such rows would pile onto the victim's
    order naming the stranger's wallet."""
    existing = accounted(chain, transfer.tx_hash, transfer.log_index)
    if existing is not None:
        return existing, False
    if transfer.amount < MIN_AUTO_RETURN_BASE_UNITS:
        order = None
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                order=order,
                chain=chain,
                tx_hash=transfer.tx_hash,
                log_index=transfer.log_index,
                status=PaymentStatus.UNAPPLIED,
                reason=reason,
                payer=transfer.payer,
                amount_base_units=transfer.amount,
                due_base_units=due,
                verified_at=timezone.now(),
                **_paying_account(transfer),
            )
    except IntegrityError:  # accounted for by a racing request meanwhile
        racing = Payment.objects.filter(chain=chain, tx_hash=transfer.tx_hash, log_index=transfer.log_index)
        return racing.get(status__in=ACCOUNTED), False
    if order is not None:
        order.payments.filter(chain=chain, tx_hash=transfer.tx_hash, status=PaymentStatus.PENDING).delete()
    ledger.unapplied_in(payment)
    if payment.amount_base_units >= MIN_AUTO_RETURN_BASE_UNITS:
        payment_return(payment)
    return payment, True


def _paying_account(transfer: chains.VerifiedTransfer) -> dict[str, object]:
    return {
        "source_account": transfer.source_account,
        "payer_signed": transfer.payer_signed,
        "signers": list(transfer.signers),
    }


def payment_return(payment: Payment) -> OutgoingTransfer:
    """Queue the return of an unapplied transfer to its sender (once, ever). Inside a transaction."""
    existing = OutgoingTransfer.objects.filter(payment=payment).first()
    if existing is not None:
        return existing
    return _send_back(payment, payment.amount_base_units, kind=TransferKind.RETURN, order=payment.order)


def _send_back(payment: Payment, amount: int, *, kind: TransferKind, order: Order | None) -> OutgoingTransfer:
    """A return or refund of `payment`'s money: to the account it came from while that is open,
    else its owner's existing USDC account (payments.tasks holds it when neither exists). Only when
    that owner signed the paying transaction; otherwise held for staff with the candidates named,
    since a swap route or a vault program's account is not the buyer's."""
    transfer = OutgoingTransfer.objects.create(
        order=order,
        payment=payment if kind == TransferKind.RETURN else None,
        kind=kind,
        chain=payment.chain,
        to_address=payment.payer if payment.payer_signed else "",
        to_token_account=payment.source_account if payment.payer_signed else "",
        amount_base_units=amount,
    )
    if payment.payer_signed:
        _schedule(transfer)
    else:
        hold(transfer, UNSIGNED_HOLD)
    return transfer


def paying_payment(transfer: OutgoingTransfer) -> Payment | None:
    """The transfer into escrow whose money a return or refund sends back."""
    if transfer.payment_id is not None:
        return transfer.payment
    if transfer.kind == TransferKind.REFUND and transfer.order_id is not None:
        return Payment.objects.filter(order_id=transfer.order_id, status=PaymentStatus.VERIFIED).first()
    return None


# Said wherever money is held because the paying account's owner did not sign (on the order, in the
# refusal, in the transfer): who could have paid is for staff to weigh; the admin lists them.
UNSIGNED_HOLD = (
    "the account it came from belongs to someone who did not sign the transaction (a swap route's pool or a "
    "program's vault), so it is not sent there; staff decide where it goes"
)


UNAPPLIED_WHY = {
    UnappliedReason.UNDERPAID: "it was less than the price, and one transaction must carry the whole price",
    UnappliedReason.ORDER_NOT_PAYABLE: "the order could no longer be paid (cancelled, or paid by another transaction)",
    UnappliedReason.NO_REFERENCE: "it carried no payment reference (memo), so it names no order",
    UnappliedReason.UNKNOWN_REFERENCE: "its payment reference (memo) names no order",
    UnappliedReason.INTENT_EXPIRED: "it landed after the x402 payment requirements had expired",
    UnappliedReason.UNCLAIMED: "no order claimed it with a proof from the sending wallet in time",
    UnappliedReason.TOO_OLD: "it is older than the order it names",
}


def unapplied_message(payment: Payment) -> str:
    text = f"{_usdc(payment.amount_base_units)} arrived in escrow ({payment.tx_hash}) but paid nothing: "
    text += UNAPPLIED_WHY.get(UnappliedReason(payment.reason), payment.reason)
    if payment.reason == UnappliedReason.UNDERPAID and payment.due_base_units:
        missing = payment.due_base_units - payment.amount_base_units
        text += f" ({_usdc(payment.due_base_units)} due, {_usdc(missing)} missing)"
    if payment.amount_base_units < MIN_AUTO_RETURN_BASE_UNITS:
        return text + ". It is too small to return by itself; support can return it on request."
    if not payment.payer_signed:
        return text + f". It is held: {UNSIGNED_HOLD}."
    returned = getattr(payment, "return_transfer", None)
    if returned is not None and returned.status == "held":
        return text + f". It is held until {payment.payer} has a USDC account to receive it."
    return text + f". It is returned to {payment.payer}."


def unapplied_to_dict(payment: Payment) -> UnappliedTransfer:
    returned = getattr(payment, "return_transfer", None)
    return {
        "tx_hash": payment.tx_hash,
        "chain": payment.chain,
        "amount_base_units": payment.amount_base_units,
        "reason": payment.reason,
        "due_base_units": payment.due_base_units or None,
        "missing_base_units": (payment.due_base_units - payment.amount_base_units)
        if payment.reason == UnappliedReason.UNDERPAID and payment.due_base_units
        else None,
        "message": unapplied_message(payment),
        "why": UNAPPLIED_WHY.get(UnappliedReason(payment.reason), payment.reason),
        "returned_to": payment.payer if payment.payer_signed else "",  # held for staff: nobody yet
        "return_status": returned.status if returned is not None else None,
        "return_tx_hash": (returned.tx_hash or None) if returned is not None else None,
        "return_held_reason": (returned.held_reason or None) if returned is not None else None,
    }


# --- Settlement: called by orders.core.transitions inside the transition's transaction ---------------


def _verified_payment(order: Order) -> Payment | None:
    return order.payments.filter(status=PaymentStatus.VERIFIED).first()


def _agent_destination(order: Order) -> tuple[str, str]:
    agent = order.agent
    if agent.payout_chain == wallets.BASE:
        return wallets.BASE, agent.payout_address_base
    return wallets.SOLANA, agent.payout_wallet


def _schedule(transfer: OutgoingTransfer) -> None:
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
    _send_back(payment, amount, kind=TransferKind.REFUND, order=order)


@dataclass(frozen=True)
class SettlementPlan:
    """What a settlement of an order moves, in USDC base units, before anything is written: the
    admin's decision preview and the settlement itself both come from `settlement_plan`."""

    paid: int  # what the buyer paid into escrow (0: nothing to settle)
    agent_gross: int  # the part of the escrow released to the agent, before the fee
    agent_share: int  # paid out to the agent (payments.ledger.split_fee)
    fee: int  # kept by the platform
    refund: int  # sent back to the buyer
    overpayment_only: bool  # the refund is only what was paid beyond the price

    def to_dict(self) -> dict[str, int]:
        return {"agent_share": self.agent_share, "fee": self.fee, "refund": self.refund} if self.paid else {}


def settlement_plan(order: Order, *, agent_gross: int) -> SettlementPlan:
    """`agent_gross` of the escrow to the agent (less the fee), the rest back to the buyer. No writes."""
    return _plan(order, _verified_payment(order), agent_gross)


def _plan(order: Order, payment: Payment | None, agent_gross: int) -> SettlementPlan:
    paid = payment.amount_base_units if payment is not None else 0
    agent_gross = min(agent_gross, paid)
    agent_share, fee = ledger.split_fee(agent_gross) if agent_gross else (0, 0)
    back = paid - agent_gross
    over = paid - price_base_units(order)
    return SettlementPlan(paid, agent_gross, agent_share, fee, back, back == over)


def release_plan(order: Order) -> SettlementPlan:
    """Approval (or staff release): 90% of the price to the agent, 10% fee, any overpayment back."""
    return settlement_plan(order, agent_gross=price_base_units(order))


def refund_plan(order: Order) -> SettlementPlan:
    """Cancellation of a paid order (or staff refund): everything paid goes back to the buyer."""
    return settlement_plan(order, agent_gross=0)


def settle_release(order: Order) -> dict[str, int]:
    """Approval (or staff release): 90% of the price to the agent, 10% fee, any overpayment back."""
    return settle_split(order, agent_gross=price_base_units(order))


def settle_split(order: Order, *, agent_gross: int) -> dict[str, int]:
    """`agent_gross` of the escrow goes to the agent (less the fee); the rest back to the buyer."""
    payment = _verified_payment(order)
    if payment is None:
        return {}
    plan = _plan(order, payment, agent_gross)
    if plan.agent_gross:
        ledger.release(order, payment.chain, plan.agent_gross)
    _payout(order, plan.agent_share)
    _refund(
        order, payment, plan.refund, kind=LedgerKind.OVERPAYMENT_DUE if plan.overpayment_only else LedgerKind.REFUND_DUE
    )
    return plan.to_dict()


def settle_refund(order: Order) -> dict[str, int]:
    """Cancellation of a paid order (or staff refund): everything paid goes back to the buyer."""
    return settle_split(order, agent_gross=0)
