"""The Solana devchain's answers in the RPC's own shapes: a landed transaction as getTransaction
returns it (json, jsonParsed with token balances, base64, base58), instructions parsed for the programs
a payment touches, token amounts, and base58."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from solders.instruction import CompiledInstruction
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.transaction import VersionedTransaction
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.token.constants import ASSOCIATED_TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID

MEMO_V1_PROGRAM_ID = Pubkey.from_string("Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo")
MEMO_PROGRAMS = (MEMO_PROGRAM_ID, MEMO_V1_PROGRAM_ID)
TOKEN_PROGRAMS = (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID)


@dataclass(frozen=True)
class Landed:
    """A transaction in a block, with what the RPC reports about it."""

    slot: int
    block_time: int
    tx: VersionedTransaction
    keys: list[Pubkey]  # static keys, then loaded writable, then loaded readonly
    loaded_writable: list[Pubkey]
    loaded_readonly: list[Pubkey]
    err: Any  # the TransactionError as the RPC spells it, None on success
    fee: int
    logs: list[str]
    compute_units: int
    inner: list[list[tuple[CompiledInstruction, int | None]]]  # per top-level instruction
    pre_balances: list[int]
    post_balances: list[int]
    pre_token_balances: list[dict[str, Any]]
    post_token_balances: list[dict[str, Any]]


def ui_amount(amount: int, decimals: int) -> dict[str, Any]:
    text = format(Decimal(amount).scaleb(-decimals).normalize(), "f")
    return {
        "amount": str(amount),
        "decimals": decimals,
        "uiAmount": amount / 10**decimals if amount else None,
        "uiAmountString": text,
    }


def render_transaction(landed: Landed, encoding: str) -> dict[str, Any]:
    tx, keys = landed.tx, landed.keys
    message = tx.message
    assert isinstance(message, Message | MessageV0)  # noqa: S101 - _execute only records these
    parsed = encoding == "jsonParsed"

    def instruction(ix: CompiledInstruction, stack_height: int | None) -> dict[str, Any]:
        if parsed:
            accounts = [keys[i] for i in ix.accounts]
            return parse_instruction(keys[ix.program_id_index], accounts, bytes(ix.data), stack_height)
        return {
            "programIdIndex": ix.program_id_index,
            "accounts": list(ix.accounts),
            "data": b58encode(bytes(ix.data)),
            "stackHeight": stack_height,
        }

    meta: dict[str, Any] = {
        "err": landed.err,
        "status": {"Ok": None} if landed.err is None else {"Err": landed.err},
        "fee": landed.fee,
        "preBalances": landed.pre_balances,
        "postBalances": landed.post_balances,
        "innerInstructions": [
            {"index": index, "instructions": [instruction(ix, height) for ix, height in group]}
            for index, group in enumerate(landed.inner)
            if group
        ],
        "logMessages": landed.logs,
        "preTokenBalances": landed.pre_token_balances,
        "postTokenBalances": landed.post_token_balances,
        "rewards": [],
        "computeUnitsConsumed": landed.compute_units,
    }
    if not parsed:
        meta["loadedAddresses"] = {
            "writable": [str(k) for k in landed.loaded_writable],
            "readonly": [str(k) for k in landed.loaded_readonly],
        }
    transaction: Any
    if encoding in ("base64", "base58"):
        raw = bytes(tx)
        transaction = [base64.b64encode(raw).decode() if encoding == "base64" else b58encode(raw), encoding]
    else:
        header = message.header
        body: dict[str, Any] = {}
        if parsed:
            static = len(message.account_keys)
            body["accountKeys"] = [
                {
                    "pubkey": str(key),
                    "signer": index < header.num_required_signatures,
                    "writable": _writable(message, index)
                    if index < static
                    else index < static + len(landed.loaded_writable),
                    "source": "transaction" if index < static else "lookupTable",
                }
                for index, key in enumerate(keys)
            ]
        else:
            body["header"] = {
                "numRequiredSignatures": header.num_required_signatures,
                "numReadonlySignedAccounts": header.num_readonly_signed_accounts,
                "numReadonlyUnsignedAccounts": header.num_readonly_unsigned_accounts,
            }
            body["accountKeys"] = [str(key) for key in message.account_keys]
        body["recentBlockhash"] = str(message.recent_blockhash)
        body["instructions"] = [instruction(ix, None) for ix in message.instructions]
        if isinstance(message, MessageV0):
            body["addressTableLookups"] = [
                {
                    "accountKey": str(lookup.account_key),
                    "writableIndexes": list(lookup.writable_indexes),
                    "readonlyIndexes": list(lookup.readonly_indexes),
                }
                for lookup in message.address_table_lookups
            ]
        transaction = {"signatures": [str(s) for s in tx.signatures], "message": body}
    return {
        "slot": landed.slot,
        "blockTime": landed.block_time,
        "version": 0 if isinstance(message, MessageV0) else "legacy",
        "meta": meta,
        "transaction": transaction,
    }


def _writable(message: Message | MessageV0, index: int) -> bool:
    """From the header, with invoked programs demoted to read-only as the runtime does."""
    header, static = message.header, len(message.account_keys)
    if index < header.num_required_signatures:
        writable = index < header.num_required_signatures - header.num_readonly_signed_accounts
    else:
        writable = index < static - header.num_readonly_unsigned_accounts
    return writable and not message.is_key_called_as_program(index)


def parse_instruction(program: Pubkey, accounts: list[Pubkey], data: bytes, stack_height: int | None) -> dict[str, Any]:
    """jsonParsed for the programs a payment touches; anything else in the raw form, as the RPC does."""
    try:
        parsed = _parse_known(program, [str(key) for key in accounts], data)
    except (IndexError, ValueError):  # malformed data: the instruction failed, show it raw
        parsed = None
    if parsed is not None:
        name, value = parsed
        return {"program": name, "programId": str(program), "parsed": value, "stackHeight": stack_height}
    return {
        "programId": str(program),
        "accounts": [str(key) for key in accounts],
        "data": b58encode(data),
        "stackHeight": stack_height,
    }


def _parse_known(program: Pubkey, accounts: list[str], data: bytes) -> tuple[str, Any] | None:
    if program in MEMO_PROGRAMS:
        return "spl-memo", data.decode("utf-8")
    if program in TOKEN_PROGRAMS and data[:1] == b"\x03" and len(data) == 9:
        info = {"source": accounts[0], "destination": accounts[1], **_authority(accounts, 2)}
        info["amount"] = str(int.from_bytes(data[1:9], "little"))
        return "spl-token", {"type": "transfer", "info": info}
    if program in TOKEN_PROGRAMS and data[:1] == b"\x0c" and len(data) == 10:
        amount, decimals = int.from_bytes(data[1:9], "little"), data[9]
        info = {"source": accounts[0], "mint": accounts[1], "destination": accounts[2], **_authority(accounts, 3)}
        info["tokenAmount"] = ui_amount(amount, decimals)
        return "spl-token", {"type": "transferChecked", "info": info}
    if program == SYSTEM_PROGRAM_ID and len(data) == 12 and data[:4] == b"\x02\x00\x00\x00":
        info = {"source": accounts[0], "destination": accounts[1], "lamports": int.from_bytes(data[4:12], "little")}
        return "system", {"type": "transfer", "info": info}
    if program == ASSOCIATED_TOKEN_PROGRAM_ID and data in (b"", b"\x00", b"\x01"):
        names = ("source", "account", "wallet", "mint", "systemProgram", "tokenProgram")
        kind = "createIdempotent" if data == b"\x01" else "create"
        return "spl-associated-token-account", {"type": kind, "info": dict(zip(names, accounts, strict=False))}
    return None


def _authority(accounts: list[str], index: int) -> dict[str, Any]:
    if len(accounts) > index + 1:
        return {"multisigAuthority": accounts[index], "signers": accounts[index + 1 :]}
    return {"authority": accounts[index]}


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}


def b58encode(data: bytes) -> str:
    number, out = int.from_bytes(data, "big"), ""
    while number:
        number, digit = divmod(number, 58)
        out = _B58[digit] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        if char not in _B58_INDEX:
            raise ValueError(f"not base58: {char!r}")
        number = number * 58 + _B58_INDEX[char]
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body
