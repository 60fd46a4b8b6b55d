"""The demo wallet: a server-side Solana keypair per browser session, for `CHAIN_MODE=local` only.

It does what a person's wallet would do, on the local devchain: it is funded from the devchain's
faucet on first use, signs the sign-in message, and pays an order with a real USDC
`transferChecked` into the escrow's token account carrying the order's memo (as
`examples/solana_buyer.py` does). The payment is then verified like any other. Its key is a test
key kept in the session; it never exists outside local mode.
"""

from __future__ import annotations

import base64
from typing import Any

import requests
from django.conf import settings
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.memo.instructions import create_memo
from spl.memo.models import MemoParams
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import get_associated_token_address, transfer_checked
from spl.token.models import TransferCheckedParams

from lib.errors import Forbidden, ServiceUnavailable
from payments.chains.config import solana_config
from payments.shapes import PaymentInstructions

# What the faucet gives a new demo wallet: 1 SOL for fees and 1,000 test USDC.
FAUCET_LAMPORTS = 10**9
FAUCET_USDC = 1_000 * 10**6
TIMEOUT_SECONDS = 10


def _require_local() -> None:
    if settings.CHAIN_MODE != "local":
        raise Forbidden("The demo wallet exists only in local chain mode.", code="demo_wallet_unavailable")


def new_secret() -> str:
    return str(Keypair())


def address_of(secret: str) -> str:
    try:
        return str(Keypair.from_base58_string(secret).pubkey()) if secret else ""
    except ValueError:
        return ""


def _unavailable(what: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"The local Solana devchain cannot be reached ({what}); is `make run` (manage.py devchain) running?",
        code="chain_unavailable",
    )


def _post(url: str, body: dict[str, Any], what: str) -> Any:
    try:
        response = requests.post(url, json=body, timeout=TIMEOUT_SECONDS)
        response.raise_for_status()
        return response.json()
    except (requests.RequestException, ValueError):
        raise _unavailable(what) from None


def _rpc(method: str, *params: Any) -> Any:
    payload = _post(
        solana_config().rpc_url, {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}, method
    )
    if not isinstance(payload, dict) or "result" not in payload:
        error = payload.get("error") if isinstance(payload, dict) else None
        message = error.get("message") if isinstance(error, dict) else "no result"
        raise ServiceUnavailable(
            f"The demo wallet's {method} failed on the devchain: {message}", code="demo_wallet_failed"
        )
    return payload["result"]


def fund(secret: str) -> None:
    """Test SOL and USDC from the devchain's faucet."""
    _require_local()
    url = solana_config().rpc_url.rstrip("/") + "/faucet"
    _post(url, {"address": address_of(secret), "sol": FAUCET_LAMPORTS, "usdc": FAUCET_USDC}, "faucet")


def sign_message(secret: str, message: str) -> str:
    """An ed25519 signature over the UTF-8 message, base58, as Phantom's signMessage gives it."""
    _require_local()
    return str(Keypair.from_base58_string(secret).sign_message(message.encode()))


def pay(secret: str, payment: PaymentInstructions) -> str:
    """Send the USDC transfer `payment` describes (`payment_instructions(order)`); its signature."""
    _require_local()
    keypair = Keypair.from_base58_string(secret)
    mint = Pubkey.from_string(str(payment["token"]))
    transfer = transfer_checked(
        TransferCheckedParams(
            program_id=TOKEN_PROGRAM_ID,
            source=get_associated_token_address(keypair.pubkey(), mint),
            mint=mint,
            dest=Pubkey.from_string(str(payment["token_account"])),
            owner=keypair.pubkey(),
            amount=int(payment["amount_base_units"]),
            decimals=int(payment["decimals"]),
            signers=[],
        )
    )
    memo = create_memo(
        MemoParams(
            program_id=MEMO_PROGRAM_ID, signer=keypair.pubkey(), message=str(payment["payment_reference"]).encode()
        )
    )
    blockhash = Hash.from_string(_rpc("getLatestBlockhash", {"commitment": "finalized"})["value"]["blockhash"])
    tx = VersionedTransaction(MessageV0.try_compile(keypair.pubkey(), [transfer, memo], [], blockhash), [keypair])
    return str(_rpc("sendTransaction", base64.b64encode(bytes(tx)).decode(), {"encoding": "base64"}))
