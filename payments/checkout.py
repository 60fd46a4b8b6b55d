"""Checkout links a wallet opens: Solana Pay (transfer and transaction requests) and EIP-681 on Base.

Solana Pay (https://docs.solanapay.com/spec): each order has its own `reference`, a public key that
a paying transaction names as a read-only account, so the server finds the transfer with
`getSignaturesForAddress` and nobody pastes a signature. The key is derived from the order's
`payment_reference` (a hash, so unique per order and nothing to store); it only finds a transfer,
it never binds one: the memo (the payment reference) does that, as for every Solana payment.

No network I/O here except `transaction_request`, which reads the payer's balances and a recent
blockhash (shared for a couple of seconds by every app server: `SolanaClient.payment_transaction`).
"""

from __future__ import annotations

import functools
import hashlib
from decimal import Decimal
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

import segno
from solders.pubkey import Pubkey

from lib import wallets
from lib.errors import ValidationFailed
from payments import chains, shapes
from payments.chains.base import PaymentInstructions
from payments.chains.solana import LAMPORTS_PER_SIGNATURE, RENT_EXEMPT_WALLET_LAMPORTS, SolanaClient
from payments.ledger import price_base_units

if TYPE_CHECKING:  # for the type only: orders sits above payments and calls into it
    from orders.models import Order

LABEL = "Atelier"


def reference_key(payment_reference: str) -> str:
    """The order's Solana Pay reference: 32 bytes from its payment reference, as a base58 public key."""
    digest = hashlib.sha256(f"atelier:solana-pay:{payment_reference}".encode()).digest()
    return str(Pubkey.from_bytes(digest))


def usdc_amount(base_units: int, decimals: int = 6) -> str:
    """Base units as a plain decimal (no exponent, no trailing zeros): what Solana Pay's `amount` takes."""
    text = f"{Decimal(base_units).scaleb(-decimals):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def solana_pay_url(instructions: PaymentInstructions, *, amount: int, payment_reference: str, message: str) -> str:
    """A Solana Pay transfer request: any Solana Pay wallet sends `amount` USDC to the escrow's own
    token account with the memo and the reference, nothing to type."""
    query = urlencode(
        {
            "amount": usdc_amount(amount, instructions.decimals),
            "spl-token": instructions.token,
            "reference": reference_key(payment_reference),
            "label": LABEL,
            "message": message,
            "memo": payment_reference,
        },
        quote_via=quote,
    )
    return f"solana:{instructions.escrow_address}?{query}"


def transaction_request_url(endpoint: str) -> str:
    """A Solana Pay transaction request: `solana:` and the absolute URL the wallet POSTs its account
    to (https; http in local development), percent-encoded whole as the spec's own library does
    (`encodeURIComponent`), so its query, if any, cannot be mistaken for the link's."""
    return f"solana:{quote(endpoint, safe='')}"


def eip681_url(instructions: PaymentInstructions, *, amount: int) -> str:
    """An EIP-681 ERC-20 transfer: `transfer(escrow, amount)` on the USDC contract of that chain."""
    chain = f"@{instructions.chain_id}" if instructions.chain_id else ""
    return f"ethereum:{instructions.token}{chain}/transfer?address={instructions.escrow_address}&uint256={amount}"


@functools.lru_cache(maxsize=512)
def qr_svg(text: str, *, title: str) -> str:
    """`text` as a QR code, inline SVG (no XML prologue), dark on white with the quiet zone. Kept per
    process: encoding takes about 50 ms and an open page re-renders on every change."""
    return str(segno.make(text, error="m").svg_inline(scale=4, border=4, dark="#111", light="#fff", title=title))


class InsufficientFunds(ValidationFailed):
    """The paying wallet cannot pay: short of USDC (`insufficient_usdc`) or of SOL for the fee
    (`insufficient_sol`). Said before the wallet simulates the transaction and shows its raw error."""


def usdc_display(base_units: int, decimals: int = 6) -> str:
    """USDC for a sentence: cents always ("3.00"), more digits only when there are more ("0.000001")."""
    whole, _, fraction = usdc_amount(base_units, decimals).partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def sol_display(lamports: int) -> str:
    return usdc_amount(lamports, 9)


def check_payer(client: SolanaClient, *, account: str, amount: int) -> None:
    """InsufficientFunds unless `account` holds `amount` USDC in its associated token account and
    SOL for the fee; ValueError when it is not a public key. USDC first: it is what a buyer can fix
    at an exchange, and a wallet with neither hears about the bigger gap."""
    lamports, usdc = client.payer_balances(account)
    if usdc < amount:
        raise InsufficientFunds(
            f"This wallet holds {usdc_display(usdc)} USDC; {usdc_display(amount)} USDC is due.",
            code="insufficient_usdc",
            details={"balance": usdc, "due": amount},
        )
    fee = f"the network fee (about {sol_display(LAMPORTS_PER_SIGNATURE)} SOL)"
    if lamports == 0:
        raise InsufficientFunds(f"This wallet holds no SOL for {fee}.", code="insufficient_sol")
    # The fee may empty the wallet, or leave at least the balance an account must keep; not between.
    if lamports != LAMPORTS_PER_SIGNATURE and lamports < LAMPORTS_PER_SIGNATURE + RENT_EXEMPT_WALLET_LAMPORTS:
        raise InsufficientFunds(
            f"This wallet holds {sol_display(lamports)} SOL: too little for {fee} and the "
            f"{sol_display(RENT_EXEMPT_WALLET_LAMPORTS)} SOL a Solana account must keep.",
            code="insufficient_sol",
        )


def transaction_request(
    client: SolanaClient, *, account: str, amount: int, payment_reference: str
) -> tuple[bytes, str]:
    """The transaction a wallet signs for a Solana Pay transaction request, and the reference it
    names. ValueError when `account` is not a public key; InsufficientFunds when it cannot pay
    (`check_payer`, before a blockhash is asked for); ChainUnavailable from the chain."""
    check_payer(client, account=account, amount=amount)
    reference = reference_key(payment_reference)
    raw = client.payment_transaction(payer=account, amount=amount, memo=payment_reference, reference=reference)
    return raw, reference


def pay_proof_message(reference: str) -> str:
    """What the sending wallet signs (EIP-191) to claim a Base transfer for the order with `reference`."""
    return f"atelier:pay:{reference}"


def payment_instructions(order: Order) -> shapes.PaymentInstructions | None:
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
        "reference_key": reference_key(order.payment_reference) if solana else None,
        "solana_pay_url": solana_pay_url(
            instructions, amount=amount, payment_reference=order.payment_reference, message=f"Order {order.id}"
        )
        if solana
        else None,
        "eip681_url": None if solana else eip681_url(instructions, amount=amount),
    }
