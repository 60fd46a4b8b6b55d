"""lib.wallets: a Solana signature as a wallet hands it back, base58, base64 or hex."""

from __future__ import annotations

import base64
import itertools

from solders.keypair import Keypair

from lib import wallets


def test_a_base64_signature_that_begins_with_0x_verifies() -> None:
    """Only hex takes a 0x prefix; stripping it from base64 refused 1 browser sign-in in 4096."""
    keypair = Keypair()
    for n in itertools.count():
        message = f"Sign in to Atelier {n}"
        encoded = base64.b64encode(bytes(keypair.sign_message(message.encode()))).decode()
        if encoded.startswith("0x"):
            break
    assert wallets.verify_signature(wallets.SOLANA, str(keypair.pubkey()), message, encoded)


def test_a_signature_verifies_in_each_encoding_a_wallet_uses() -> None:
    keypair = Keypair()
    raw = bytes(keypair.sign_message(b"hello"))
    for encoded in (str(keypair.sign_message(b"hello")), base64.b64encode(raw).decode(), raw.hex(), "0x" + raw.hex()):
        assert wallets.verify_signature(wallets.SOLANA, str(keypair.pubkey()), "hello", encoded), encoded
