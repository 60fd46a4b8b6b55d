"""The buyer's side, for a script or an agent that hires other agents: wallets that sign in or sign
each request, and that pay an order's USDC into escrow on Solana or Base.

    wallet = SolanaWallet(Keypair.from_base58_string(secret), rpc_url="http://127.0.0.1:8899")
    buyer = Buyer(AtelierClient(url), wallet)
    buyer.sign_in()                      # or keep signing each request (the default)
    order = buyer.hire("svc_...", "A fox in a lab coat.")
    order = buyer.pay(buyer.client.orders.accept(order.id) if order.status == "quoted" else order)
    buyer.client.orders.approve(order.id); buyer.client.orders.review(order.id, 5, "Lovely.")

Binding (README, "Binding a payment to its order"): on Solana the transfer carries the order's
`payment_reference` as its one memo; on Base the sending wallet signs `atelier:pay:<reference>`
(EIP-191) and it goes along as `payer_signature`, always (harmless when it is also the signed-in
wallet, and required when an agent's key is the buyer).

Needs `pip install atelier-client[solana]` (solders, solana) or `[evm]` (eth-account).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any, Protocol

import httpx

from atelier_client._transport import BearerToken
from atelier_client.client import AtelierClient
from atelier_client.errors import PaymentRequiredError
from atelier_client.models import Order, PaymentInstructions, WalletSession


class Wallet(Protocol):
    chain: str
    address: str

    def sign_text(self, text: str) -> str: ...

    def headers(self, method: str, path: str, body: bytes) -> dict[str, str]: ...

    def pay(self, payment: PaymentInstructions) -> str: ...


def _rpc(url: str, method: str, *params: Any) -> Any:
    reply = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}, timeout=30)
    reply.raise_for_status()
    body = reply.json()
    if "error" in body:
        raise RuntimeError(f"{method}: {body['error']}")
    return body["result"]


class _SigningWallet:
    """The v2 per-request signature: over the method, the path with its query and the body's SHA-256,
    with a fresh millisecond timestamp (each signature is accepted once)."""

    chain = ""
    address = ""

    def sign_text(self, text: str) -> str:
        raise NotImplementedError

    def headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        ts = str(time.time_ns() // 1_000_000)
        message = f"atelier-v2:{self.address}:{ts}:{method}:{path}:{hashlib.sha256(body).hexdigest()}"
        return {
            "X-Atelier-Wallet": self.address,
            "X-Atelier-Wallet-Timestamp": ts,
            "X-Atelier-Wallet-Signature-Version": "2",
            "X-Atelier-Wallet-Signature": self.sign_text(message),
        }


class SolanaWallet(_SigningWallet):
    """A solders Keypair: ed25519 signatures (base58), USDC transfers with the order's memo."""

    chain = "solana"

    def __init__(self, keypair: Any, *, rpc_url: str = "http://127.0.0.1:8899") -> None:
        self.keypair = keypair
        self.address = str(keypair.pubkey())
        self.rpc_url = rpc_url

    def sign_text(self, text: str) -> str:
        return str(self.keypair.sign_message(text.encode()))

    def pay(self, payment: PaymentInstructions) -> str:
        """transferChecked of the amount due into the escrow's USDC account, with exactly one memo:
        the order's payment reference. Returns the transaction signature."""
        from solders.hash import Hash
        from solders.message import MessageV0
        from solders.pubkey import Pubkey
        from solders.transaction import VersionedTransaction
        from spl.memo.constants import MEMO_PROGRAM_ID
        from spl.memo.instructions import create_memo
        from spl.memo.models import MemoParams
        from spl.token.constants import TOKEN_PROGRAM_ID
        from spl.token.instructions import get_associated_token_address, transfer_checked
        from spl.token.models import TransferCheckedParams

        owner = self.keypair.pubkey()
        mint = Pubkey.from_string(payment.token)
        instructions = [
            transfer_checked(
                TransferCheckedParams(
                    program_id=TOKEN_PROGRAM_ID,
                    source=get_associated_token_address(owner, mint),
                    mint=mint,
                    dest=Pubkey.from_string(payment.token_account),
                    owner=owner,
                    amount=payment.amount_base_units,
                    decimals=payment.decimals,
                    signers=[],
                )
            ),
            create_memo(
                MemoParams(program_id=MEMO_PROGRAM_ID, signer=owner, message=payment.payment_reference.encode())
            ),
        ]
        blockhash = _rpc(self.rpc_url, "getLatestBlockhash", {"commitment": "confirmed"})["value"]["blockhash"]
        message = MessageV0.try_compile(owner, instructions, [], Hash.from_string(blockhash))
        raw = bytes(VersionedTransaction(message, [self.keypair]))
        return str(_rpc(self.rpc_url, "sendTransaction", base64.b64encode(raw).decode(), {"encoding": "base64"}))


class EvmWallet(_SigningWallet):
    """An eth-account LocalAccount on Base: EIP-191 signatures (0x hex), ERC-20 USDC transfers."""

    chain = "base"
    GAS = 100_000

    def __init__(self, account: Any, *, rpc_url: str = "http://127.0.0.1:8545") -> None:
        self.account = account
        self.address = str(account.address)
        self.rpc_url = rpc_url

    def sign_text(self, text: str) -> str:
        from eth_account.messages import encode_defunct

        signature = self.account.sign_message(encode_defunct(text=text)).signature
        return "0x" + bytes(signature).hex().removeprefix("0x")

    def pay(self, payment: PaymentInstructions) -> str:
        """transfer(escrow, amount) on the USDC contract, signed and sent. Returns the tx hash."""
        from eth_abi.abi import encode as abi_encode
        from eth_utils.address import to_checksum_address
        from eth_utils.crypto import keccak

        data = keccak(text="transfer(address,uint256)")[:4] + abi_encode(
            ["address", "uint256"], [to_checksum_address(payment.escrow_address), payment.amount_base_units]
        )
        chain_id = int(_rpc(self.rpc_url, "eth_chainId"), 16)
        nonce = int(_rpc(self.rpc_url, "eth_getTransactionCount", self.address, "pending"), 16)
        base_fee = int(_rpc(self.rpc_url, "eth_getBlockByNumber", "latest", False)["baseFeePerGas"], 16)
        tx = {
            "type": 2,
            "chainId": chain_id,
            "nonce": nonce,
            "value": 0,
            "gas": self.GAS,
            "maxPriorityFeePerGas": 10**9,
            "maxFeePerGas": 2 * base_fee + 10**9,
            "to": to_checksum_address(payment.token),
            "data": data,
        }
        signed = self.account.sign_transaction(tx)
        return str(_rpc(self.rpc_url, "eth_sendRawTransaction", "0x" + bytes(signed.raw_transaction).hex())).lower()

    def payer_signature(self, payment: PaymentInstructions) -> str:
        """EIP-191 of `atelier:pay:<payment_reference>` (the order's `payer_proof_message`)."""
        return self.sign_text(payment.payer_proof_message or f"atelier:pay:{payment.payment_reference}")


class Buyer:
    """Hire, accept, pay, approve and review through `client`, as `wallet` (signing each request
    until `sign_in()`), or as an agent (`client` with an API key; `wallet` then only pays)."""

    def __init__(self, client: AtelierClient, wallet: Wallet, *, sign_requests: bool | None = None) -> None:
        self.client = client
        self.wallet = wallet
        if sign_requests or (sign_requests is None and client.credentials is None):
            client.use(wallet)

    def sign_in(self) -> WalletSession:
        """Exchange a one-time nonce signed by the wallet for a session token, and use it."""
        challenge = self.client.auth.nonce(self.wallet.address, self.wallet.chain)
        session = self.client.auth.verify(challenge.nonce, self.wallet.sign_text(challenge.message))
        self.client.use(BearerToken(session.token))
        return session

    def hire(self, service_id: str, brief: str, **kwargs: Any) -> Order:
        kwargs.setdefault("payment_chain", self.wallet.chain)
        return self.client.orders.create(service_id, brief, **kwargs)

    def pay(self, order: Order | str) -> Order:
        """Accept a quote if needed, send the USDC transfer the order's `payment` asks for, and submit
        it. Not final yet: the order comes back with `payment_pending`; submit() the same hash again
        later (never pay twice), or let the server's re-check find it."""
        order, tx = self.send_payment(order)
        return self.submit_payment(order, tx)

    def send_payment(self, order: Order | str) -> tuple[Order, str]:
        """Accept a quote if needed and send the transfer: (the order, the transaction hash)."""
        if isinstance(order, str):
            order = self.client.orders.get(order)
        if order.status == "quoted" and order.can("accept"):
            order = self.client.orders.accept(order.id)
        if order.payment is None:
            raise ValueError(f"order {order.id} has no payment instructions (status {order.status})")
        return order, self.wallet.pay(order.payment)

    def submit_payment(self, order: Order, tx: str) -> Order:
        """PATCH pay with the transaction; on Base with the sending wallet's payer_signature."""
        payment = order.payment
        if payment is None:
            raise ValueError(f"order {order.id} has no payment instructions")
        proof = self.wallet.payer_signature(payment) if isinstance(self.wallet, EvmWallet) else None
        return self.client.orders.pay(order.id, tx, payment_chain=payment.chain, payer_signature=proof)

    def approve(self, order_id: str) -> Order:
        return self.client.orders.approve(order_id)

    def review(self, order_id: str, rating: int, comment: str = "") -> Any:
        return self.client.orders.review(order_id, rating, comment)

    def buy_x402(
        self, service_id: str, brief: str, *, before_submit: Callable[[str], None] | None = None, **kwargs: Any
    ) -> Order:
        """Buy a fixed-price service without an account (x402): the 402's requirements for the
        wallet's chain, the transfer they ask for (Solana: the reference as memo; Base: the payer's
        EIP-191 of `atelier:x402:<reference>`), then the same request with X-PAYMENT. The order
        comes back already paid. `before_submit(tx)` runs between the two (wait for finality there)."""
        anonymous = AtelierClient(self.client.base_url)
        try:
            try:
                return anonymous.orders.create(service_id, brief, **kwargs)
            except PaymentRequiredError as exc:
                prefix = "solana:" if self.wallet.chain == "solana" else "eip155:"
                accepted = next((item for item in exc.accepts if str(item.get("network", "")).startswith(prefix)), None)
                if accepted is None:
                    raise
            extra = accepted.get("extra") or {}
            reference = str(extra["reference"])
            payment = PaymentInstructions.from_dict(
                {
                    "chain": self.wallet.chain,
                    "amount_base_units": int(accepted["amount"]),
                    "escrow_address": extra.get("payToOwner") or accepted["payTo"],
                    "token_account": accepted["payTo"],
                    "token": accepted["asset"],
                    "decimals": int(extra.get("decimals", 6)),
                    "payment_reference": reference,
                }
            )
            tx = self.wallet.pay(payment)
            if before_submit is not None:
                before_submit(tx)
            payload: dict[str, str] = {"transaction": tx, "payer": self.wallet.address, "reference": reference}
            if self.wallet.chain == "base":
                payload["signature"] = self.wallet.sign_text(f"atelier:x402:{reference}")
            header = {"x402Version": 2, "accepted": accepted, "payload": payload}
            encoded = base64.b64encode(json.dumps(header).encode()).decode()
            return anonymous.orders.create(service_id, brief, x_payment=encoded, **kwargs)
        finally:
            anonymous.close()
