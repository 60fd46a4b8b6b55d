"""Solana transactions as data, no I/O (`payments.chains.solana.SolanaClient` talks to the node): the
instructions of a USDC transfer with its memo, and reading the node's JSON: what a transaction
(getTransaction, jsonParsed) moved into the escrow's own USDC account, its memos and signers,
whether it pays an order, and what a token account holds (getAccountInfo, base64).

Balances are read per account index, never summed per owner: an owner-based sum would accept a
pre-funded token account handed to the escrow with SetAuthority.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from solders.instruction import AccountMeta, Instruction
from solders.pubkey import Pubkey
from solders.token.state import TokenAccount
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.memo.instructions import create_memo
from spl.memo.models import MemoParams
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import transfer_checked
from spl.token.models import TransferCheckedParams

from payments.chains.base import ChainUnavailable, InboundTransfer, PaymentRejected, VerifiedTransfer

USDC_DECIMALS = 6
MEMO_PROGRAMS = (str(MEMO_PROGRAM_ID), "Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo")
# What a node's unexpected answer raises while it is read (turned into ChainUnavailable).
SHAPE_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError)
TOKEN_ACCOUNT_SIZE = 165  # an SPL token account's bytes, before any Token-2022 extensions


def usdc_transfer(
    *, source: Pubkey, dest: Pubkey, owner: Pubkey, mint: Pubkey, amount: int, reference: Pubkey | None = None
) -> Instruction:
    """transferChecked of `amount` USDC base units; `reference` rides along as a read-only account, so
    the transfer can be found by it (Solana Pay)."""
    params = TransferCheckedParams(
        program_id=TOKEN_PROGRAM_ID,
        source=source,
        mint=mint,
        dest=dest,
        owner=owner,
        amount=amount,
        decimals=USDC_DECIMALS,
        signers=[],
    )
    transfer = transfer_checked(params)
    if reference is None:
        return transfer
    marked = AccountMeta(reference, is_signer=False, is_writable=False)
    return Instruction(transfer.program_id, transfer.data, [*transfer.accounts, marked])


def memo(signer: Pubkey, text: str) -> Instruction:
    return create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=signer, message=text.encode()))


@dataclass(frozen=True)
class Escrow:
    """The accounts a transfer into escrow is read against (base58)."""

    mint: str  # USDC
    owner: str  # the escrow wallet
    token_account: str  # its own USDC account: the only one payments count into


@dataclass(frozen=True)
class Inflow:
    """What one transaction moved into the escrow's own USDC account."""

    received: int  # base units
    sender: str  # the owner of the USDC account it came from
    source_account: str  # that account ("" when USDC was minted straight into escrow)
    sender_signed: bool  # whether the sender signed the transaction: only then may money go back to it
    signers: tuple[str, ...]
    memos: list[str]  # every memo-program instruction, top-level and inner


def memos_of(tx: dict[str, Any]) -> list[str]:
    """The memos of the whole transaction: top-level instructions and the inner instructions of
    program calls alike (a multisig vault or smart wallet runs the memo by CPI). jsonParsed gives a
    memo's text as `parsed`; one it could not decode counts all the same, as its raw data."""
    top = tx["transaction"]["message"]["instructions"]
    inner = [ix for group in tx["meta"].get("innerInstructions") or [] for ix in group["instructions"]]
    return [str(ix.get("parsed", ix.get("data", ""))) for ix in [*top, *inner] if ix.get("programId") in MEMO_PROGRAMS]


def _account_keys(tx: dict[str, Any]) -> list[str]:
    return [key["pubkey"] for key in tx["transaction"]["message"]["accountKeys"]]


def _usdc_amounts(balances: list[dict[str, Any]], escrow: Escrow, index: int) -> dict[int, tuple[str, int]]:
    """(owner, base units) of each USDC account in a pre- or postTokenBalances list, by account index."""
    found: dict[int, tuple[str, int]] = {}
    for balance in balances:
        if balance["mint"] != escrow.mint:
            continue
        if balance["accountIndex"] == index and balance["owner"] != escrow.owner:
            raise PaymentRejected("not_to_escrow", "the escrow's USDC account is not what it should be")
        found[balance["accountIndex"]] = (balance["owner"], int(balance["uiTokenAmount"]["amount"]))
    return found


def inflow(tx: dict[str, Any], escrow: Escrow) -> Inflow:
    """What a successful transaction moved into the escrow's own USDC account, where it came from
    and the memos it carries. PaymentRejected when nothing arrived."""
    meta = tx["meta"]
    keys = _account_keys(tx)
    signers = tuple(key["pubkey"] for key in tx["transaction"]["message"]["accountKeys"] if key["signer"])
    pre, post = meta.get("preTokenBalances") or [], meta.get("postTokenBalances") or []
    if not any(balance["mint"] == escrow.mint for balance in pre + post):
        raise PaymentRejected("wrong_token", "the transaction moves no USDC")
    if escrow.token_account not in keys:
        raise PaymentRejected("not_to_escrow", "the escrow's USDC account received nothing")
    index = keys.index(escrow.token_account)
    before, after = _usdc_amounts(pre, escrow, index), _usdc_amounts(post, escrow, index)
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
    return Inflow(received, sender, source_account, sender in signers, signers, memos_of(tx))


def checked_payment(
    tx: dict[str, Any],
    escrow: Escrow,
    *,
    signature: str,
    payer: str | None,
    min_amount: int,
    reference: str,
    not_before: int,
    is_final: bool,
) -> VerifiedTransfer:
    """The transfer `tx` makes into escrow when it pays the order whose payment reference is
    `reference`; PaymentRejected saying why when it does not."""
    meta = tx["meta"]
    if meta is None:
        raise ChainUnavailable("Solana RPC returned the transaction without its status")
    if tx["transaction"]["signatures"][0] != signature:
        raise ChainUnavailable("Solana RPC returned a different transaction")
    if meta["err"] is not None:
        raise PaymentRejected("tx_failed", f"the transaction failed on chain: {meta['err']}")
    moved = inflow(tx, escrow)
    # The memo binds the transfer to its order, whoever signed it: checked before anything else
    # is said about the transfer, so a stranger learns nothing about another order's payment.
    if moved.memos != [reference]:
        raise PaymentRejected("memo_mismatch", "the transaction must carry exactly one memo: the payment reference")
    if payer is not None and payer not in moved.signers:
        raise PaymentRejected("buyer_not_signer", "the transaction was not signed by the payer's wallet")
    block_time = tx.get("blockTime")
    if block_time is None:
        raise ChainUnavailable("Solana RPC returned the transaction without its block time")
    transfer = VerifiedTransfer(
        tx_hash=signature,
        payer=moved.sender,
        amount=moved.received,
        block_time=int(block_time),
        final=is_final,
        source_account=moved.source_account,
        payer_signed=moved.sender_signed,
        signers=moved.signers,
    )
    if block_time < not_before:
        raise PaymentRejected("tx_too_old", "the transaction is older than the order", transfer=transfer)
    if moved.received < min_amount:
        raise PaymentRejected("underpaid", f"received {moved.received} base units, {min_amount} due", transfer=transfer)
    return transfer


def inbound_transfer(signature: str, tx: dict[str, Any] | None, escrow: Escrow) -> InboundTransfer:
    """What the escrow scan records of one finalized transaction on the escrow's USDC account: the
    transfer it received, or a zero transfer (failed, a payout, anything that did not raise it)."""
    nothing = InboundTransfer(signature, "", 0, (), 0, signature)
    if tx is None or tx.get("meta") is None or tx["meta"].get("err") is not None:
        return nothing
    try:
        moved = inflow(tx, escrow)
    except PaymentRejected:
        return nothing
    except SHAPE_ERRORS as exc:
        raise ChainUnavailable(f"Solana RPC answered an unexpected getTransaction shape: {exc!r}") from exc
    return InboundTransfer(
        signature,
        moved.sender,
        moved.received,
        tuple(moved.memos),
        int(tx.get("blockTime") or 0),
        signature,
        source_account=moved.source_account,
        sender_signed=moved.sender_signed,
        signers=moved.signers,
    )


def balance_after(tx: dict[str, Any], escrow: Escrow) -> int:
    """The escrow's USDC account balance once `tx` ran (0 when it holds no USDC entry)."""
    try:
        index = _account_keys(tx).index(escrow.token_account)
        after = [b for b in tx["meta"]["postTokenBalances"] if b["accountIndex"] == index and b["mint"] == escrow.mint]
    except (KeyError, TypeError, ValueError) as exc:
        raise ChainUnavailable(f"Solana RPC answered an unexpected getTransaction shape: {exc!r}") from exc
    return int(after[0]["uiTokenAmount"]["amount"]) if after else 0


def token_account(value: dict[str, Any]) -> TokenAccount:
    """A token account from a base64 getAccountInfo / getMultipleAccounts entry (its first 165 bytes)."""
    return TokenAccount.from_bytes(base64.b64decode(value["data"][0])[:TOKEN_ACCOUNT_SIZE])


def usdc_held(value: dict[str, Any] | None, mint: Pubkey, *, account: Pubkey, method: str) -> int:
    """The USDC base units in an account entry of `method`'s answer (None: no such account, 0);
    ChainUnavailable when the entry is garbage or not a USDC token account."""
    if value is None:
        return 0
    try:
        token = token_account(value)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ChainUnavailable(f"Solana RPC answered {method} with garbage: {exc!r}") from exc
    if value["owner"] != str(TOKEN_PROGRAM_ID) or token.mint != mint:
        raise ChainUnavailable(f"{account} is not a USDC token account")
    return token.amount
