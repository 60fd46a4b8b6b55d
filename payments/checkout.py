"""Checkout links a wallet opens: Solana Pay (transfer and transaction requests) and EIP-681 on Base.

Solana Pay (https://docs.solanapay.com/spec): each order has its own `reference`, a public key that
a paying transaction names as a read-only account, so the server finds the transfer with
`getSignaturesForAddress` and nobody pastes a signature. The key is derived from the order's
`payment_reference` (a hash, so unique per order and nothing to store); it only finds a transfer,
it never binds one: the memo (the payment reference) does that, as for every Solana payment.

No network I/O here except `transaction_request`, which asks the chain for a recent blockhash.
"""

from __future__ import annotations

import functools
import hashlib
from decimal import Decimal
from urllib.parse import quote, urlencode

import segno
from solders.pubkey import Pubkey

from payments.chains.base import PaymentInstructions
from payments.chains.solana import SolanaClient

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
    """A Solana Pay transaction request: the wallet asks `endpoint` (https, or http on loopback) for
    the transaction. Query strings are percent-encoded as the spec asks; ours has none."""
    return f"solana:{quote(endpoint, safe=':/') if '?' in endpoint else endpoint}"


def eip681_url(instructions: PaymentInstructions, *, amount: int) -> str:
    """An EIP-681 ERC-20 transfer: `transfer(escrow, amount)` on the USDC contract of that chain."""
    chain = f"@{instructions.chain_id}" if instructions.chain_id else ""
    return f"ethereum:{instructions.token}{chain}/transfer?address={instructions.escrow_address}&uint256={amount}"


@functools.lru_cache(maxsize=512)
def qr_svg(text: str, *, title: str) -> str:
    """`text` as a QR code, inline SVG (no XML prologue), dark on white with the quiet zone. Kept per
    process: encoding takes about 50 ms and an open page re-renders on every change."""
    return str(segno.make(text, error="m").svg_inline(scale=4, border=4, dark="#111", light="#fff", title=title))


def transaction_request(
    client: SolanaClient, *, account: str, amount: int, payment_reference: str
) -> tuple[bytes, str]:
    """The transaction a wallet signs for a Solana Pay transaction request, and the reference it
    names. ValueError when `account` is not a public key; ChainUnavailable from the chain."""
    reference = reference_key(payment_reference)
    raw = client.payment_transaction(payer=account, amount=amount, memo=payment_reference, reference=reference)
    return raw, reference
