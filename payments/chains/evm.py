"""Base (EVM) USDC over JSON-RPC with web3.py: verify escrow payments, sign and send payouts.

A payment counts when, `confirmations` blocks deep on the canonical chain, its receipt succeeded
and a Transfer log emitted by the configured USDC contract moves at least the quoted amount from
the buyer to the escrow. Whoever sent the transaction does not matter: a smart account's transfer
arrives in a transaction from a bundler or relayer, and one bundle may carry several buyers'
transfers. EVM has no memo: the proven buyer as the log's `from`, the unique (chain, tx_hash,
log_index) and the block-time check bind one log to one order.

Contract accounts sign with EIP-1271 (`isValidSignature` on the deployed account) or, not yet
deployed, ERC-6492 (the signature carries the account's factory and its calldata): see
`is_valid_signature`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from django.conf import settings
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_account import Account
from eth_typing import BlockNumber, ChecksumAddress, HexStr
from eth_utils import is_address, keccak, to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3Exception, Web3RPCError
from web3.types import BlockData, LogReceipt, Nonce, TxParams, TxReceipt, Wei

from lib.wallets import personal_message_hash
from payments.chains.base import (
    ChainNotConfigured,
    ChainUnavailable,
    InboundTransfer,
    PaymentInstructions,
    PaymentPending,
    PaymentRejected,
    SignedTransfer,
    TransferState,
    VerifiedTransfer,
)
from payments.chains.config import BaseConfig, base_config

TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
TRANSFER_TOPIC = HexBytes(keccak(text="Transfer(address,address,uint256)"))
TRANSFER_SELECTOR = keccak(text="transfer(address,uint256)")[:4]
BALANCE_OF_SELECTOR = keccak(text="balanceOf(address)")[:4]
# A USDC transfer costs 35-65k gas (more when the recipient had no balance); a fixed limit keeps
# signing independent of eth_estimateGas, which fails for a transfer the node thinks would revert.
TRANSFER_GAS_LIMIT = 100_000
USDC_DECIMALS = 6
IS_VALID_SIGNATURE_SELECTOR = keccak(text="isValidSignature(bytes32,bytes)")[:4]
EIP1271_MAGIC = bytes.fromhex("1626ba7e")
ERC6492_SUFFIX = bytes.fromhex("6492" * 16)
# ERC-6492 without a contract on chain: Erc6492Check.vy's creation code, run by an eth_call with no
# `to`, deploys the account through its factory inside the call and asks it (see its header).
ERC6492_CHECK = bytes.fromhex(
    json.loads(Path(__file__).with_name("Erc6492Check.json").read_text())["bytecode"].removeprefix("0x")
)
# Node answers to a re-sent transaction that are not errors: it is pooled or already mined.
ALREADY_SENT = ("already known", "known transaction", "already imported", "nonce too low")


@contextmanager
def _rpc() -> Iterator[None]:
    """Map anything the transport or the node throws (or an answer missing its fields) to
    ChainUnavailable: nothing was decided."""
    try:
        yield
    except (Web3Exception, requests.RequestException, OSError, ValueError, KeyError, IndexError) as exc:
        raise ChainUnavailable(f"base rpc: {type(exc).__name__}: {exc}") from exc


def _address(log_topic: bytes) -> ChecksumAddress:
    return to_checksum_address(log_topic[-20:])


def _amount(log: LogReceipt) -> int:
    return int.from_bytes(log["data"], "big")


class EvmClient:
    chain = "base"

    def __init__(self, config: BaseConfig, *, timeout: float = 10.0) -> None:
        if not config.usdc_address or not (config.escrow_private_key or config.escrow_address):
            raise ChainNotConfigured("base: the USDC address or the escrow key (or address) is not configured")
        try:
            self.usdc = to_checksum_address(config.usdc_address)
            # The hot wallet's key: only in a process that signs outgoing transfers (a worker).
            self._account = Account.from_key(config.escrow_private_key) if config.escrow_private_key else None
            address = self._account.address if self._account else to_checksum_address(config.escrow_address)
        except (ValueError, TypeError) as exc:
            raise ChainNotConfigured(f"base: misconfigured USDC address or escrow key ({type(exc).__name__})") from None
        if self._account and config.escrow_address and to_checksum_address(config.escrow_address) != address:
            raise ChainNotConfigured("base: BASE_ESCROW_ADDRESS is not the address of BASE_ESCROW_PRIVATE_KEY")
        self.config = config
        self.escrow: ChecksumAddress = address
        self.confirmations = max(1, config.confirmations)
        # No provider-level retries: a failed call is ChainUnavailable and the caller re-checks later.
        self.w3 = Web3(
            Web3.HTTPProvider(config.rpc_url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None)
        )

    @classmethod
    def from_settings(cls) -> EvmClient:
        return cls(base_config(), timeout=settings.CHAIN_RPC_TIMEOUT_SECONDS)

    # --- payments in -------------------------------------------------------------------------

    def normalize_tx_hash(self, value: str) -> str:
        value = value.strip() if isinstance(value, str) else ""
        if not TX_HASH.fullmatch(value):
            raise PaymentRejected("malformed_tx_hash", "a Base transaction hash is 0x and 64 hex digits")
        return value.lower()

    def payment_instructions(self) -> PaymentInstructions:
        return PaymentInstructions(
            chain=self.chain,
            escrow_address=self.escrow,
            token_account=self.escrow,
            token=self.usdc,
            decimals=USDC_DECIMALS,
            chain_id=self.config.chain_id,
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
        accounted_logs: frozenset[int] = frozenset(),
    ) -> VerifiedTransfer:
        """Base transfers carry no reference: the proven `payer` (a signature by the paying account,
        or a wallet session of it) binds a USDC Transfer log from it into escrow to the order, so it
        is required. The transaction's sender does not matter (bundlers, relayers). Of the payer's
        logs not in `accounted_logs`, the first that carries `min_amount` pays; when none does, the
        first is the underpaid transfer."""
        tx_hash = self.normalize_tx_hash(tx_hash)
        if payer is None or not is_address(payer):
            raise PaymentRejected("buyer_not_sender", "a Base payment needs the proven address of its sender")
        payer_address = to_checksum_address(payer)
        receipt, block, is_final = self._receipt(tx_hash, final=final)
        with _rpc():  # a malformed answer is the node's fault, never a decision
            if receipt["status"] != 1:
                raise PaymentRejected("tx_failed", "the transaction reverted")
            transfers = [log for log in receipt["logs"] if self._is_transfer(log)]
            usdc = [log for log in transfers if to_checksum_address(log["address"]) == self.usdc]
            if not usdc:
                raise PaymentRejected("wrong_token", "no transfer of the USDC contract in this transaction")
            to_escrow = [log for log in usdc if _address(log["topics"][2]) == self.escrow]
            if not to_escrow:
                raise PaymentRejected("not_to_escrow", "no USDC transfer to the escrow address")
            from_payer = [log for log in to_escrow if _address(log["topics"][1]) == payer_address]
            if not from_payer:
                raise PaymentRejected(
                    "buyer_not_sender",
                    "none of the USDC sent to escrow in this transaction came from the payer's wallet",
                )
            unused = [log for log in from_payer if int(log["logIndex"]) not in accounted_logs]
            if not unused:
                raise PaymentRejected(
                    "tx_hash_used", "every transfer from the payer's wallet in this transaction pays something already"
                )
            log = next((log for log in unused if _amount(log) >= min_amount), unused[0])
            amount = _amount(log)
            timestamp = int(block["timestamp"])
            transfer = VerifiedTransfer(
                tx_hash=tx_hash,
                payer=payer_address,
                amount=amount,
                block_time=timestamp,
                final=is_final,
                log_index=int(log["logIndex"]),
            )
            if timestamp < not_before:
                raise PaymentRejected("tx_too_old", "the transaction is older than the order", transfer=transfer)
            if amount < min_amount:
                raise PaymentRejected("underpaid", f"received {amount} base units, {min_amount} due", transfer=transfer)
            return transfer

    def _receipt(self, tx_hash: str, *, final: bool) -> tuple[TxReceipt, BlockData, bool]:
        """The receipt, its block and whether it is `confirmations` deep on the canonical chain.
        PaymentPending when not mined (or, with `final`, not deep enough yet)."""
        with _rpc():
            chain_id = self.w3.eth.chain_id
            if chain_id != self.config.chain_id:
                raise PaymentRejected("wrong_chain", f"the node is on chain {chain_id}, not {self.config.chain_id}")
            try:
                receipt = self.w3.eth.get_transaction_receipt(HexStr(tx_hash))
            except TransactionNotFound:
                raise PaymentPending("not mined yet (or unknown, or reorged out)") from None
            head = self.w3.eth.block_number
            depth = head - receipt["blockNumber"] + 1
            if final and depth < self.confirmations:
                raise PaymentPending(f"{depth} of {self.confirmations} confirmations")
            block = self.w3.eth.get_block(receipt["blockNumber"])
            if block["hash"] != receipt["blockHash"]:
                raise PaymentPending("the receipt's block is no longer canonical (reorg)")
        return receipt, block, depth >= self.confirmations

    def inbound_transfers(self, after: str) -> tuple[list[InboundTransfer], str]:
        """USDC Transfer logs into the escrow in final blocks after block `after`, one transfer each."""
        with _rpc():
            head = self.w3.eth.block_number
            last_final = head - self.confirmations + 1
            first = int(after) + 1 if after else 0
            if last_final < first:
                return [], after
            logs = self.w3.eth.get_logs(
                {
                    "address": self.usdc,
                    "fromBlock": BlockNumber(first),
                    "toBlock": BlockNumber(last_final),
                    "topics": [TRANSFER_TOPIC, None, HexBytes(abi_encode(["address"], [self.escrow]))],
                }
            )
            # Each Transfer log into escrow is its own transfer, sent by the log's `from`: a bundle
            # carrying several buyers' transfers is several inbound transfers.
            live = [log for log in logs if self._is_transfer(log) and not log.get("removed")]
            found: list[InboundTransfer] = []
            times: dict[int, int] = {}
            for position, log in enumerate(live):
                number = int(log["blockNumber"])
                if number not in times:
                    times[number] = int(self.w3.eth.get_block(BlockNumber(number))["timestamp"])
                last_in_block = position == len(live) - 1 or int(live[position + 1]["blockNumber"]) != number
                found.append(
                    InboundTransfer(
                        tx_hash="0x" + bytes(log["transactionHash"]).hex(),
                        sender=_address(log["topics"][1]),
                        amount=_amount(log),
                        memos=(),
                        block_time=times[number],
                        position=str(number if last_in_block else number - 1),
                        log_index=int(log["logIndex"]),
                    )
                )
        return found, str(last_final)

    @staticmethod
    def _is_transfer(log: LogReceipt) -> bool:
        topics = log["topics"]
        return len(topics) == 3 and HexBytes(topics[0]) == TRANSFER_TOPIC and len(log["data"]) == 32

    def token_balance(self, owner: str) -> int:
        data = BALANCE_OF_SELECTOR + abi_encode(["address"], [to_checksum_address(owner)])
        with _rpc():
            result = self.w3.eth.call({"to": self.usdc, "data": HexBytes(data)})
        if len(result) != 32:
            raise ChainUnavailable(f"base: balanceOf answered {len(result)} bytes")
        return int.from_bytes(result, "big")

    # --- contract accounts' signatures --------------------------------------------------------

    def is_valid_signature(self, address: str, message: str, signature: bytes) -> bool:
        """Whether the account at `address` accepts `signature` over the personal_sign (EIP-191)
        hash of `message`: EIP-1271 `isValidSignature` on a deployed account; for an ERC-6492
        signature (wrapped with the account's factory and calldata), that same question asked of
        the account deployed inside one `eth_call` (nothing is deployed for real). An address
        without code, or an account that reverts, says no. ChainUnavailable when the node cannot
        answer: nothing was decided."""
        account = to_checksum_address(address)
        digest = personal_message_hash(message)
        if signature.endswith(ERC6492_SUFFIX):
            try:
                factory, calldata, inner = abi_decode(["address", "bytes", "bytes"], signature[: -len(ERC6492_SUFFIX)])
            except (DecodingError, ValueError, OverflowError):
                return False
            arguments = abi_encode(
                ["address", "bytes32", "address", "bytes", "bytes"], [account, digest, factory, calldata, inner]
            )
            with _rpc():
                try:
                    result = self.w3.eth.call({"data": HexBytes(ERC6492_CHECK + arguments)})
                except ContractLogicError:
                    return False
            return len(result) >= 32 and int.from_bytes(result[-32:], "big") == 1
        query = IS_VALID_SIGNATURE_SELECTOR + abi_encode(["bytes32", "bytes"], [digest, signature])
        with _rpc():
            try:
                result = self.w3.eth.call({"to": account, "data": HexBytes(query)})
            except ContractLogicError:
                return False
        return len(result) >= 4 and bytes(result[:4]) == EIP1271_MAGIC

    # --- payouts and refunds out -------------------------------------------------------------

    def next_nonce(self) -> int | None:
        with _rpc():
            return self.w3.eth.get_transaction_count(self.escrow, "pending")

    def can_receive(self, to: str, token_account: str = "") -> bool:
        """Any EVM address can hold USDC; receiving costs the sender no more than the transfer's gas."""
        return is_address(to)

    def fee_balance(self) -> int:
        with _rpc():
            return int(self.w3.eth.get_balance(self.escrow, "latest"))

    def opening_point(self) -> tuple[str, int]:
        data = BALANCE_OF_SELECTOR + abi_encode(["address"], [self.escrow])
        with _rpc():
            final = BlockNumber(max(0, self.w3.eth.block_number - self.confirmations + 1))
            result = self.w3.eth.call({"to": self.usdc, "data": HexBytes(data)}, final)
        if len(result) != 32:
            raise ChainUnavailable(f"base: balanceOf answered {len(result)} bytes")
        return str(final), int.from_bytes(result, "big")

    def sign_transfer(
        self, *, to: str, amount: int, memo: str, nonce: int | None = None, token_account: str = ""
    ) -> SignedTransfer:
        """An ERC-20 transfer from the escrow hot wallet. `memo` has no place on EVM and is ignored,
        and so is `token_account` (a Solana notion)."""
        if amount <= 0:
            raise PaymentRejected("invalid_amount", f"cannot send {amount} base units")
        if self._account is None:
            raise ChainNotConfigured("base: this process holds no hot-wallet key; only the workers sign transfers")
        if not is_address(to):
            raise PaymentRejected("invalid_address", f"{to!r} is not an EVM address")
        recipient = to_checksum_address(to)
        with _rpc():
            if nonce is None:
                nonce = self.w3.eth.get_transaction_count(self.escrow, "pending")
            base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
            tip = int(self.w3.eth.max_priority_fee)
        tx: TxParams = {
            "type": 2,
            "chainId": self.config.chain_id,
            "nonce": Nonce(nonce),
            "to": self.usdc,
            "value": Wei(0),
            "gas": TRANSFER_GAS_LIMIT,
            "maxPriorityFeePerGas": Wei(tip),
            "maxFeePerGas": Wei(2 * base_fee + tip),  # room for the base fee to double before it lands
            "data": HexBytes(TRANSFER_SELECTOR + abi_encode(["address", "uint256"], [recipient, amount])),
        }
        signed = self._account.sign_transaction(tx)
        return SignedTransfer(
            tx_hash="0x" + bytes(signed.hash).hex(), raw=bytes(signed.raw_transaction), valid_until=None, nonce=nonce
        )

    def send_raw(self, raw: bytes) -> None:
        with _rpc():
            try:
                self.w3.eth.send_raw_transaction(raw)
            except Web3RPCError as exc:
                if any(marker in str(exc).lower() for marker in ALREADY_SENT):
                    return  # pooled or mined already (or its nonce went to another tx): transfer_status decides
                raise

    def transfer_status(self, signed: SignedTransfer) -> TransferState:
        with _rpc():
            head = self.w3.eth.block_number
            final = BlockNumber(max(0, head - self.confirmations + 1))
            # Read the nonce before the receipt: if our tx lands in between we see its receipt,
            # never "nonce consumed and no receipt" for our own transaction.
            final_nonce = self.w3.eth.get_transaction_count(self.escrow, final) if signed.nonce is not None else 0
            try:
                receipt: TxReceipt | None = self.w3.eth.get_transaction_receipt(HexStr(signed.tx_hash))
            except TransactionNotFound:
                receipt = None
        if receipt is not None:
            if head - receipt["blockNumber"] + 1 < self.confirmations:
                return "pending"
            return "confirmed" if receipt["status"] == 1 else "failed"
        if signed.nonce is not None and final_nonce > signed.nonce:
            return "failed"  # a final transaction used our nonce: this one can never land
        return "pending"
