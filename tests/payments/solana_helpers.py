"""Solana test helpers: a devchain on an ephemeral port, funded wallets, real signed payments.

Everything but `running_devchain` speaks HTTP to the devchain's URL, so the same helpers work
against `manage.py devchain`. A typical order-flow test:

    with running_devchain() as chain:
        use_devchain(settings, chain)
        buyer = new_wallet(chain.url, usdc=100_000_000)
        instructions = chains.client("solana").payment_instructions()
        signature = pay_order(chain.url, buyer, instructions, amount, order.payment_reference)
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message, MessageV0
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.transaction import Transaction, VersionedTransaction
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.memo.instructions import create_memo
from spl.memo.models import MemoParams
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    approve_checked,
    create_idempotent_associated_token_account,
    get_associated_token_address,
    initialize_account3,
    initialize_mint2,
    mint_to_checked,
    set_authority,
    transfer_checked,
)
from spl.token.models import (
    ApproveCheckedParams,
    AuthorityType,
    InitializeAccount3Params,
    InitializeMint2Params,
    MintToCheckedParams,
    SetAuthorityParams,
    TransferCheckedParams,
)

from devchain.solana import SolanaDevchain
from devchain.solana_http import SolanaRpcServer, serve_solana
from devchain.solana_rendering import b58encode
from payments.chains import PaymentInstructions

LAMPORTS_PER_SOL = 10**9
USDC = 10**6  # base units per USDC


class RpcFailure(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')} {error.get('message')}")
        self.error = error
        self.code = error.get("code")
        self.data = error.get("data")


@dataclass
class Devchain:
    url: str
    server: SolanaRpcServer
    chain: SolanaDevchain


@contextmanager
def running_devchain(**opts: Any) -> Iterator[Devchain]:
    """A devchain on 127.0.0.1 and an ephemeral port. No slot timer unless slot_seconds is given."""
    opts.setdefault("slot_seconds", None)
    server, thread, chain = serve_solana("127.0.0.1", 0, **opts)
    try:
        yield Devchain(server.url, server, chain)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def use_devchain(settings: Any, devchain: Devchain) -> None:
    """Point the app's Solana settings at `devchain` (pass pytest-django's `settings` fixture)."""
    state = devchain.chain.state()
    settings.SOLANA_RPC_URL = devchain.url
    settings.SOLANA_USDC_MINT = state["usdc_mint"]
    settings.SOLANA_ESCROW_SECRET = state["escrow_secret"]


# --- talking to the devchain ----------------------------------------------------------------------


def rpc_envelope(url: str, method: str, *params: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    response = requests.post(url, json=body, timeout=10)
    response.raise_for_status()
    envelope: dict[str, Any] = response.json()
    return envelope


def rpc(url: str, method: str, *params: Any) -> Any:
    """The `result` of a JSON-RPC call; RpcFailure on a JSON-RPC error."""
    envelope = rpc_envelope(url, method, *params)
    if "error" in envelope:
        raise RpcFailure(envelope["error"])
    return envelope["result"]


def _post(url: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(url.rstrip("/") + path, json=payload, timeout=10)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def fund_wallet(url: str, address: str | Pubkey, *, sol: int = LAMPORTS_PER_SOL, usdc: int = 0) -> dict[str, Any]:
    """The faucet: SOL in lamports, test USDC in base units (into the wallet's associated token account)."""
    return _post(url, "/faucet", {"address": str(address), "sol": sol, "usdc": usdc})


def receiving_wallet(url: str) -> str:
    """A fresh address with an empty USDC account, as any wallet that ever held USDC has: somewhere
    a payout can land without the escrow paying rent."""
    wallet = str(Keypair().pubkey())
    _post(url, "/faucet", {"address": wallet, "token_account": True})
    return wallet


def new_wallet(url: str, *, sol: int = LAMPORTS_PER_SOL, usdc: int = 100 * USDC) -> Keypair:
    wallet = Keypair()
    fund_wallet(url, wallet.pubkey(), sol=sol, usdc=usdc)
    return wallet


def advance(url: str, slots: int = 1) -> dict[str, Any]:
    """Produce empty blocks (moves finality along by `slots`, and block height towards blockhash expiry)."""
    return _post(url, "/devchain/advance", {"slots": slots})


def finalize(url: str) -> dict[str, Any]:
    return _post(url, "/devchain/finalize", {})


def latest_blockhash(url: str) -> Hash:
    return Hash.from_string(rpc(url, "getLatestBlockhash", {"commitment": "confirmed"})["value"]["blockhash"])


def send_instructions(
    url: str,
    payer: Keypair,
    instructions: Sequence[Instruction],
    *,
    signers: Sequence[Keypair] = (),
    legacy: bool = False,
    skip_preflight: bool = False,
) -> str:
    """Sign (payer first) and send; the signature. A legacy message goes as base58, v0 as base64."""
    blockhash = latest_blockhash(url)
    keypairs = [payer, *signers]
    raw: bytes
    if legacy:
        message = Message.new_with_blockhash(list(instructions), payer.pubkey(), blockhash)
        raw = bytes(Transaction(keypairs, message, blockhash))
        encoded, encoding = b58encode(raw), "base58"
    else:
        raw = bytes(VersionedTransaction(MessageV0.try_compile(payer.pubkey(), instructions, [], blockhash), keypairs))
        encoded, encoding = base64.b64encode(raw).decode(), "base64"
    signature: str = rpc(url, "sendTransaction", encoded, {"encoding": encoding, "skipPreflight": skip_preflight})
    return signature


# --- instructions ------------------------------------------------------------------------------------


def token_transfer(owner: Keypair, mint: Pubkey, destination: Pubkey, amount: int, *, decimals: int = 6) -> Instruction:
    """transferChecked from `owner`'s associated token account of `mint` to the token account `destination`."""
    params = TransferCheckedParams(
        program_id=TOKEN_PROGRAM_ID,
        source=get_associated_token_address(owner.pubkey(), mint),
        mint=mint,
        dest=destination,
        owner=owner.pubkey(),
        amount=amount,
        decimals=decimals,
        signers=[],
    )
    return transfer_checked(params)


def memo(signer: Keypair, text: str) -> Instruction:
    return create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=signer.pubkey(), message=text.encode()))


def pay_order(
    url: str,
    buyer: Keypair,
    instructions: PaymentInstructions,
    amount: int,
    reference: str | None,
    *,
    legacy: bool = False,
) -> str:
    """What a wallet does to pay an order: transferChecked of USDC into the escrow's token account,
    plus the order's payment reference as a memo (None: no memo). Returns the transaction signature."""
    mint = Pubkey.from_string(instructions.token)
    ixs = [token_transfer(buyer, mint, Pubkey.from_string(instructions.token_account), amount)]
    if reference is not None:
        ixs.append(memo(buyer, reference))
    return send_instructions(url, buyer, ixs, legacy=legacy)


def pay_through_pool(
    url: str, router: Keypair, pool: Keypair, instructions: PaymentInstructions, amount: int, reference: str
) -> str:
    """A swap route's shape: USDC leaves a pool's account whose owner never signs; the router (the
    fee payer, the only signer) moves it as the pool's delegate, with the memo. Returns the signature."""
    mint = Pubkey.from_string(instructions.token)
    pool_account = get_associated_token_address(pool.pubkey(), mint)
    approve = ApproveCheckedParams(
        program_id=TOKEN_PROGRAM_ID,
        source=pool_account,
        mint=mint,
        delegate=router.pubkey(),
        owner=pool.pubkey(),
        amount=amount,
        decimals=6,
        signers=[],
    )
    send_instructions(url, pool, [approve_checked(approve)])
    transfer = token_transfer(router, mint, Pubkey.from_string(instructions.token_account), amount)
    accounts = [AccountMeta(pool_account, is_signer=False, is_writable=True), *transfer.accounts[1:]]
    routed = Instruction(transfer.program_id, transfer.data, accounts)
    return send_instructions(url, router, [routed, memo(router, reference)])


def create_mint(url: str, authority: Keypair, *, decimals: int = 6) -> Pubkey:
    """A new SPL mint (e.g. a fake "USDC" with the same decimals), `authority` paying and minting."""
    mint = Keypair()
    rent = rpc(url, "getMinimumBalanceForRentExemption", 82)
    create = CreateAccountParams(
        from_pubkey=authority.pubkey(), to_pubkey=mint.pubkey(), lamports=rent, space=82, owner=TOKEN_PROGRAM_ID
    )
    init = InitializeMint2Params(
        decimals=decimals,
        program_id=TOKEN_PROGRAM_ID,
        mint=mint.pubkey(),
        mint_authority=authority.pubkey(),
        freeze_authority=None,
    )
    send_instructions(url, authority, [create_account(create), initialize_mint2(init)], signers=[mint])
    return mint.pubkey()


def mint_tokens(url: str, authority: Keypair, mint: Pubkey, owner: Pubkey, amount: int, *, decimals: int = 6) -> None:
    """Mint into `owner`'s associated token account of `mint`, creating it."""
    params = MintToCheckedParams(
        program_id=TOKEN_PROGRAM_ID,
        mint=mint,
        dest=get_associated_token_address(owner, mint),
        mint_authority=authority.pubkey(),
        amount=amount,
        decimals=decimals,
        signers=[],
    )
    ixs = [create_idempotent_associated_token_account(authority.pubkey(), owner, mint), mint_to_checked(params)]
    send_instructions(url, authority, ixs)


def funded_token_account(url: str, owner: Keypair, mint: Pubkey, amount: int) -> Pubkey:
    """A fresh, non-associated token account of `owner`, funded from `owner`'s associated one."""
    account = Keypair()
    rent = rpc(url, "getMinimumBalanceForRentExemption", 165)
    create = CreateAccountParams(
        from_pubkey=owner.pubkey(), to_pubkey=account.pubkey(), lamports=rent, space=165, owner=TOKEN_PROGRAM_ID
    )
    init = InitializeAccount3Params(
        program_id=TOKEN_PROGRAM_ID, account=account.pubkey(), mint=mint, owner=owner.pubkey()
    )
    ixs = [create_account(create), initialize_account3(init), token_transfer(owner, mint, account.pubkey(), amount)]
    send_instructions(url, owner, ixs, signers=[account])
    return account.pubkey()


def hand_over(account: Pubkey, owner: Keypair, new_owner: Pubkey) -> Instruction:
    """SetAuthority(AccountOwner): the token account and everything in it now belong to `new_owner`."""
    params = SetAuthorityParams(
        program_id=TOKEN_PROGRAM_ID,
        account=account,
        authority=AuthorityType.ACCOUNT_OWNER,
        current_authority=owner.pubkey(),
        new_authority=new_owner,
        signers=[],
    )
    return set_authority(params)


def block_time(url: str, signature: str) -> int:
    tx = rpc(
        url,
        "getTransaction",
        signature,
        {"encoding": "json", "commitment": "confirmed", "maxSupportedTransactionVersion": 0},
    )
    return int(tx["blockTime"])


def now() -> int:
    return int(time.time())


# --- Solana Pay, as a wallet does it ------------------------------------------------------------------


def pay_transfer_request(url: str, payer: Keypair, request_url: str) -> str:
    """What a Solana Pay wallet does with a transfer request URL (scanned from the QR code): the memo,
    then transferChecked of `amount` of `spl-token` to the recipient's associated token account with
    each `reference` as a read-only account. Returns the transaction signature."""
    parsed = urlsplit(request_url)
    assert parsed.scheme == "solana", request_url
    fields = parse_qs(parsed.query)
    recipient, mint = Pubkey.from_string(parsed.path), Pubkey.from_string(fields["spl-token"][0])
    amount = int(Decimal(fields["amount"][0]) * 10**6)
    transfer = token_transfer(payer, mint, get_associated_token_address(recipient, mint), amount)
    references = [
        AccountMeta(Pubkey.from_string(key), is_signer=False, is_writable=False) for key in fields["reference"]
    ]
    transfer = Instruction(transfer.program_id, transfer.data, [*transfer.accounts, *references])
    return send_instructions(url, payer, [memo(payer, fields["memo"][0]), transfer], legacy=True)


def sign_and_send(url: str, payer: Keypair, transaction_b64: str) -> str:
    """A wallet's answer to a transaction request: sign the server's transaction as it is and send it."""
    unsigned = Transaction.from_bytes(base64.b64decode(transaction_b64))
    message = unsigned.message
    assert message.account_keys[0] == payer.pubkey(), "the fee payer is the wallet's own account"
    signed = Transaction.populate(message, [payer.sign_message(bytes(message))])
    signature: str = rpc(url, "sendTransaction", base64.b64encode(bytes(signed)).decode(), {"encoding": "base64"})
    return signature
