"""Solana: USDC (SPL Token) payments into the escrow's own associated token account, payouts from it.

The client: JSON-RPC over HTTP with `requests`, to `manage.py devchain` or to a public node alike;
what a transaction holds is built and read in `payments.chains.solana_transactions`.
A payment counts when `getTransaction` (jsonParsed, finalized) shows a successful transaction,
signed by the buyer, that raised the balance of the escrow's USDC associated token account by at
least the price, with exactly one memo equal to the order's payment reference, in a block not older
than the order. Balances are read per account index, never summed per owner: an owner-based sum
would accept a pre-funded token account handed to the escrow with SetAuthority.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import logging
import math
import time
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.token.state import TokenAccountState
from solders.transaction import Transaction, VersionedTransaction
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    get_associated_token_address,
)

from payments.chains import solana_transactions as transactions
from payments.chains.base import (
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
from payments.chains.config import solana_config
from payments.chains.solana_transactions import USDC_DECIMALS

log = logging.getLogger(__name__)

# The base fee of a transaction with one signature (no priority fee): what a payer needs in SOL.
LAMPORTS_PER_SIGNATURE = 5_000
# What a wallet (a system account, no data) must keep: a fee that would leave it above zero but
# below this fails with InsufficientFundsForRent. Fixed by the rent parameters (128 bytes x 6,960).
RENT_EXEMPT_WALLET_LAMPORTS = 890_880
# A Solana Pay transaction is built on a blockhash at most this old, shared through the cache by
# every app server: a blockhash stays valid for about a minute, and a crowd scanning one QR code (or
# a script) then costs the node one getLatestBlockhash per interval, not one per request.
BLOCKHASH_REUSE_SECONDS = 2.0
clock = time.time  # wall-clock seconds, comparable across app servers (tests move it)
_HARMLESS_SEND_ERRORS = (
    "AlreadyProcessed",  # these exact bytes already landed
    "BlockhashNotFound",  # cannot land any more: transfer_status says "expired" once the chain agrees
)


class RpcError(ChainUnavailable):
    """The node answered with a JSON-RPC error."""

    def __init__(self, method: str, error: Any) -> None:
        error = error if isinstance(error, dict) else {"message": str(error)}
        self.code = error.get("code")
        self.data = error.get("data")
        self.rpc_message = str(error.get("message", ""))
        super().__init__(f"Solana RPC {method} failed: {self.code} {self.rpc_message}")

    @property
    def transaction_error(self) -> Any:
        return self.data.get("err") if isinstance(self.data, dict) else None


class SolanaClient:
    chain = "solana"

    def __init__(
        self,
        *,
        rpc_url: str,
        usdc_mint: str,
        escrow_secret: str,
        escrow_address: str = "",
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        if not rpc_url or not usdc_mint or not (escrow_secret or escrow_address):
            raise ChainUnavailable(
                "Solana is not configured: set SOLANA_RPC_URL, SOLANA_USDC_MINT and SOLANA_ESCROW_SECRET (workers) "
                "or SOLANA_ESCROW_ADDRESS (app servers), or run `manage.py devchain` in CHAIN_MODE=local"
            )
        try:
            self.mint = Pubkey.from_string(usdc_mint)
            # The hot wallet's key: only in a process that signs outgoing transfers (a worker).
            self.escrow: Keypair | None = Keypair.from_base58_string(escrow_secret) if escrow_secret else None
            address = self.escrow.pubkey() if self.escrow is not None else Pubkey.from_string(escrow_address)
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"Solana USDC mint, escrow secret or escrow address is malformed: {exc}"
            ) from None
        if self.escrow is not None and escrow_address and str(address) != escrow_address:
            raise ImproperlyConfigured("SOLANA_ESCROW_ADDRESS is not the address of SOLANA_ESCROW_SECRET")
        # What verification compares against: the escrow wallet and its own USDC account.
        self.escrow_address = address
        self.escrow_token_account = get_associated_token_address(self.escrow_address, self.mint)
        self.escrow_accounts = transactions.Escrow(
            mint=str(self.mint), owner=str(self.escrow_address), token_account=str(self.escrow_token_account)
        )
        self.rpc_url = rpc_url
        self.timeout = timeout
        self.session = session or requests.Session()
        self._ids = itertools.count(1)

    @classmethod
    def from_settings(cls) -> SolanaClient:
        config = solana_config()
        return cls(
            rpc_url=config.rpc_url,
            usdc_mint=config.usdc_mint,
            escrow_secret=config.escrow_secret,
            escrow_address=config.escrow_address,
            timeout=settings.CHAIN_RPC_TIMEOUT_SECONDS,
        )

    # --- payments in ---------------------------------------------------------------------------

    def normalize_tx_hash(self, value: str) -> str:
        """A transaction signature: base58 of 64 bytes, case preserved (base58 is case-sensitive)."""
        text = value.strip() if isinstance(value, str) else ""
        try:
            signature = Signature.from_string(text)
        except ValueError:
            raise PaymentRejected("malformed_tx_hash", "not a Solana transaction signature") from None
        if str(signature) != text or signature == Signature.default():
            raise PaymentRejected("malformed_tx_hash", "not a Solana transaction signature")
        return text

    def payment_instructions(self) -> PaymentInstructions:
        return PaymentInstructions(
            chain=self.chain,
            escrow_address=str(self.escrow_address),
            token_account=str(self.escrow_token_account),
            token=str(self.mint),
            decimals=USDC_DECIMALS,
        )

    def verify_payment(
        self,
        tx_hash: str,
        *,
        payer: str | None,
        min_amount: int,
        reference: str,
        not_before: int,
        final: bool = True,
        accounted_logs: frozenset[int] = frozenset(),  # Base only: a Solana transaction is one transfer
    ) -> VerifiedTransfer:
        signature = self.normalize_tx_hash(tx_hash)
        tx = self._get_transaction(signature, "finalized")
        is_final = tx is not None
        if tx is None:
            tx = self._get_transaction(signature, "confirmed")
            if tx is None:
                raise PaymentPending("the transaction is not on chain (yet)")
            if final:
                raise PaymentPending("the transaction is confirmed but not finalized yet")
        try:
            return transactions.checked_payment(
                tx,
                self.escrow_accounts,
                signature=signature,
                payer=payer,
                min_amount=min_amount,
                reference=reference,
                not_before=not_before,
                is_final=is_final,
            )
        except transactions.SHAPE_ERRORS as exc:
            raise ChainUnavailable(f"Solana RPC answered an unexpected getTransaction shape: {exc!r}") from exc

    def inbound_transfers(self, after: str) -> tuple[list[InboundTransfer], str]:
        """Walks `getSignaturesForAddress` of the escrow's USDC account back to `after`, then reads each
        successful transaction that raised its balance."""
        signatures: list[dict[str, Any]] = []
        before: str | None = None
        while True:
            config: dict[str, Any] = {"limit": 1000, "commitment": "finalized"}
            if after:
                config["until"] = after
            if before:
                config["before"] = before
            page = self._rpc("getSignaturesForAddress", [str(self.escrow_token_account), config])
            if not isinstance(page, list):
                raise ChainUnavailable("Solana RPC answered getSignaturesForAddress with garbage")
            signatures.extend(page)
            if len(page) < 1000:
                break
            before = page[-1]["signature"]
        found: list[InboundTransfer] = []
        for entry in reversed(signatures):  # oldest first
            signature = entry["signature"]
            tx = self._get_transaction(signature, "finalized") if entry.get("err") is None else None
            found.append(transactions.inbound_transfer(signature, tx, self.escrow_accounts))
        return found, found[-1].position if found else after

    def opening_point(self) -> tuple[str, int]:
        page = self._rpc(
            "getSignaturesForAddress", [str(self.escrow_token_account), {"limit": 1, "commitment": "finalized"}]
        )
        if not isinstance(page, list):
            raise ChainUnavailable("Solana RPC answered getSignaturesForAddress with garbage")
        if not page:
            return "", 0
        signature = str(page[0]["signature"])
        tx = self._get_transaction(signature, "finalized")
        if tx is None:
            raise ChainUnavailable(f"Solana RPC listed {signature} but does not return it")
        return signature, transactions.balance_after(tx, self.escrow_accounts)

    def signatures_for(self, address: str, *, limit: int = 20) -> list[str]:
        """The latest successful transactions naming `address` (a Solana Pay reference), newest first,
        as soon as they are confirmed (`verify_payment` waits for finality itself)."""
        page = self._rpc("getSignaturesForAddress", [address, {"limit": limit, "commitment": "confirmed"}])
        if not isinstance(page, list):
            raise ChainUnavailable("Solana RPC answered getSignaturesForAddress with garbage")
        try:
            return [str(entry["signature"]) for entry in page if entry.get("err") is None]
        except (KeyError, TypeError, AttributeError) as exc:
            raise ChainUnavailable(f"Solana RPC answered getSignaturesForAddress with garbage: {exc!r}") from exc

    def payment_transaction(self, *, payer: str, amount: int, memo: str, reference: str) -> bytes:
        """A Solana Pay transaction for `payer` to sign: the memo, then transferChecked of `amount`
        from the payer's USDC associated token account into the escrow's own, with `reference` as a
        read-only account so the transfer can be found by it. Unsigned (blank signature), legacy
        format, a blockhash at most BLOCKHASH_REUSE_SECONDS old (`_shared_blockhash`); ValueError
        when `payer` is not a public key."""
        owner = Pubkey.from_string(payer)
        instructions = [
            transactions.memo(owner, memo),
            transactions.usdc_transfer(
                source=get_associated_token_address(owner, self.mint),
                dest=self.escrow_token_account,
                owner=owner,
                mint=self.mint,
                amount=amount,
                reference=Pubkey.from_string(reference),
            ),
        ]
        message = Message.new_with_blockhash(instructions, owner, self._shared_blockhash())
        return bytes(Transaction.new_unsigned(message))

    def payer_balances(self, payer: str) -> tuple[int, int]:
        """(lamports, USDC base units) of `payer` and of its USDC associated token account (what a
        Solana Pay transaction spends from), in one getMultipleAccounts. An account that does not
        exist holds 0. ValueError when `payer` is not a public key."""
        owner = Pubkey.from_string(payer)
        token_account = get_associated_token_address(owner, self.mint)
        config = {"encoding": "base64", "commitment": "confirmed"}
        result = self._rpc("getMultipleAccounts", [[str(owner), str(token_account)], config])
        try:
            wallet, holding = result["value"]
            lamports = int(wallet["lamports"]) if wallet is not None else 0
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ChainUnavailable(f"Solana RPC answered getMultipleAccounts with garbage: {exc!r}") from exc
        return lamports, transactions.usdc_held(holding, self.mint, account=token_account, method="getMultipleAccounts")

    def _shared_blockhash(self) -> Hash:
        """A recent blockhash, reused for BLOCKHASH_REUSE_SECONDS through Django's cache (Redis in
        production): one getLatestBlockhash per interval for all app servers together, where a
        per-process copy would cost one per process and keep state in process memory. A cache that
        is down only costs the fetch."""
        key = f"solana:blockhash:{hashlib.sha256(self.rpc_url.encode()).hexdigest()[:16]}"
        try:
            cached = cache.get(key)
        except Exception:
            log.warning("cache unavailable: fetching the blockhash", exc_info=True)
            cached = None
        if isinstance(cached, tuple) and len(cached) == 2 and 0 <= clock() - cached[1] < BLOCKHASH_REUSE_SECONDS:
            return Hash.from_string(cached[0])
        latest = self._rpc("getLatestBlockhash", [{"commitment": "confirmed"}])
        try:
            blockhash = Hash.from_string(latest["value"]["blockhash"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ChainUnavailable(f"Solana RPC answered getLatestBlockhash with garbage: {exc!r}") from exc
        try:
            cache.set(key, (str(blockhash), clock()), timeout=math.ceil(BLOCKHASH_REUSE_SECONDS) + 1)
        except Exception:
            log.warning("cache unavailable: the blockhash is not shared", exc_info=True)
        return blockhash

    def _get_transaction(self, signature: str, commitment: str) -> dict[str, Any] | None:
        config = {"encoding": "jsonParsed", "commitment": commitment, "maxSupportedTransactionVersion": 0}
        result = self._rpc("getTransaction", [signature, config])
        if result is not None and not isinstance(result, dict):
            raise ChainUnavailable("Solana RPC answered getTransaction with garbage")
        return result

    def genesis_hash(self) -> str:
        """The cluster's genesis hash (base58): what CAIP-2 names a Solana network by (its first 32 characters)."""
        result = self._rpc("getGenesisHash", [])
        if not isinstance(result, str) or not result:
            raise ChainUnavailable("Solana RPC answered getGenesisHash with garbage")
        return result

    def token_balance(self, owner: str) -> int:
        account = get_associated_token_address(Pubkey.from_string(owner), self.mint)
        # At finality, as the escrow scan reads transfers: at `confirmed` a transfer in the gap would
        # show in the balance but not in the ledger, a transient unexplained difference.
        result = self._rpc("getAccountInfo", [str(account), {"encoding": "base64", "commitment": "finalized"}])
        try:
            value = result["value"]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ChainUnavailable(f"Solana RPC answered getAccountInfo with garbage: {exc!r}") from exc
        return transactions.usdc_held(value, self.mint, account=account, method="getAccountInfo")

    # --- payouts ------------------------------------------------------------------------------------

    def next_nonce(self) -> int | None:
        return None

    def destination(self, to: str, token_account: str = "") -> Pubkey | None:
        """Where a transfer to `to` can land without costing the escrow rent: `token_account` while it
        is open, a USDC account and `to`'s, else `to`'s existing associated token account. None when
        neither exists (we never create one: its ~0.002 SOL of rent is the sender's to pocket by
        closing it again)."""
        owner = Pubkey.from_string(to)
        candidates = [Pubkey.from_string(token_account)] if token_account else []
        associated = get_associated_token_address(owner, self.mint)
        if associated not in candidates:
            candidates.append(associated)
        for candidate in candidates:
            result = self._rpc("getAccountInfo", [str(candidate), {"encoding": "base64", "commitment": "confirmed"}])
            try:
                value = result["value"]
                if value is None or value["owner"] != str(TOKEN_PROGRAM_ID):
                    continue
                token = transactions.token_account(value)
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise ChainUnavailable(f"Solana RPC answered getAccountInfo with garbage: {exc!r}") from exc
            if token.mint == self.mint and token.owner == owner and token.state == TokenAccountState.Initialized:
                return candidate
        return None

    def can_receive(self, to: str, token_account: str = "") -> bool:
        return self.destination(to, token_account) is not None

    def fee_balance(self) -> int:
        result = self._rpc("getBalance", [str(self.escrow_address), {"commitment": "finalized"}])
        try:
            return int(result["value"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ChainUnavailable(f"Solana RPC answered getBalance with garbage: {exc!r}") from exc

    def sign_transfer(
        self, *, to: str, amount: int, memo: str, nonce: int | None = None, token_account: str = ""
    ) -> SignedTransfer:
        """Escrow hot wallet -> an open USDC account of `to` (`destination`), with a memo. Costs a
        network fee and nothing else. NoDestination when `to` has no USDC account. Valid until the
        blockhash's last valid block height; `nonce` is not used on Solana."""
        if amount <= 0:
            raise ValueError("amount must be positive")
        if self.escrow is None:
            raise ChainNotConfigured("solana: this process holds no hot-wallet key; only the workers sign transfers")
        dest = self.destination(to, token_account)
        if dest is None:
            raise NoDestination(f"{to} has no USDC account to receive it, and creating one costs the escrow rent")
        latest = self._rpc("getLatestBlockhash", [{"commitment": "confirmed"}])
        try:
            blockhash = Hash.from_string(latest["value"]["blockhash"])
            valid_until = int(latest["value"]["lastValidBlockHeight"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ChainUnavailable(f"Solana RPC answered getLatestBlockhash with garbage: {exc!r}") from exc
        hot = self.escrow_address
        instructions = [
            transactions.usdc_transfer(
                source=self.escrow_token_account, dest=dest, owner=hot, mint=self.mint, amount=amount
            ),
            transactions.memo(hot, memo),
        ]
        tx = VersionedTransaction(MessageV0.try_compile(hot, instructions, [], blockhash), [self.escrow])
        return SignedTransfer(tx_hash=str(tx.signatures[0]), raw=bytes(tx), valid_until=valid_until)

    def send_raw(self, raw: bytes) -> None:
        """Broadcast without preflight, so a transfer that fails lands as failed (visible) rather than vanishing."""
        config = {"encoding": "base64", "skipPreflight": True, "preflightCommitment": "confirmed"}
        try:
            self._rpc("sendTransaction", [base64.b64encode(raw).decode(), config])
        except RpcError as exc:
            if exc.transaction_error in _HARMLESS_SEND_ERRORS or "already been processed" in exc.rpc_message:
                return
            raise

    def transfer_status(self, signed: SignedTransfer) -> TransferState:
        # The height first: once the finalized chain is past valid_until, an unseen transaction never lands.
        height = self._rpc("getBlockHeight", [{"commitment": "finalized"}])
        if not isinstance(height, int):
            raise ChainUnavailable("Solana RPC answered getBlockHeight with garbage")
        result = self._rpc("getSignatureStatuses", [[signed.tx_hash], {"searchTransactionHistory": True}])
        try:
            status = result["value"][0]
            if status is not None:
                if status.get("confirmationStatus") != "finalized":
                    return "pending"
                return "confirmed" if status.get("err") is None else "failed"
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ChainUnavailable(f"Solana RPC answered getSignatureStatuses with garbage: {exc!r}") from exc
        if signed.valid_until is not None and height > signed.valid_until:
            return "expired"
        return "pending"

    # --- transport -----------------------------------------------------------------------------------

    def _rpc(self, method: str, params: list[Any]) -> Any:
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            response = self.session.post(self.rpc_url, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ChainUnavailable(f"Solana RPC {method} unreachable: {exc}") from exc
        if response.status_code != 200:
            raise ChainUnavailable(f"Solana RPC {method} answered HTTP {response.status_code}")
        try:
            payload = response.json()
        except ValueError:
            raise ChainUnavailable(f"Solana RPC {method} answered something that is not JSON") from None
        if not isinstance(payload, dict):
            raise ChainUnavailable(f"Solana RPC {method} answered garbage")
        if payload.get("error") is not None:
            raise RpcError(method, payload["error"])
        if "result" not in payload:
            raise ChainUnavailable(f"Solana RPC {method} answered without a result")
        return payload["result"]
