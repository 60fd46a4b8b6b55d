"""Solana: USDC (SPL Token) payments into the escrow's own associated token account, payouts from it.

Spoken as JSON-RPC over HTTP with `requests`, to `manage.py devchain` or to a public node alike.
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
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.token.state import TokenAccount, TokenAccountState
from solders.transaction import Transaction, VersionedTransaction
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.memo.instructions import create_memo
from spl.memo.models import MemoParams
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    get_associated_token_address,
    transfer_checked,
)
from spl.token.models import TransferCheckedParams

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

log = logging.getLogger(__name__)

USDC_DECIMALS = 6
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
MEMO_PROGRAMS = (str(MEMO_PROGRAM_ID), "Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo")
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


@dataclass(frozen=True)
class Inflow:
    """What one transaction moved into the escrow's own USDC account."""

    received: int  # base units
    sender: str  # the owner of the USDC account it came from
    source_account: str  # that account ("" when USDC was minted straight into escrow)
    sender_signed: bool  # whether the sender signed the transaction: only then may money go back to it
    signers: tuple[str, ...]
    memos: list[str]  # every memo-program instruction, top-level and inner


def _memos(tx: dict[str, Any]) -> list[str]:
    """The memos of the whole transaction: top-level instructions and the inner instructions of
    program calls alike (a multisig vault or smart wallet runs the memo by CPI). jsonParsed gives a
    memo's text as `parsed`; one it could not decode counts all the same, as its raw data."""
    top = tx["transaction"]["message"]["instructions"]
    inner = [ix for group in tx["meta"].get("innerInstructions") or [] for ix in group["instructions"]]
    return [str(ix.get("parsed", ix.get("data", ""))) for ix in [*top, *inner] if ix.get("programId") in MEMO_PROGRAMS]


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
            return self._check_payment(tx, signature, payer, min_amount, reference, not_before, is_final)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise ChainUnavailable(f"Solana RPC answered an unexpected getTransaction shape: {exc!r}") from exc

    def _check_payment(
        self,
        tx: dict[str, Any],
        signature: str,
        payer: str | None,
        min_amount: int,
        reference: str,
        not_before: int,
        is_final: bool,
    ) -> VerifiedTransfer:
        meta = tx["meta"]
        if meta is None:
            raise ChainUnavailable("Solana RPC returned the transaction without its status")
        if tx["transaction"]["signatures"][0] != signature:
            raise ChainUnavailable("Solana RPC returned a different transaction")
        if meta["err"] is not None:
            raise PaymentRejected("tx_failed", f"the transaction failed on chain: {meta['err']}")
        inflow = self._inflow(tx)
        # The memo binds the transfer to its order, whoever signed it: checked before anything else
        # is said about the transfer, so a stranger learns nothing about another order's payment.
        if inflow.memos != [reference]:
            raise PaymentRejected("memo_mismatch", "the transaction must carry exactly one memo: the payment reference")
        if payer is not None and payer not in inflow.signers:
            raise PaymentRejected("buyer_not_signer", "the transaction was not signed by the payer's wallet")
        block_time = tx.get("blockTime")
        if block_time is None:
            raise ChainUnavailable("Solana RPC returned the transaction without its block time")
        transfer = VerifiedTransfer(
            tx_hash=signature,
            payer=inflow.sender,
            amount=inflow.received,
            block_time=int(block_time),
            final=is_final,
            source_account=inflow.source_account,
            payer_signed=inflow.sender_signed,
            signers=inflow.signers,
        )
        if block_time < not_before:
            raise PaymentRejected("tx_too_old", "the transaction is older than the order", transfer=transfer)
        if inflow.received < min_amount:
            raise PaymentRejected(
                "underpaid", f"received {inflow.received} base units, {min_amount} due", transfer=transfer
            )
        return transfer

    def _inflow(self, tx: dict[str, Any]) -> Inflow:
        """What a successful transaction moved into the escrow's own USDC account, where it came from
        and the memos it carries. PaymentRejected when nothing arrived."""
        meta = tx["meta"]
        message = tx["transaction"]["message"]
        keys = [key["pubkey"] for key in message["accountKeys"]]
        signers = tuple(key["pubkey"] for key in message["accountKeys"] if key["signer"])
        mint, escrow, escrow_account = str(self.mint), str(self.escrow_address), str(self.escrow_token_account)
        pre, post = meta.get("preTokenBalances") or [], meta.get("postTokenBalances") or []
        if not any(balance["mint"] == mint for balance in pre + post):
            raise PaymentRejected("wrong_token", "the transaction moves no USDC")
        if escrow_account not in keys:
            raise PaymentRejected("not_to_escrow", "the escrow's USDC account received nothing")
        index = keys.index(escrow_account)

        def amounts(balances: list[dict[str, Any]]) -> dict[int, tuple[str, int]]:
            found: dict[int, tuple[str, int]] = {}
            for balance in balances:
                if balance["mint"] != mint:
                    continue
                if balance["accountIndex"] == index and balance["owner"] != escrow:
                    raise PaymentRejected("not_to_escrow", "the escrow's USDC account is not what it should be")
                found[balance["accountIndex"]] = (balance["owner"], int(balance["uiTokenAmount"]["amount"]))
            return found

        before, after = amounts(pre), amounts(post)
        received = after.get(index, ("", 0))[1] - before.get(index, ("", 0))[1]
        if received <= 0:
            raise PaymentRejected("not_to_escrow", "the escrow's USDC account received nothing")
        # The source is the USDC account that lost the most (a closed account is missing after: it
        # lost everything); its owner is the sender, and money goes back there only if it signed.
        losses = {i: amount - after.get(i, (owner, 0))[1] for i, (owner, amount) in before.items() if i != index}
        if losses:
            source = max(losses, key=lambda i: losses[i])
            sender, source_account = before[source][0], keys[source]
        else:  # minted straight into escrow: nobody's account lost it
            sender, source_account = keys[0], ""
        return Inflow(received, sender, source_account, sender in signers, signers, _memos(tx))

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
            if entry.get("err") is not None:
                found.append(InboundTransfer(signature, "", 0, (), 0, signature))  # nothing arrived
                continue
            tx = self._get_transaction(signature, "finalized")
            if tx is None or tx.get("meta") is None or tx["meta"].get("err") is not None:
                found.append(InboundTransfer(signature, "", 0, (), 0, signature))
                continue
            try:
                inflow = self._inflow(tx)
            except PaymentRejected:  # a payout or anything else that did not raise the balance
                found.append(InboundTransfer(signature, "", 0, (), 0, signature))
                continue
            except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
                raise ChainUnavailable(f"Solana RPC answered an unexpected getTransaction shape: {exc!r}") from exc
            found.append(
                InboundTransfer(
                    signature,
                    inflow.sender,
                    inflow.received,
                    tuple(inflow.memos),
                    int(tx.get("blockTime") or 0),
                    signature,
                    source_account=inflow.source_account,
                    sender_signed=inflow.sender_signed,
                    signers=inflow.signers,
                )
            )
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
        try:
            index = [key["pubkey"] for key in tx["transaction"]["message"]["accountKeys"]].index(
                str(self.escrow_token_account)
            )
            after = [
                b for b in tx["meta"]["postTokenBalances"] if b["accountIndex"] == index and b["mint"] == str(self.mint)
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise ChainUnavailable(f"Solana RPC answered an unexpected getTransaction shape: {exc!r}") from exc
        return signature, int(after[0]["uiTokenAmount"]["amount"]) if after else 0

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
        blockhash = self._shared_blockhash()
        params = TransferCheckedParams(
            program_id=TOKEN_PROGRAM_ID,
            source=get_associated_token_address(owner, self.mint),
            mint=self.mint,
            dest=self.escrow_token_account,
            owner=owner,
            amount=amount,
            decimals=USDC_DECIMALS,
            signers=[],
        )
        transfer = transfer_checked(params)
        marked = AccountMeta(Pubkey.from_string(reference), is_signer=False, is_writable=False)
        transfer = Instruction(transfer.program_id, transfer.data, [*transfer.accounts, marked])
        note = create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=owner, message=memo.encode()))
        message = Message.new_with_blockhash([note, transfer], owner, blockhash)
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
            if holding is None:
                return lamports, 0
            token = TokenAccount.from_bytes(base64.b64decode(holding["data"][0])[:165])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ChainUnavailable(f"Solana RPC answered getMultipleAccounts with garbage: {exc!r}") from exc
        if holding["owner"] != str(TOKEN_PROGRAM_ID) or token.mint != self.mint:
            raise ChainUnavailable(f"{token_account} is not a USDC token account")
        return lamports, token.amount

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
            if value is None:
                return 0
            data = base64.b64decode(value["data"][0])
            token = TokenAccount.from_bytes(data[:165])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ChainUnavailable(f"Solana RPC answered getAccountInfo with garbage: {exc!r}") from exc
        if value["owner"] != str(TOKEN_PROGRAM_ID) or token.mint != self.mint:
            raise ChainUnavailable(f"{account} is not a USDC token account")
        return token.amount

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
                token = TokenAccount.from_bytes(base64.b64decode(value["data"][0])[:165])
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
        params = TransferCheckedParams(
            program_id=TOKEN_PROGRAM_ID,
            source=self.escrow_token_account,
            mint=self.mint,
            dest=dest,
            owner=hot,
            amount=amount,
            decimals=USDC_DECIMALS,
            signers=[],
        )
        instructions = [
            transfer_checked(params),
            create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=hot, message=memo.encode())),
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
