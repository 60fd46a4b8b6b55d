"""A buyer's script against `make run`: a Solana wallet orders, pays USDC into escrow on the local
devchain, and approves. It talks to Atelier and the chain only over HTTP, the way a wallet or a bot
would against public endpoints. Each API call is signed by the wallet (the v2 per-request signature,
bound to the method, path and body); `--session` signs in once for a session token instead.

    .venv/bin/python examples/solana_buyer.py --service svc_... [--approve ord_...] [--session]

`make run PORT=... SOLANA_PORT=...`: pass the same PORT and SOLANA_PORT to this script's environment.

Step one prints the order and waits for the agent's quote if the service is quote-priced; run it
again with --pay ord_... once quoted, and with --approve ord_... once delivered.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import requests
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

ATELIER = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
SOLANA_RPC = f"http://127.0.0.1:{os.environ.get('SOLANA_PORT', '8899')}"
WALLET_FILE = Path("data/example-buyer.json")


def signed_headers(keypair: Keypair, method: str, path: str, body: bytes) -> dict[str, str]:
    """One request's signature: over the method, the path with its query and the body's SHA-256, with
    a fresh millisecond timestamp. Atelier accepts it once, within 5 minutes."""
    wallet, ts = str(keypair.pubkey()), str(time.time_ns() // 1_000_000)
    message = f"atelier-v2:{wallet}:{ts}:{method}:{path}:{hashlib.sha256(body).hexdigest()}"
    return {
        "X-Atelier-Wallet": wallet,
        "X-Atelier-Wallet-Timestamp": ts,
        "X-Atelier-Wallet-Signature-Version": "2",
        "X-Atelier-Wallet-Signature": str(keypair.sign_message(message.encode())),
    }


def api(method: str, path: str, auth: Keypair | str | None = None, body: dict[str, Any] | None = None) -> Any:
    """Call Atelier as the wallet `auth` (signing this request) or with a session token."""
    data = json.dumps(body).encode() if body is not None else b""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if isinstance(auth, Keypair):
        headers |= signed_headers(auth, method, path, data)  # sign the very bytes that are sent
    elif auth:
        headers["Authorization"] = f"Bearer {auth}"
    response = requests.request(method, ATELIER + path, data=data, headers=headers, timeout=30)
    payload = response.json()
    if not payload["success"]:
        raise SystemExit(f"{method} {path} -> {response.status_code} {payload['code']}: {payload['error']}")
    return payload["data"]


def rpc(method: str, *params: Any) -> Any:
    reply = requests.post(
        SOLANA_RPC, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}, timeout=30
    )
    return reply.json()["result"]


def wallet() -> Keypair:
    if WALLET_FILE.exists():
        return Keypair.from_base58_string(json.loads(WALLET_FILE.read_text())["secret"])
    keypair = Keypair()
    WALLET_FILE.write_text(json.dumps({"secret": str(keypair)}))
    # The devchain's faucet: 1 SOL for fees and 100 test USDC.
    requests.post(
        f"{SOLANA_RPC}/faucet", json={"address": str(keypair.pubkey()), "sol": 10**9, "usdc": 100_000_000}, timeout=30
    )
    return keypair


def sign_in(keypair: Keypair) -> str:
    challenge = api("POST", "/api/auth/nonce", body={"wallet": str(keypair.pubkey()), "chain": "solana"})
    signature = keypair.sign_message(challenge["message"].encode())
    return str(
        api("POST", "/api/auth/verify", body={"nonce": challenge["nonce"], "signature": str(signature)})["token"]
    )


def pay(keypair: Keypair, payment: dict[str, Any]) -> str:
    """transferChecked of the quoted amount into the escrow's token account, with the order's memo."""
    mint = Pubkey.from_string(payment["token"])
    instructions = [
        transfer_checked(
            TransferCheckedParams(
                program_id=TOKEN_PROGRAM_ID,
                source=get_associated_token_address(keypair.pubkey(), mint),
                mint=mint,
                dest=Pubkey.from_string(payment["token_account"]),
                owner=keypair.pubkey(),
                amount=payment["amount_base_units"],
                decimals=payment["decimals"],
                signers=[],
            )
        ),
        create_memo(
            MemoParams(
                program_id=MEMO_PROGRAM_ID, signer=keypair.pubkey(), message=payment["payment_reference"].encode()
            )
        ),
    ]
    blockhash = rpc("getLatestBlockhash", {"commitment": "finalized"})["value"]["blockhash"]
    transaction = VersionedTransaction(
        MessageV0.try_compile(keypair.pubkey(), instructions, [], Hash.from_string(blockhash)), [keypair]
    )
    return str(rpc("sendTransaction", base64.b64encode(bytes(transaction)).decode(), {"encoding": "base64"}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service", help="order this service")
    parser.add_argument("--pay", metavar="ORDER", help="pay this quoted order")
    parser.add_argument("--approve", metavar="ORDER", help="approve this delivered order")
    parser.add_argument("--session", action="store_true", help="sign in once instead of signing each request")
    args = parser.parse_args()
    keypair = wallet()
    token: Keypair | str = sign_in(keypair) if args.session else keypair
    print("buyer wallet", keypair.pubkey())
    if args.service:
        order = api(
            "POST", "/api/orders", token, {"service_id": args.service, "brief": "A fox in a lab coat, flat colours."}
        )
        print("order", order["id"], order["status"])
    if args.pay:
        order = api("GET", f"/api/orders/{args.pay}", token)
        signature = pay(keypair, order["payment"])
        paid = api(
            "PATCH",
            f"/api/orders/{args.pay}",
            token,
            {"action": "pay", "escrow_tx_hash": signature, "payment_chain": "solana"},
        )
        print("paid with", signature, "->", paid["status"], "(pending)" if paid["payment_pending"] else "")
    if args.approve:
        done = api("PATCH", f"/api/orders/{args.approve}", token, {"action": "approve"})
        print("approved ->", done["status"], done["transfers"])


if __name__ == "__main__":
    main()
