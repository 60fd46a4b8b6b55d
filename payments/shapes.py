"""What the API answers about payments and wallet sign-in, as types (lib.shapes: also their OpenAPI schemas)."""

from __future__ import annotations

from typing import Annotated, TypedDict

from lib.shapes import Time
from lib.wallets import Chain
from payments.models import TransferKind, TransferStatus, UnappliedReason


class PaymentInstructions(TypedDict):
    chain: Annotated[str, Chain]
    amount_base_units: int
    escrow_address: str
    token_account: str
    token: str
    decimals: int
    chain_id: Annotated[int | None, "Base: the EVM chain id; Solana: null."]
    payment_reference: str
    payer_proof_message: Annotated[
        str | None,
        "Base: what the paying wallet signs (EIP-191; a smart account: EIP-1271 or ERC-6492, with its address "
        "as payer) as payer_signature when it is not the wallet you signed in with.",
    ]
    reference_key: Annotated[
        str | None,
        "Solana: the order's Solana Pay reference, a public key a paying transaction names as a read-only "
        "account; the server finds the payment by it.",
    ]
    solana_pay_url: Annotated[str | None, "Solana: a Solana Pay transfer request (amount, USDC mint, reference, memo)."]
    eip681_url: Annotated[str | None, "Base: an EIP-681 ERC-20 transfer link."]


class UnappliedTransfer(TypedDict):
    """A transfer that named the order and arrived but paid nothing, and where its return stands."""

    tx_hash: str
    chain: Annotated[str, Chain]
    amount_base_units: int
    reason: Annotated[str, UnappliedReason]
    due_base_units: int | None
    missing_base_units: int | None
    message: str
    why: str
    returned_to: Annotated[str, "The payer it goes back to; empty while it is held for staff."]
    return_status: Annotated[str | None, TransferStatus]
    return_tx_hash: str | None
    return_held_reason: str | None


class Transfer(TypedDict):
    """A payout, refund or return the escrow sends for the order."""

    kind: Annotated[str, TransferKind]
    chain: Annotated[str, Chain]
    to_address: str | None
    amount_base_units: int
    status: Annotated[str, TransferStatus]
    tx_hash: str | None
    error: str | None
    held_reason: str | None


class SignInChallengeData(TypedDict):
    nonce: str
    wallet: str
    chain: Annotated[str, Chain]
    message: Annotated[str, "Sign exactly this with the wallet."]
    expires_at: Time


class WalletSessionData(TypedDict):
    token: Annotated[str, {"pattern": "^atws_"}, "A bearer token, shown once."]
    wallet: str
    chain: Annotated[str, Chain]
    expires_at: Time
