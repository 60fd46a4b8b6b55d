"""Wallet addresses and signatures on the two chains we take payments on.

Solana: base58 ed25519 public keys, verified with solders. Base: EVM addresses, EIP-191
`personal_sign` recovered with eth-account. Nothing here touches the network: a contract account's
signature (EIP-1271, ERC-6492) is asked of the chain by payments (`payments.signatures`).
"""

from __future__ import annotations

import base64
import binascii

from django.db import models
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_address, is_checksum_address, keccak, to_checksum_address
from solders.pubkey import Pubkey
from solders.signature import Signature

from lib.validation import Invalid

SOLANA = "solana"
BASE = "base"


class Chain(models.TextChoices):
    """The chains Atelier takes payments on and pays out on."""

    SOLANA = "solana", "Solana"
    BASE = "base", "Base"


_ZERO_EVM = "0x" + "0" * 40


def normalize_solana_address(value: str) -> str:
    """A wallet that can sign: a base58 ed25519 key on the curve (not a program-derived address)."""
    try:
        key = Pubkey.from_string(value)
    except ValueError:
        raise Invalid("must be a Solana address (base58, 32 bytes)") from None
    if str(key) != value:
        raise Invalid("must be a Solana address (base58, 32 bytes)")
    if not key.is_on_curve() or key == Pubkey.default():
        raise Invalid("must be a Solana wallet address, not a program-derived or system address")
    return value


def normalize_evm_address(value: str) -> str:
    """A 0x address; mixed case must carry a valid EIP-55 checksum. Returned checksummed."""
    if not is_address(value):
        raise Invalid("must be an EVM address (0x and 40 hex digits)")
    digits = value[2:]
    mixed_case = digits != digits.lower() and digits != digits.upper()
    if mixed_case and not is_checksum_address(value):
        raise Invalid("has a wrong EIP-55 checksum")
    if value.lower() == _ZERO_EVM:
        raise Invalid("must not be the zero address")
    return to_checksum_address(value)


def normalize_address(chain: str, value: str) -> str:
    if chain == SOLANA:
        return normalize_solana_address(value)
    if chain == BASE:
        return normalize_evm_address(value)
    raise Invalid("chain must be solana or base")


def chain_of(address: str) -> str:
    """Which chain an address belongs to, from its shape."""
    return BASE if address.startswith("0x") else SOLANA


def _solana_signature(value: str) -> Signature:
    """Wallets hand back 64 bytes as base58 (Phantom), base64 or hex; accept all three."""
    try:
        return Signature.from_string(value)
    except ValueError:
        pass
    # Only hex takes a 0x prefix: a base64 signature may itself begin with "0x" (1 in 4096).
    for decode in (lambda text: bytes.fromhex(text.removeprefix("0x")), base64.b64decode):
        try:
            raw = decode(value)
        except (ValueError, binascii.Error):
            continue
        if len(raw) == 64:
            return Signature.from_bytes(raw)
    raise Invalid("is not a Solana signature (64 bytes as base58, base64 or hex)")


def verify_signature(chain: str, address: str, message: str, signature: str) -> bool:
    """True when `signature` over the UTF-8 `message` was made by `address`'s key."""
    if chain == SOLANA:
        try:
            return _solana_signature(signature).verify(Pubkey.from_string(address), message.encode())
        except (Invalid, ValueError):
            return False
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
        recovered = Account.recover_message(encode_defunct(text=message), signature=raw)
    except Exception:  # eth-account raises several unrelated types for malformed signatures
        return False
    return bool(recovered == to_checksum_address(address))


def recover_evm_signer(message: str, signature: str) -> str | None:
    """The checksummed address whose key made the EIP-191 `signature` over `message`; None if malformed."""
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
        if len(raw) != 65:
            return None
        return str(Account.recover_message(encode_defunct(text=message), signature=raw))
    except Exception:  # eth-account raises several unrelated types for malformed signatures
        return None


def personal_message_hash(message: str) -> bytes:
    """The EIP-191 (personal_sign) hash of the UTF-8 `message`: what an EOA's key signs, and what a
    contract account is asked about (EIP-1271 `isValidSignature`)."""
    data = message.encode()
    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(data)).encode() + data)


def evm_signature_bytes(signature: str) -> bytes | None:
    """A 0x-hex EVM signature's bytes, of any length (a contract account's may be longer than an
    EOA's 65, an ERC-6492 one much longer); None when it is not hex or empty."""
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
    except (ValueError, TypeError, AttributeError):
        return None
    return raw or None
