"""x402 (v2, HTTP transport): an anonymous machine buys a fixed-price service by paying on chain.

1. `POST /api/orders` without credentials answers 402 with the payment requirements: the x402
   `PaymentRequired` object beside the error envelope and, base64 JSON, in the `PAYMENT-REQUIRED`
   header. Its `accepts` offers each configured chain (CAIP-2 `network`, USDC `asset`, `payTo`,
   `amount` in base units, `maxTimeoutSeconds`), and `extra.reference`, which the payment must
   carry. The request is kept as an `X402Intent` under that reference, with the quoted price.
2. The caller transfers USDC into escrow itself: on Solana to the escrow's USDC token account
   (`payTo`) with the reference as the transaction's only memo; on Base to the escrow address.
3. It sends the same request again with `X-PAYMENT` (or v2's `PAYMENT-SIGNATURE`): base64 JSON
   `{"x402Version": 2, "accepted": {"network": ...}, "payload": {"transaction": <hash>,
   "payer": <wallet>, "reference": <reference>, "signature": <Base only>}}`. The transaction is
   verified by the same code as any escrow payment (payments.verification.payment_verify): final, the
   right token into the escrow's own account, at least the price, signed by `payer` (Solana) or
   a USDC Transfer log from `payer` (Base, whoever sent the transaction: a smart account's
   relayer or bundler), not older than the 402, with the memo. A final transfer bound to the reference that
   cannot pay (underpaid, landed after the requirements expired) is recorded and returned to its
   sender (orders.checkout.applying.record_unapplied), and the 402 says so. Base has no memo, so there the payer also
   signs `atelier:x402:<reference>` (EIP-191 by its key, or EIP-1271 / ERC-6492 as a smart
   account): without it anyone watching the chain could claim someone else's transfer for a
   reference of their own.
4. In one transaction: the order (`buyer_kind=x402`, bought by the payer's wallet, which can sign
   in to follow it), its payment and the `pay` transition. One Solana transaction, or one Base
   Transfer log, pays one order, ever (the Payment unique constraint), and one intent makes one order (the row lock, and the
   order's unique payment reference). The answer is 201 with the order, already `paid`, and a
   `PAYMENT-RESPONSE` header. Delivery completes it and pays the agent out at once
   (orders.core.transitions.settles_on_delivery).

Refusals: a malformed header 400; a reused hash 409; a payment that does not verify (underpaid,
wrong memo, not the payer's, too old, paid after the requirements expired) or is not final yet a
402 with the requirements again and the reason as `code`. Nothing is written by any of them.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from agents.models import PriceType, Service
from lib import jsonbody, wallets
from lib.errors import (
    Conflict,
    PaymentRequired,
    ServiceUnavailable,
    Unauthorized,
    ValidationFailed,
)
from lib.principal import Principal
from lib.validation import Invalid
from orders.checkout.applying import REJECTION_REASONS, record_unapplied
from orders.core.transitions import new_payment_reference, order_open, transition
from orders.models import Order, X402Intent
from payments import binding, chains, verification
from payments.chains.config import base_config, solana_config
from payments.ledger import usd_to_base_units
from payments.models import ACCOUNTED, Payment, PaymentStatus, UnappliedReason
from payments.signatures import verify_wallet_signature
from payments.unapplied import unapplied_message

X402_VERSION = 2
# How long the requirements hold: the payment must land on chain within this (block time).
MAX_TIMEOUT_SECONDS = 900
CLOCK_SLACK = timedelta(seconds=verification.PAYMENT_CLOCK_SLACK_SECONDS)
PAYMENT_HEADERS = ("X-PAYMENT", "PAYMENT-SIGNATURE")
PENDING_RETRY_SECONDS = 5
CHAINS = (wallets.SOLANA, wallets.BASE)


def proof_message(reference: str) -> str:
    """What the paying wallet signs on Base (EIP-191) to claim its transfer for this reference."""
    return f"atelier:x402:{reference}"


def network_id(chain: str) -> str:
    """The chain as CAIP-2: `eip155:<chain id>` for Base (8453 on mainnet); for Solana,
    `solana:` and the first 32 characters of the cluster's genesis hash, asked of the node once
    and kept in the shared cache (a genesis hash never changes)."""
    if chain == wallets.BASE:
        return f"eip155:{base_config().chain_id}"
    client = chains.client(chain)
    key = f"x402:solana-genesis:{getattr(client, 'rpc_url', '')}"
    genesis = cache.get(key)
    if not isinstance(genesis, str):
        genesis = client.genesis_hash()  # type: ignore[attr-defined]
        cache.set(key, genesis, None)
    return f"solana:{genesis[:32]}"


def _configured(chain: str) -> bool:
    """This server has an escrow on `chain` (whether its RPC answers right now or not)."""
    if chain == wallets.SOLANA:
        solana = solana_config()
        return bool(solana.rpc_url and solana.usdc_mint and solana.escrow_secret)
    base = base_config()
    return bool(base.rpc_url and base.usdc_address and base.escrow_private_key)


def _accepts(intent: X402Intent) -> list[dict[str, Any]]:
    """One x402 `PaymentRequirements` per chain this server can take payments on now."""
    accepts = []
    amount = str(usd_to_base_units(intent.price_usd))
    for chain in filter(_configured, CHAINS):
        try:
            instructions = chains.client(chain).payment_instructions()
            network = network_id(chain)
        except chains.ChainError:
            continue  # not configured, or its RPC is down: offer the other chain
        extra: dict[str, Any] = {"name": "USDC", "decimals": instructions.decimals, "reference": intent.reference}
        if chain == wallets.SOLANA:
            # payTo is the escrow's own USDC token account (not the wallet that owns it).
            extra["payToOwner"] = instructions.escrow_address
            extra["memo"] = intent.reference
        else:
            extra["proof"] = f"EIP-191 signature by the payer of {proof_message(intent.reference)!r}"
        accepts.append(
            {
                "scheme": "exact",
                "network": network,
                "amount": amount,
                "asset": instructions.token,
                "payTo": instructions.token_account,
                "maxTimeoutSeconds": MAX_TIMEOUT_SECONDS,
                "extra": extra,
            }
        )
    return accepts


def _payment_required(
    intent: X402Intent, accepts: list[dict[str, Any]], resource_url: str, message: str, *, code: str | None = None
) -> PaymentRequired:
    requirements = {
        "x402Version": X402_VERSION,
        "resource": {
            "url": resource_url,
            "description": f"An order of {intent.service.title!r}, delivered to the payer",
            "mimeType": "application/json",
        },
        "accepts": accepts,
    }
    header = {**requirements, "error": message}
    encoded = base64.b64encode(json.dumps(header, separators=(",", ":")).encode()).decode()
    details = {"reference": intent.reference, "expires_at": intent.expires_at.isoformat()}
    return PaymentRequired(
        message, code=code, details=details, requirements=requirements, headers={"PAYMENT-REQUIRED": encoded}
    )


def x402_quote(*, service: Service, brief: str, reference_urls: list[str], resource_url: str) -> NoReturn:
    """The 402: keep the request as an intent under a new reference and say how to pay it."""
    _require_fixed_price(service, credentials_would_help=True)
    if not any(_configured(chain) for chain in CHAINS):
        raise Unauthorized(
            "This server takes no x402 payments (no chain is configured); order with a wallet or an agent key.",
            code="authentication_required",
        )
    draft = X402Intent(
        reference=new_payment_reference(),
        service=service,
        brief=brief,
        reference_urls=reference_urls,
        price_usd=service.price_usd,
        expires_at=timezone.now() + timedelta(seconds=MAX_TIMEOUT_SECONDS),
    )
    accepts = _accepts(draft)  # before the row: a 503 leaves nothing behind
    if not accepts:
        raise ServiceUnavailable(
            "No payment chain can be reached right now; nothing was changed, try again.", code="chain_unavailable"
        )
    draft.save(force_insert=True)
    raise _payment_required(
        draft,
        accepts,
        resource_url,
        f"Payment required: pay {service.price_usd} USDC into escrow as `accepts` says, carrying the "
        "reference, then send this request again with an X-PAYMENT header naming the transaction.",
    )


def _require_fixed_price(service: Service, *, credentials_would_help: bool) -> None:
    if service.price_type == PriceType.FIXED:
        return
    message = (
        f"x402 buys fixed-price services; this one is {service.price_type}-priced. "
        "Order it with a wallet or an agent key."
    )
    if credentials_would_help:
        raise Unauthorized(message, code="authentication_required", details={"price_type": service.price_type})
    raise ValidationFailed(message, code="x402_unavailable", details={"price_type": service.price_type})


# --- the paid retry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class X402Payment:
    chain: str
    network: str
    tx_hash: str
    payer: str
    reference: str
    signature: str


def _invalid(message: str, field: str) -> ValidationFailed:
    return ValidationFailed(f"X-PAYMENT: {message}", code="invalid_payment", details={field: message})


def _text(container: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = container.get(name, "")
    if not isinstance(value, str) or len(value) > 300 or "\x00" in value or (required and not value.strip()):
        raise _invalid(f"payload.{name} must be a non-empty string" if required else f"{name} must be a string", name)
    return value.strip()


def parse_payment(raw: str) -> X402Payment:
    """Read X-PAYMENT: base64 JSON (or plain JSON) of an x402 PaymentPayload carrying a transaction."""
    text = raw.strip()
    try:
        decoded = text if text.startswith("{") else base64.b64decode(text, validate=True).decode()
        data = jsonbody.loads(decoded)
    except (ValueError, binascii.Error, UnicodeDecodeError, ValidationFailed):
        raise _invalid("must be base64 of a JSON PaymentPayload", "X-PAYMENT") from None
    if not isinstance(data, dict):
        raise _invalid("must be a JSON object", "X-PAYMENT")
    if data.get("x402Version") not in (1, 2):
        raise _invalid("x402Version must be 2", "x402Version")
    accepted = data.get("accepted")
    if not isinstance(accepted, dict):
        accepted = {}
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise _invalid("payload must be an object with transaction, payer and reference", "payload")
    network = data.get("network", accepted.get("network", ""))
    if not isinstance(network, str) or not network:
        raise _invalid("accepted.network must name the chain (CAIP-2)", "network")
    return X402Payment(
        chain=_chain_of(network),
        network=network,
        tx_hash=_text(payload, "transaction"),
        payer=_text(payload, "payer"),
        reference=_text(payload, "reference"),
        signature=_text(payload, "signature", required=False),
    )


def _chain_of(network: str) -> str:
    for chain in CHAINS:
        if network == chain:
            return chain
        try:
            if network == network_id(chain):
                return chain
        except chains.ChainError:
            continue
    raise _invalid(f"{network!r} is not a network this server takes payments on", "network")


def x402_order(
    *, service: Service, brief: str, reference_urls: list[str], payment: X402Payment, resource_url: str
) -> tuple[Order, dict[str, Any]]:
    """Turn a verified payment for an intent into a paid x402 order; returns it and the x402
    SettlementResponse. On-chain verification runs before any transaction; then, in one: the
    order, its payment row and escrow journal, and `pay` (locks the intent, then the order)."""
    _require_fixed_price(service, credentials_would_help=False)
    intent = _intent_for(service, payment.reference, brief=brief, reference_urls=reference_urls)
    tx_hash = verification.normalize_tx_hash(payment.chain, payment.tx_hash)
    if intent.order is not None:
        return _paid_already(intent.order, tx_hash, payment)
    payer = _proven_payer(intent, payment)
    _refuse_accounted(intent, payment, tx_hash, payer, resource_url)
    transfer = _final_transfer(service, intent, payment, tx_hash, payer, resource_url)
    return _open_paid_order(service, intent, payment, tx_hash, transfer)


def _intent_for(service: Service, reference: str, *, brief: str, reference_urls: list[str]) -> X402Intent:
    """The intent a 402 of this service gave under `reference`, for the very request it answered."""
    intent = X402Intent.objects.select_related("service", "order").filter(pk=reference).first()
    if intent is None or intent.service_id != service.id:
        raise ValidationFailed(
            "X-PAYMENT names a reference no 402 of this service gave; send the request without X-PAYMENT first.",
            code="unknown_payment_reference",
            details={"reference": "unknown for this service"},
        )
    if (intent.brief, intent.reference_urls) != (brief, reference_urls):
        raise Conflict(
            "The retry must send the same request as the one the 402 answered (brief and reference_urls).",
            code="x402_request_mismatch",
            details={"reference": intent.reference},
        )
    return intent


def _paid_already(order: Order, tx_hash: str, payment: X402Payment) -> tuple[Order, dict[str, Any]]:
    """The intent made an order already: the same paid retry again is answered as before; another 409."""
    if order.escrow_tx_hash == tx_hash:
        return order, _settlement(order, payment)
    raise Conflict("This reference has paid for an order already.", code="reference_used")


def _proven_payer(intent: X402Intent, payment: X402Payment) -> str:
    """The payer's normalized address; on Base, only with its signature of the reference (no memo there)."""
    try:
        payer = wallets.normalize_address(payment.chain, payment.payer)
    except Invalid as exc:
        raise _invalid(f"payer {exc}", "payer") from None
    if payment.chain == wallets.BASE and not verify_wallet_signature(
        payment.chain, payer, proof_message(intent.reference), payment.signature
    ):
        raise _invalid(
            f"signature must be the payer's signature of {proof_message(intent.reference)!r} (EIP-191, or "
            "EIP-1271 / ERC-6492 for a smart account)",
            "signature",
        )
    return payer


def _refuse_accounted(intent: X402Intent, payment: X402Payment, tx_hash: str, payer: str, resource_url: str) -> None:
    """Before any chain I/O: a 402 when the transfer was recorded as paying nothing; 409 when a Solana
    transaction (one transfer) pays another order. Base: the payer's own log, among any others a
    bundle carries; which of its logs are still free the chain tells (payment_verify, 409 when none is)."""
    known = verification.accounted(payment.chain, tx_hash)
    if payment.chain == wallets.BASE:
        known = (
            Payment.objects.filter(chain=payment.chain, tx_hash=tx_hash, payer=payer, status__in=ACCOUNTED)
            .order_by("log_index")
            .first()
        )
    if known is not None and known.status == PaymentStatus.UNAPPLIED and known.order_id is None:
        raise _refused(intent, resource_url, unapplied_message(known), code=known.reason)
    if known is not None and payment.chain != wallets.BASE:
        raise Conflict("This transaction already pays another order.", code="tx_hash_used")


def _final_transfer(
    service: Service, intent: X402Intent, payment: X402Payment, tx_hash: str, payer: str, resource_url: str
) -> chains.VerifiedTransfer:
    """The transfer, final and able to pay the intent, or the 402 that says why not. A final transfer
    bound to the reference that cannot pay it is recorded as unapplied and returned first."""
    due = usd_to_base_units(intent.price_usd)
    try:
        # Bound by its memo (Solana) or by the payer's proof (Base); `payer` must have signed it.
        transfer = verification.payment_verify(
            _draft(service, intent, payer, payment.chain), chain=payment.chain, tx_hash=tx_hash, payer=payer, final=True
        )
    except verification.Unapplicable as exc:  # in escrow, but cannot pay: accounted for and returned
        record_unapplied(None, payment.chain, exc.transfer, REJECTION_REASONS[exc.code], due=due)
        raise _refused(intent, resource_url, exc.message, code=exc.code) from None
    except ValidationFailed as exc:  # it can never pay this: the x402 "payment failed" 402
        raise _refused(intent, resource_url, exc.message, code=exc.code) from None
    if transfer is None:
        pending = "The transaction is not final yet; send the same request again shortly."
        failure = _refused(intent, resource_url, pending, code="payment_pending")
        failure.headers["Retry-After"] = str(PENDING_RETRY_SECONDS)
        raise failure
    if transfer.block_time > (intent.expires_at + CLOCK_SLACK).timestamp():
        late = record_unapplied(None, payment.chain, transfer, UnappliedReason.INTENT_EXPIRED, due=due)
        expired = "The payment landed after these payment requirements expired; ask for new ones. "
        raise _refused(intent, resource_url, expired + unapplied_message(late), code="payment_expired")
    return transfer


def _draft(service: Service, intent: X402Intent, payer: str, chain: str) -> Order:
    """The order to be, unsaved: what the payments app verifies any escrow payment against."""
    return Order(
        service=service,
        agent_id=service.agent_id,
        buyer_wallet=payer,
        buyer_chain=chain,
        payment_chain=chain,
        payment_reference=intent.reference,
        quoted_price_usd=intent.price_usd,
        created_at=intent.created_at,
    )


def _open_paid_order(
    service: Service, intent: X402Intent, payment: X402Payment, tx_hash: str, transfer: chains.VerifiedTransfer
) -> tuple[Order, dict[str, Any]]:
    """In one transaction, the intent locked first: the order, its payment and `pay`."""
    buyer = Principal(wallet=transfer.payer, chain=payment.chain)
    with transaction.atomic():
        locked = X402Intent.objects.select_for_update(of=("self",)).select_related("order").get(pk=intent.pk)
        if locked.order is not None:  # another retry won the race: the same payment, or another
            return _paid_already(locked.order, tx_hash, payment)
        order = order_open(
            service=service,
            actor=buyer,
            brief=intent.brief,
            reference_urls=intent.reference_urls,
            payment_chain=payment.chain,
            x402_intent=intent,
        )
        locked.order = order
        locked.save(update_fields=["order"])
        paid = binding.payment_record(order, chain=payment.chain, transfer=transfer)
        order = transition(order.id, "pay", buyer, payment=paid)
    return order, _settlement(order, payment)


def _refused(intent: X402Intent, resource_url: str, message: str, *, code: str | None) -> PaymentRequired:
    """The x402 "payment failed" answer: a 402 with the requirements again and the reason."""
    return _payment_required(intent, _accepts(intent), resource_url, message, code=code)


def _settlement(order: Order, payment: X402Payment) -> dict[str, Any]:
    return {
        "success": True,
        "transaction": order.escrow_tx_hash,
        "network": payment.network,
        "payer": order.buyer_wallet,
    }


def settlement_headers(settlement: dict[str, Any]) -> dict[str, str]:
    encoded = base64.b64encode(json.dumps(settlement, separators=(",", ":")).encode()).decode()
    return {"PAYMENT-RESPONSE": encoded, "X-PAYMENT-RESPONSE": encoded}


def payment_header(headers: Any) -> str | None:
    """The x402 payment the request carries, under either header name, if any."""
    for name in PAYMENT_HEADERS:
        value = headers.get(name)
        if value:
            return str(value)
    return None


def intents_prune(*, before: datetime) -> int:
    """Delete the x402 intents that expired before `before` without making an order (the scheduler
    keeps a week of them). A payment for one arriving later carries an unknown memo and is recorded
    and returned like any other."""
    deleted, _ = X402Intent.objects.filter(expires_at__lt=before, order__isnull=True).delete()
    return deleted
