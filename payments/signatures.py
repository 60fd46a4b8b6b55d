"""Wallet signatures, including contract accounts': an EOA's key is checked without network I/O
(lib.wallets); on Base a smart account (ERC-4337, Coinbase Smart Wallet) is asked on chain,
EIP-1271 once deployed, ERC-6492 before (payments.chains.evm.EvmClient.is_valid_signature).
"""

from __future__ import annotations

from lib import wallets
from lib.errors import ServiceUnavailable
from payments.chains import ChainNotConfigured, ChainUnavailable
from payments.chains.evm import EvmClient


def verify_wallet_signature(chain: str, address: str, message: str, signature: str) -> bool:
    """True when `address` signed the UTF-8 `message`: its key (ecrecover, ed25519) first, then on
    Base the account itself on chain. 503 (`chain_unavailable`) when the chain cannot be asked:
    a signature nobody could check is neither valid nor invalid."""
    if wallets.verify_signature(chain, address, message, signature):
        return True
    if chain != wallets.BASE:
        return False
    raw = wallets.evm_signature_bytes(signature)
    if raw is None:
        return False
    try:
        client = EvmClient.from_settings()
    except ChainNotConfigured:
        return False  # a server not set up for Base has no node to ask: only keys sign in here
    try:
        return client.is_valid_signature(address, message, raw)
    except ChainUnavailable as exc:
        raise ServiceUnavailable(
            "The Base network cannot be reached to check this smart account's signature; nothing was "
            "changed, try again.",
            code="chain_unavailable",
        ) from exc
