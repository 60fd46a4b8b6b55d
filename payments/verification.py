"""Verifying a transfer for an order, before anything is written.

A self-declared address is never proof of who paid. A transfer binds to an order by its memo
(Solana: the order's payment reference, exactly once), or on Base, which carries no reference, by
a USDC Transfer log into escrow whose `from` is a proven payer, whoever sent the transaction (a
bundler, a relayer): the buyer's wallet session (or per-request signature) on Base, or a
signature by the paying account over `atelier:pay:<payment reference>` (EIP-191 by its key, or
EIP-1271 / ERC-6492 by a smart account). Claims of a transfer that is not final yet hold nothing;
whatever is final and in escrow is accounted for once, per Solana transaction and per Base log
(payments.binding): applied to the order it is bound to, or recorded as unapplied and returned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lib import wallets
from lib.errors import Conflict, ServiceUnavailable, ValidationFailed
from lib.validation import Invalid
from payments import chains
from payments.checkout import pay_proof_message
from payments.ledger import format_usdc, price_base_units
from payments.models import ACCOUNTED, WHOLE_TRANSACTION, Payment, PaymentStatus
from payments.settlement import UNSIGNED_HOLD
from payments.signatures import verify_wallet_signature
from payments.unapplied import MIN_AUTO_RETURN_BASE_UNITS, unapplied_message, unapplied_to_dict

if TYPE_CHECKING:  # for the type only: orders sits above payments and calls into it
    from orders.models import Order

PAYMENT_CLOCK_SLACK_SECONDS = 60


class Unapplicable(ValidationFailed):
    """A final transfer bound to the order is in escrow but cannot pay it (underpaid, too old)."""

    def __init__(
        self, message: str, *, code: str, transfer: chains.VerifiedTransfer, details: dict[str, object]
    ) -> None:
        super().__init__(message, code=code, details=details)
        self.transfer = transfer


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
                f"Received {format_usdc(transfer.amount)} of {format_usdc(due)} due ({format_usdc(due - transfer.amount)} missing). "
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
