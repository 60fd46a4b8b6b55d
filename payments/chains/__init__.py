"""The chain clients behind one small interface (payments.chains.base): `client(chain)`."""

from __future__ import annotations

from payments.chains.base import (
    ChainClient,
    ChainError,
    ChainNotConfigured,
    ChainUnavailable,
    InboundTransfer,
    NoDestination,
    PaymentInstructions,
    PaymentPending,
    PaymentRejected,
    SignedTransfer,
    TransferState,
    VerifiedTransfer,
)
from payments.chains.evm import EvmClient
from payments.chains.solana import SolanaClient

__all__ = [
    "ChainClient",
    "ChainError",
    "ChainNotConfigured",
    "ChainUnavailable",
    "InboundTransfer",
    "NoDestination",
    "PaymentInstructions",
    "PaymentPending",
    "PaymentRejected",
    "SignedTransfer",
    "TransferState",
    "VerifiedTransfer",
    "client",
]


def client(chain: str) -> ChainClient:
    if chain == "solana":
        return SolanaClient.from_settings()
    if chain == "base":
        return EvmClient.from_settings()
    raise ValueError(f"unknown chain {chain!r}")
