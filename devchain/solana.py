"""A Solana chain in this process: `solders.litesvm.LiteSVM` served as JSON-RPC over HTTP on loopback.

Transactions are real: wallets sign them, LiteSVM runs them through the system, SPL Token,
associated token account and memo programs. Around it this module adds what a validator's RPC
adds: slots with block times, a window of recent blockhashes, a ledger of landed transactions
answered in the RPC's own shapes (jsonParsed with token balances), commitment levels, a faucet.

Blocks: each landed transaction gets its own slot, and an empty slot is produced every
`slot_seconds` (None: only on transactions and /devchain/advance). Block height equals the slot.
A blockhash is valid for `blockhash_validity` blocks after its own (lastValidBlockHeight).

Commitment: `processed` and `confirmed` see the head; `finalized` sees slots up to
`head - finality_lag` (0: final at once), or up to the head after /devchain/finalize. Account
reads (balances, account info) answer from the head whatever the commitment: LiteSVM keeps one
state. Nothing is persisted: a restart keeps the addresses (pass the keys back) but not the ledger.

Routes: POST / JSON-RPC 2.0 (single or batch); POST /faucet {"address", "sol", "usdc",
"token_account"} (lamports and USDC base units; `token_account`: open its USDC account even with no
USDC); POST /devchain/advance {"slots": n}; POST /devchain/finalize; GET /devchain (public addresses
and slots); GET /health.

Here the chain and its RPC methods; `devchain.solana_rendering` answers in the RPC's shapes,
`devchain.solana_jsonrpc` holds the protocol's errors and parameters, `devchain.solana_http` serves it.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from solders.account import Account
from solders.address_lookup_table_account import AddressLookupTable
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message, MessageV0, from_bytes_versioned
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import TransferParams, transfer
from solders.token.state import Mint, TokenAccount, TokenAccountState
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata
from spl.token.constants import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
    mint_to_checked,
)
from spl.token.models import MintToCheckedParams

from devchain import solana_jsonrpc as rpc
from devchain.solana_jsonrpc import (
    INVALID_PARAMS,
    SIGNATURE_VERIFICATION_FAILURE,
    UNSUPPORTED_TRANSACTION_VERSION,
    RpcError,
)
from devchain.solana_rendering import MEMO_PROGRAMS, TOKEN_PROGRAMS, Landed, b58encode, render_transaction, ui_amount

log = logging.getLogger(__name__)

USDC_DECIMALS = 6
LAMPORTS_PER_SOL = 10**9
LAMPORTS_PER_SIGNATURE = 5000
API_VERSION = "2.2.0"
_FAUCET_LAMPORTS = 10**18
_TOKEN_ACCOUNT_LEN, _MULTISIG_LEN, _MINT_LEN = 165, 355, 82

_FINALIZED = ("finalized", "max", "root")
_HEAD = ("confirmed", "processed", "recent", "single", "singleGossip")


class SolanaDevchain:
    """The chain: LiteSVM plus blocks, commitment, a ledger and a faucet. Thread-safe through one lock."""

    def __init__(
        self,
        *,
        usdc_mint: str | None = None,
        escrow_secret: str | None = None,
        mint_authority_secret: str | None = None,
        finality_lag: int = 0,
        slot_seconds: float | None = 0.4,
        blockhash_validity: int = 150,
        escrow_sol: int = 10 * LAMPORTS_PER_SOL,
    ) -> None:
        self.lock = threading.RLock()
        # The recent-blockhash window is ours (LiteSVM only knows its latest blockhash).
        self.svm = LiteSVM().with_blockhash_check(False)
        self.escrow = Keypair.from_base58_string(escrow_secret) if escrow_secret else Keypair()
        self.mint_authority = Keypair.from_base58_string(mint_authority_secret) if mint_authority_secret else Keypair()
        self.usdc_mint = Pubkey.from_string(usdc_mint) if usdc_mint else Keypair().pubkey()
        self.escrow_token_account = get_associated_token_address(self.escrow.pubkey(), self.usdc_mint)
        self.finality_lag = finality_lag
        self.blockhash_validity = blockhash_validity
        self.slot = 0
        self.finalized_slot = 0
        self._seed = os.urandom(32)
        self._blocks: dict[int, tuple[Hash, int]] = {}  # slot -> (blockhash, unix time), recent ones
        self._hash_slot: dict[Hash, int] = {}
        self._oldest = 0
        self._txs: dict[str, Landed] = {}
        self._open_block(0)
        self.genesis_hash = self._blocks[0][0]
        self._methods: dict[str, Callable[[list[Any]], Any]] = {
            "getLatestBlockhash": self._rpc_get_latest_blockhash,
            "sendTransaction": self._rpc_send_transaction,
            "getTransaction": self._rpc_get_transaction,
            "getSignatureStatuses": self._rpc_get_signature_statuses,
            "getSignaturesForAddress": self._rpc_get_signatures_for_address,
            "getBalance": self._rpc_get_balance,
            "getTokenAccountBalance": self._rpc_get_token_account_balance,
            "getAccountInfo": self._rpc_get_account_info,
            "getMultipleAccounts": self._rpc_get_multiple_accounts,
            "requestAirdrop": self._rpc_request_airdrop,
            "getMinimumBalanceForRentExemption": self._rpc_get_minimum_balance_for_rent_exemption,
            "getBlockHeight": self._rpc_get_slot,
            "getSlot": self._rpc_get_slot,
            "isBlockhashValid": self._rpc_is_blockhash_valid,
            "getFeeForMessage": self._rpc_get_fee_for_message,
            "getGenesisHash": lambda params: str(self.genesis_hash),
            "getHealth": lambda params: "ok",
            "getVersion": lambda params: {"solana-core": API_VERSION, "feature-set": 0},
        }
        with self.lock:
            self.svm.set_account(self.mint_authority.pubkey(), Account(_FAUCET_LAMPORTS, b"", SYSTEM_PROGRAM_ID))
            mint = Mint(self.mint_authority.pubkey(), 0, USDC_DECIMALS, True, None)
            rent = self.svm.minimum_balance_for_rent_exemption(_MINT_LEN)
            self.svm.set_account(self.usdc_mint, Account(rent, bytes(mint), TOKEN_PROGRAM_ID))
            self.faucet(str(self.escrow.pubkey()), sol=escrow_sol, create_token_account=True)
            self.finalize()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if slot_seconds:
            self._ticker = threading.Thread(
                target=self._tick, args=(slot_seconds,), name="solana-devchain-slots", daemon=True
            )
            self._ticker.start()

    # --- the chain -------------------------------------------------------------------------

    def state(self) -> dict[str, str]:
        """What a restart needs to keep the same addresses (secrets included: a devchain's state file)."""
        return {
            "usdc_mint": str(self.usdc_mint),
            "escrow_secret": str(self.escrow),
            "mint_authority_secret": str(self.mint_authority),
        }

    def info(self) -> dict[str, Any]:
        with self.lock:
            return {
                "usdc_mint": str(self.usdc_mint),
                "escrow": str(self.escrow.pubkey()),
                "escrow_token_account": str(self.escrow_token_account),
                "mint_authority": str(self.mint_authority.pubkey()),
                "slot": self.slot,
                "finalized_slot": self.finalized_slot,
                "finality_lag": self.finality_lag,
                "blockhash_validity": self.blockhash_validity,
            }

    def advance(self, slots: int = 1) -> dict[str, Any]:
        """Produce `slots` empty blocks."""
        with self.lock:
            for _ in range(slots):
                self._advance()
            return self.info()

    def finalize(self) -> dict[str, Any]:
        """Make everything up to the head final now."""
        with self.lock:
            self.finalized_slot = self.slot
            return self.info()

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)

    def airdrop(self, address: Pubkey, lamports: int) -> str:
        return self._faucet_transaction(
            [transfer(TransferParams(from_pubkey=self.mint_authority.pubkey(), to_pubkey=address, lamports=lamports))]
        )

    def faucet(
        self, address: str, *, sol: int = 0, usdc: int = 0, create_token_account: bool = False
    ) -> dict[str, Any]:
        """Give `address` SOL (lamports) and test USDC (base units, minted into its associated token account)."""
        owner = Pubkey.from_string(address)
        if sol < 0 or usdc < 0:
            raise ValueError("amounts must not be negative")
        authority = self.mint_authority.pubkey()
        token_account = get_associated_token_address(owner, self.usdc_mint)
        instructions: list[Instruction] = []
        if sol:
            instructions.append(transfer(TransferParams(from_pubkey=authority, to_pubkey=owner, lamports=sol)))
        if usdc or create_token_account:
            instructions.append(create_idempotent_associated_token_account(authority, owner, self.usdc_mint))
        if usdc:
            params = MintToCheckedParams(
                program_id=TOKEN_PROGRAM_ID,
                mint=self.usdc_mint,
                dest=token_account,
                mint_authority=authority,
                amount=usdc,
                decimals=USDC_DECIMALS,
                signers=[],
            )
            instructions.append(mint_to_checked(params))
        if not instructions:
            raise ValueError("ask for sol and/or usdc")
        signature = self._faucet_transaction(instructions)
        return {
            "signature": signature,
            "address": address,
            "token_account": str(token_account),
            "sol": sol,
            "usdc": usdc,
        }

    def send_transaction(self, raw: bytes, *, preflight: bool = True) -> str:
        try:
            tx = VersionedTransaction.from_bytes(raw)
        except ValueError as exc:
            raise RpcError(INVALID_PARAMS, f"failed to deserialize transaction: {exc}") from None
        with self.lock:
            return self._execute(tx, preflight=preflight)

    def _faucet_transaction(self, instructions: Sequence[Instruction]) -> str:
        with self.lock:
            blockhash = self._blocks[self.slot][0]
            message = MessageV0.try_compile(self.mint_authority.pubkey(), instructions, [], blockhash)
            return self._execute(VersionedTransaction(message, [self.mint_authority]), preflight=True)

    def _tick(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            with self.lock:
                self._advance()

    def _open_block(self, slot: int) -> None:
        blockhash = Hash(hashlib.sha256(self._seed + slot.to_bytes(8, "little")).digest())
        self._blocks[slot] = (blockhash, int(time.time()))
        self._hash_slot[blockhash] = slot

    def _advance(self) -> None:
        self.slot += 1
        self._open_block(self.slot)
        self.finalized_slot = max(self.finalized_slot, self.slot - self.finality_lag)
        keep_from = min(self.finalized_slot, self.slot - self.blockhash_validity - 1)
        while self._oldest < keep_from:
            blockhash, _ = self._blocks.pop(self._oldest)
            self._hash_slot.pop(blockhash, None)
            self._oldest += 1

    def _blockhash_valid(self, blockhash: Hash) -> bool:
        issued = self._hash_slot.get(blockhash)
        return issued is not None and self.slot + 1 <= issued + self.blockhash_validity

    def _execute(self, tx: VersionedTransaction, *, preflight: bool) -> str:
        """Run a signed transaction. Rejected before execution: RpcError, nothing lands. Otherwise it
        lands in a new slot, succeeded or failed (fee charged, meta.err set), like on a real chain."""
        message = tx.message
        if not isinstance(message, Message | MessageV0):
            raise RpcError(INVALID_PARAMS, "unsupported transaction version")
        try:
            tx.sanitize()
        except Exception as exc:  # solders raises its own error types
            raise RpcError(INVALID_PARAMS, f"invalid transaction: {exc}") from None
        if not all(tx.verify_with_results()):
            raise RpcError(SIGNATURE_VERIFICATION_FAILURE, "Transaction signature verification failure")
        signature = tx.signatures[0]
        if str(signature) in self._txs:
            raise rpc.preflight_error("AlreadyProcessed")
        if not self._blockhash_valid(message.recent_blockhash):
            raise rpc.preflight_error("BlockhashNotFound")
        loaded_writable, loaded_readonly = self._resolve_lookups(message)
        keys = [*message.account_keys, *loaded_writable, *loaded_readonly]
        if preflight:
            simulated = self.svm.simulate_transaction(tx)
            if isinstance(simulated, FailedTransactionMetadata):
                meta = simulated.meta()
                raise rpc.preflight_error(rpc.err_json(simulated), list(meta.logs()), meta.compute_units_consumed())
        pre_balances = [self.svm.get_balance(key) or 0 for key in keys]
        pre_token_balances = self._token_balances(keys)
        result = self.svm.send_transaction(tx)
        if isinstance(result, FailedTransactionMetadata):
            if self.svm.get_transaction(signature) is None:  # not included: no fee, no block
                raise rpc.preflight_error(rpc.err_json(result), list(result.meta().logs()))
            meta, err = result.meta(), rpc.err_json(result)
        else:
            meta, err = result, None
        self._advance()
        self._txs[str(signature)] = Landed(
            slot=self.slot,
            block_time=self._blocks[self.slot][1],
            tx=tx,
            keys=keys,
            loaded_writable=loaded_writable,
            loaded_readonly=loaded_readonly,
            err=err,
            fee=meta.fee(),
            logs=list(meta.logs()),
            compute_units=meta.compute_units_consumed(),
            inner=[[(ix.instruction(), ix.stack_height()) for ix in group] for group in meta.inner_instructions()],
            pre_balances=pre_balances,
            post_balances=[self.svm.get_balance(key) or 0 for key in keys],
            pre_token_balances=pre_token_balances,
            post_token_balances=self._token_balances(keys),
        )
        return str(signature)

    def _resolve_lookups(self, message: Message | MessageV0) -> tuple[list[Pubkey], list[Pubkey]]:
        if not isinstance(message, MessageV0):
            return [], []
        writable: list[Pubkey] = []
        readonly: list[Pubkey] = []
        for lookup in message.address_table_lookups:
            account = self.svm.get_account(lookup.account_key)
            if account is None:
                raise rpc.preflight_error("AddressLookupTableNotFound")
            addresses = AddressLookupTable.deserialize(bytes(account.data)).addresses
            try:
                writable += [addresses[i] for i in lookup.writable_indexes]
                readonly += [addresses[i] for i in lookup.readonly_indexes]
            except IndexError:
                raise rpc.preflight_error("InvalidAddressLookupTableIndex") from None
        return writable, readonly

    def _token_account(self, key: Pubkey) -> tuple[TokenAccount, Pubkey] | None:
        account = self.svm.get_account(key)
        if account is None or account.owner not in TOKEN_PROGRAMS:
            return None
        data = bytes(account.data)
        extended = account.owner == TOKEN_2022_PROGRAM_ID and len(data) not in (_TOKEN_ACCOUNT_LEN, _MULTISIG_LEN)
        if not (
            len(data) == _TOKEN_ACCOUNT_LEN
            or (extended and len(data) > _TOKEN_ACCOUNT_LEN and data[_TOKEN_ACCOUNT_LEN] == 2)
        ):
            return None
        try:
            token = TokenAccount.from_bytes(data[:_TOKEN_ACCOUNT_LEN])
        except Exception:  # not an initialized token account
            return None
        if token.state == TokenAccountState.Uninitialized:
            return None
        return token, account.owner

    def _decimals(self, mint: Pubkey) -> int:
        account = self.svm.get_account(mint)
        return bytes(account.data)[44] if account is not None and len(account.data) > 44 else 0

    def _token_balances(self, keys: Sequence[Pubkey]) -> list[dict[str, Any]]:
        balances = []
        for index, key in enumerate(keys):
            found = self._token_account(key)
            if found is None:
                continue
            token, program = found
            balances.append(
                {
                    "accountIndex": index,
                    "mint": str(token.mint),
                    "owner": str(token.owner),
                    "programId": str(program),
                    "uiTokenAmount": ui_amount(token.amount, self._decimals(token.mint)),
                }
            )
        return balances

    def _commitment_slot(self, config: dict[str, Any]) -> int:
        commitment = config.get("commitment", "finalized")
        if commitment in _FINALIZED:
            return self.finalized_slot
        if commitment in _HEAD:
            return self.slot
        raise RpcError(INVALID_PARAMS, f"Invalid params: unknown commitment {commitment!r}")

    def _context(self, value: Any, slot: int | None = None) -> dict[str, Any]:
        return {"context": {"apiVersion": API_VERSION, "slot": self.slot if slot is None else slot}, "value": value}

    # --- JSON-RPC ----------------------------------------------------------------------------

    def handle_rpc(self, body: bytes) -> Any:
        """One JSON-RPC 2.0 request body (single or batch) in, the response object out."""
        return rpc.handle(body, self._methods, self.lock)

    def _rpc_get_latest_blockhash(self, params: list[Any]) -> Any:
        slot = self._commitment_slot(rpc.config(params, 0))
        blockhash = self._blocks[slot][0]
        return self._context(
            {"blockhash": str(blockhash), "lastValidBlockHeight": slot + self.blockhash_validity}, slot
        )

    def _rpc_is_blockhash_valid(self, params: list[Any]) -> Any:
        try:
            blockhash = Hash.from_string(rpc.arg(params, 0, str))
        except ValueError:
            raise RpcError(INVALID_PARAMS, "Invalid params: invalid blockhash") from None
        return self._context(self._blockhash_valid(blockhash))

    def _rpc_send_transaction(self, params: list[Any]) -> Any:
        encoded = rpc.arg(params, 0, str)
        config = rpc.config(params, 1)
        raw = rpc.decode(encoded, config.get("encoding", "base58"))
        return self.send_transaction(raw, preflight=not config.get("skipPreflight", False))

    def _rpc_get_fee_for_message(self, params: list[Any]) -> Any:
        try:
            message = from_bytes_versioned(base64.b64decode(rpc.arg(params, 0, str), validate=True))
        except ValueError:
            raise RpcError(INVALID_PARAMS, "Invalid params: invalid message") from None
        if not self._blockhash_valid(message.recent_blockhash):
            return self._context(None)
        return self._context(LAMPORTS_PER_SIGNATURE * message.header.num_required_signatures)

    def _rpc_get_transaction(self, params: list[Any]) -> Any:
        signature = rpc.signature(rpc.arg(params, 0, str))
        config = {"encoding": params[1]} if len(params) > 1 and isinstance(params[1], str) else rpc.config(params, 1)
        if config.get("commitment") == "processed":
            raise RpcError(INVALID_PARAMS, "Method does not support commitment below `confirmed`")
        encoding = config.get("encoding", "json")
        if encoding not in ("json", "jsonParsed", "base64", "base58"):
            raise RpcError(INVALID_PARAMS, f"Invalid params: unsupported encoding {encoding!r}")
        landed = self._txs.get(signature)
        if landed is None or landed.slot > self._commitment_slot(config):
            return None
        if isinstance(landed.tx.message, MessageV0) and config.get("maxSupportedTransactionVersion") is None:
            raise RpcError(
                UNSUPPORTED_TRANSACTION_VERSION,
                "Transaction version (0) is not supported by the requesting client. Please try the request again "
                'with the following configuration parameter: "maxSupportedTransactionVersion": 0',
            )
        return render_transaction(landed, encoding)

    def _rpc_get_signature_statuses(self, params: list[Any]) -> Any:
        signatures = rpc.arg(params, 0, list)
        if len(signatures) > 256:
            raise RpcError(INVALID_PARAMS, "Invalid params: too many signatures (max 256)")
        statuses: list[dict[str, Any] | None] = []
        for value in signatures:
            if not isinstance(value, str):
                raise RpcError(INVALID_PARAMS, "Invalid params: signatures must be strings")
            landed = self._txs.get(rpc.signature(value))
            if landed is None:
                statuses.append(None)
                continue
            final = landed.slot <= self.finalized_slot
            statuses.append(
                {
                    "slot": landed.slot,
                    "confirmations": None if final else self.slot - landed.slot,
                    "err": landed.err,
                    "status": {"Ok": None} if landed.err is None else {"Err": landed.err},
                    "confirmationStatus": "finalized" if final else "confirmed",
                }
            )
        return self._context(statuses)

    def _rpc_get_balance(self, params: list[Any]) -> Any:
        key = rpc.pubkey(rpc.arg(params, 0, str))
        return self._context(self.svm.get_balance(key) or 0)

    def _rpc_get_token_account_balance(self, params: list[Any]) -> Any:
        key = rpc.pubkey(rpc.arg(params, 0, str))
        if self.svm.get_account(key) is None:
            raise RpcError(INVALID_PARAMS, "Invalid param: could not find account")
        found = self._token_account(key)
        if found is None:
            raise RpcError(INVALID_PARAMS, "Invalid param: not a Token account")
        token, _ = found
        return self._context(ui_amount(token.amount, self._decimals(token.mint)))

    def _rpc_get_account_info(self, params: list[Any]) -> Any:
        key = rpc.pubkey(rpc.arg(params, 0, str))
        return self._context(self._account_value(key, rpc.config(params, 1)))

    def _rpc_get_multiple_accounts(self, params: list[Any]) -> Any:
        keys = rpc.arg(params, 0, list)
        if not 1 <= len(keys) <= 100 or not all(isinstance(key, str) for key in keys):
            raise RpcError(INVALID_PARAMS, "Invalid params: expected 1 to 100 base58 public keys")
        config = rpc.config(params, 1)
        return self._context([self._account_value(rpc.pubkey(key), config) for key in keys])

    def _account_value(self, key: Pubkey, config: dict[str, Any]) -> dict[str, Any] | None:
        """One account as getAccountInfo and getMultipleAccounts render it; None when it does not exist."""
        account = self.svm.get_account(key)
        if account is None:
            return None
        data = bytes(account.data)
        data_slice = config.get("dataSlice")
        if isinstance(data_slice, dict):
            offset, length = int(data_slice.get("offset", 0)), int(data_slice.get("length", len(data)))
            data = data[offset : offset + length]
        encoding = config.get("encoding", "binary")
        rendered: Any
        if encoding == "binary":
            rendered = b58encode(data)
        elif encoding == "base58":
            rendered = [b58encode(data), "base58"]
        elif encoding in ("base64", "jsonParsed"):  # jsonParsed falls back to base64, as for unparsable accounts
            rendered = [base64.b64encode(data).decode(), "base64"]
        else:
            raise RpcError(INVALID_PARAMS, f"Invalid params: unsupported encoding {encoding!r}")
        return {
            "data": rendered,
            "executable": account.executable,
            "lamports": account.lamports,
            "owner": str(account.owner),
            "rentEpoch": account.rent_epoch,
            "space": len(account.data),
        }

    def _rpc_request_airdrop(self, params: list[Any]) -> Any:
        key = rpc.pubkey(rpc.arg(params, 0, str))
        lamports = rpc.arg(params, 1, int)
        if lamports <= 0:
            raise RpcError(INVALID_PARAMS, "Invalid params: lamports must be positive")
        return self.airdrop(key, lamports)

    def _rpc_get_minimum_balance_for_rent_exemption(self, params: list[Any]) -> Any:
        size = rpc.arg(params, 0, int)
        if size < 0:
            raise RpcError(INVALID_PARAMS, "Invalid params: size must not be negative")
        return self.svm.minimum_balance_for_rent_exemption(size)

    def _rpc_get_slot(self, params: list[Any]) -> Any:
        return self._commitment_slot(rpc.config(params, 0))

    def _rpc_get_signatures_for_address(self, params: list[Any]) -> Any:
        """Newest first, as the real node answers: transactions that name the address, down to (not
        including) `until`, starting below `before`, at most `limit` (1,000)."""
        address = rpc.pubkey(rpc.arg(params, 0, str))
        config = rpc.config(params, 1)
        limit = config.get("limit", 1000)
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise RpcError(INVALID_PARAMS, "Invalid params: limit must be 1 to 1000")
        before, until = config.get("before"), config.get("until")
        visible = self._commitment_slot(config)
        found: list[dict[str, Any]] = []
        started = before is None
        for signature, landed in reversed(list(self._txs.items())):
            if signature == until:
                break
            if not started:
                started = signature == before
                continue
            if landed.slot > visible or address not in landed.keys:
                continue
            memos = [
                data.decode(errors="replace")
                for program, data in self._instructions(landed)
                if program in MEMO_PROGRAMS
            ]
            found.append(
                {
                    "signature": signature,
                    "slot": landed.slot,
                    "err": landed.err,
                    "memo": "; ".join(f"[{len(memo)}] {memo}" for memo in memos) or None,
                    "blockTime": landed.block_time,
                    "confirmationStatus": "finalized" if landed.slot <= self.finalized_slot else "confirmed",
                }
            )
            if len(found) == limit:
                break
        return found

    @staticmethod
    def _instructions(landed: Landed) -> list[tuple[Pubkey, bytes]]:
        keys = landed.keys
        return [(keys[ix.program_id_index], bytes(ix.data)) for ix in landed.tx.message.instructions]
