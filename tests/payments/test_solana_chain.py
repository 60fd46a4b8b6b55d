"""SolanaClient against the LiteSVM devchain over HTTP: real signed transfers, every known attack,
finality, payouts, and the devchain answering like a real RPC (checked with solders' parsers)."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from solders.account import Account
from solders.address_lookup_table_account import ID as LOOKUP_TABLE_PROGRAM_ID
from solders.address_lookup_table_account import AddressLookupTableAccount, LookupTableMeta
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.rpc import responses as r
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    create_idempotent_associated_token_account,
    get_associated_token_address,
)
from spl.token.instructions import transfer as token_transfer_unchecked
from spl.token.models import TransferParams

from devchain.solana import SolanaDevchain
from payments import chains
from payments.chains import ChainUnavailable, PaymentPending, PaymentRejected, SignedTransfer
from payments.chains.solana import SolanaClient
from tests.payments.solana_helpers import (
    USDC,
    Devchain,
    RpcFailure,
    advance,
    block_time,
    create_mint,
    finalize,
    fund_wallet,
    funded_token_account,
    hand_over,
    latest_blockhash,
    memo,
    mint_tokens,
    new_wallet,
    now,
    pay_order,
    receiving_wallet,
    rpc,
    rpc_envelope,
    running_devchain,
    send_instructions,
    token_transfer,
    use_devchain,
)

PRICE = 25 * USDC
REF = "atl-pay-7f3a9c"


@pytest.fixture(scope="module")
def devchain() -> Iterator[Devchain]:
    with running_devchain() as chain:
        yield chain


@pytest.fixture
def client(devchain: Devchain, settings: Any) -> SolanaClient:
    use_devchain(settings, devchain)
    solana = chains.client("solana")
    assert isinstance(solana, SolanaClient)
    return solana


@pytest.fixture
def buyer(devchain: Devchain) -> Keypair:
    return new_wallet(devchain.url, usdc=100 * USDC)


def verify(
    client: chains.ChainClient, signature: str, buyer: Keypair | str, **overrides: Any
) -> chains.VerifiedTransfer:
    wallet = buyer if isinstance(buyer, str) else str(buyer.pubkey())
    args: dict[str, Any] = {"payer": wallet, "min_amount": PRICE, "reference": REF, "not_before": now() - 60}
    return client.verify_payment(signature, **(args | overrides))


def rejected(client: chains.ChainClient, signature: str, buyer: Keypair | str, **overrides: Any) -> str:
    with pytest.raises(PaymentRejected) as caught:
        verify(client, signature, buyer, **overrides)
    return caught.value.code


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- payments in ------------------------------------------------------------------------------------


def test_good_payment_verifies(client: SolanaClient, devchain: Devchain, buyer: Keypair) -> None:
    instructions = client.payment_instructions()
    assert instructions.token_account == str(get_associated_token_address(client.escrow_address, client.mint))
    escrow_before = client.token_balance(instructions.escrow_address)

    signature = pay_order(devchain.url, buyer, instructions, PRICE + 1, REF)

    result = verify(client, signature, buyer)
    assert (result.tx_hash, result.payer, result.amount) == (signature, str(buyer.pubkey()), PRICE + 1)
    assert abs(result.block_time - now()) < 60
    assert client.token_balance(instructions.escrow_address) == escrow_before + PRICE + 1
    assert client.token_balance(str(buyer.pubkey())) == 100 * USDC - PRICE - 1


def test_legacy_transaction_sent_base58_verifies(client: SolanaClient, devchain: Devchain, buyer: Keypair) -> None:
    signature = pay_order(devchain.url, buyer, client.payment_instructions(), PRICE, REF, legacy=True)
    assert verify(client, signature, buyer).amount == PRICE


def test_plain_token_transfer_pays_too(client: SolanaClient, devchain: Devchain, buyer: Keypair) -> None:
    """Transfer (not TransferChecked) names no mint; the escrow account's balances still show it."""
    params = TransferParams(
        program_id=TOKEN_PROGRAM_ID,
        source=get_associated_token_address(buyer.pubkey(), client.mint),
        dest=client.escrow_token_account,
        owner=buyer.pubkey(),
        amount=PRICE,
        signers=[],
    )
    signature = send_instructions(devchain.url, buyer, [token_transfer_unchecked(params), memo(buyer, REF)])
    tx = rpc(devchain.url, "getTransaction", signature, {"encoding": "jsonParsed", "maxSupportedTransactionVersion": 0})
    assert tx["transaction"]["message"]["instructions"][0]["parsed"]["type"] == "transfer"
    assert verify(client, signature, buyer).amount == PRICE


def test_escrow_account_loaded_from_a_lookup_table(client: SolanaClient, devchain: Devchain, buyer: Keypair) -> None:
    """v0 with an address lookup table: the escrow account is a loaded key, after the static ones."""
    addresses = [client.escrow_token_account, client.mint]
    table = Pubkey.new_unique()
    data = (
        (1).to_bytes(4, "little") + bytes(LookupTableMeta(authority=buyer.pubkey())) + b"".join(map(bytes, addresses))
    )
    with devchain.chain.lock:  # an existing table, as if created and extended earlier
        devchain.chain.svm.set_account(table, Account(10**7, data, LOOKUP_TABLE_PROGRAM_ID))
    ixs = [token_transfer(buyer, client.mint, client.escrow_token_account, PRICE), memo(buyer, REF)]
    lookups = [AddressLookupTableAccount(table, addresses)]
    message = MessageV0.try_compile(buyer.pubkey(), ixs, lookups, latest_blockhash(devchain.url))
    raw = base64.b64encode(bytes(VersionedTransaction(message, [buyer]))).decode()
    signature = rpc(devchain.url, "sendTransaction", raw, {"encoding": "base64"})
    tx = rpc(devchain.url, "getTransaction", signature, {"encoding": "jsonParsed", "maxSupportedTransactionVersion": 0})
    loaded = [key["pubkey"] for key in tx["transaction"]["message"]["accountKeys"] if key["source"] == "lookupTable"]
    assert loaded == [str(client.escrow_token_account), str(client.mint)]
    assert verify(client, signature, buyer).amount == PRICE


def test_underpayment(client: SolanaClient, devchain: Devchain, buyer: Keypair) -> None:
    signature = pay_order(devchain.url, buyer, client.payment_instructions(), PRICE - 1, REF)
    assert rejected(client, signature, buyer) == "underpaid"


def test_fake_usdc_with_the_same_decimals(client: SolanaClient, devchain: Devchain, buyer: Keypair) -> None:
    fake = create_mint(devchain.url, buyer, decimals=6)
    mint_tokens(devchain.url, buyer, fake, buyer.pubkey(), 1000 * USDC)
    escrow = client.escrow_address
    escrow_fake_account = get_associated_token_address(escrow, fake)
    ixs = [
        create_idempotent_associated_token_account(buyer.pubkey(), escrow, fake),
        token_transfer(buyer, fake, escrow_fake_account, PRICE),
        memo(buyer, REF),
    ]
    signature = send_instructions(devchain.url, buyer, ixs)
    assert rejected(client, signature, buyer) == "wrong_token"


def test_transfer_to_another_wallets_token_account(client: SolanaClient, devchain: Devchain, buyer: Keypair) -> None:
    thief = new_wallet(devchain.url, usdc=0)
    thief_account = get_associated_token_address(thief.pubkey(), client.mint)
    ixs = [
        create_idempotent_associated_token_account(buyer.pubkey(), thief.pubkey(), client.mint),
        token_transfer(buyer, client.mint, thief_account, PRICE),
        memo(buyer, REF),
    ]
    signature = send_instructions(devchain.url, buyer, ixs)
    assert rejected(client, signature, buyer) == "not_to_escrow"


def test_prefunded_token_account_handed_to_escrow_is_not_a_payment(
    client: SolanaClient, devchain: Devchain, buyer: Keypair
) -> None:
    """SetAuthority(AccountOwner -> escrow) on a funded account: by owner, the escrow "gained" 25 USDC."""
    account = funded_token_account(devchain.url, buyer, client.mint, PRICE)
    handover = [hand_over(account, buyer, client.escrow_address), memo(buyer, REF)]
    signature = send_instructions(devchain.url, buyer, handover)
    tx = rpc(devchain.url, "getTransaction", signature, {"encoding": "jsonParsed", "maxSupportedTransactionVersion": 0})
    escrow_owned = [b for b in tx["meta"]["postTokenBalances"] if b["owner"] == str(client.escrow_address)]
    assert [b["uiTokenAmount"]["amount"] for b in escrow_owned] == [str(PRICE)]  # the trap is real
    assert rejected(client, signature, buyer) == "not_to_escrow"

    # With one base unit into the escrow's own account on top, only that unit counts.
    account = funded_token_account(devchain.url, buyer, client.mint, PRICE)
    dust = token_transfer(buyer, client.mint, client.escrow_token_account, 1)
    signature = send_instructions(
        devchain.url, buyer, [hand_over(account, buyer, client.escrow_address), dust, memo(buyer, REF)]
    )
    assert rejected(client, signature, buyer) == "underpaid"


def test_someone_elses_transaction(client: SolanaClient, devchain: Devchain, buyer: Keypair) -> None:
    signature = pay_order(devchain.url, buyer, client.payment_instructions(), PRICE, REF)
    claimant = str(Keypair().pubkey())
    assert rejected(client, signature, claimant) == "buyer_not_signer"


def test_failed_transaction(client: SolanaClient, devchain: Devchain, buyer: Keypair) -> None:
    too_much = [token_transfer(buyer, client.mint, client.escrow_token_account, 1000 * USDC), memo(buyer, REF)]
    # With preflight (what wallets do) the node refuses it and nothing lands.
    with pytest.raises(RpcFailure) as refused:
        send_instructions(devchain.url, buyer, too_much)
    assert refused.value.code == -32002
    assert refused.value.data is not None
    assert refused.value.data["err"] == {"InstructionError": [0, {"Custom": 1}]}
    # Without preflight it lands, pays its fee, and fails.
    signature = send_instructions(devchain.url, buyer, too_much, skip_preflight=True)
    assert rejected(client, signature, buyer) == "tx_failed"


@pytest.mark.parametrize(
    "memos",
    [[], ["atl-pay-other"], [REF, "atl-pay-other"], [REF, REF], [REF.upper()]],
    ids=["missing", "wrong", "extra", "twice", "case"],
)
def test_memo_must_be_exactly_the_reference(
    client: SolanaClient, devchain: Devchain, buyer: Keypair, memos: list[str]
) -> None:
    ixs = [token_transfer(buyer, client.mint, client.escrow_token_account, PRICE)]
    ixs += [memo(buyer, text) for text in memos]
    signature = send_instructions(devchain.url, buyer, ixs)
    assert rejected(client, signature, buyer) == "memo_mismatch"


def test_transaction_older_than_the_order(client: SolanaClient, devchain: Devchain, buyer: Keypair) -> None:
    signature = pay_order(devchain.url, buyer, client.payment_instructions(), PRICE, REF)
    landed = block_time(devchain.url, signature)
    assert verify(client, signature, buyer, not_before=landed).amount == PRICE
    assert rejected(client, signature, buyer, not_before=landed + 1) == "tx_too_old"


def test_hash_is_kept_as_given(client: SolanaClient) -> None:
    signature = str(Keypair().sign_message(b"x"))
    assert client.normalize_tx_hash(signature) == signature
    assert client.normalize_tx_hash(f" {signature}\n") == signature


@pytest.mark.parametrize(
    "value",
    [
        "",
        "abc",
        "0x" + "ab" * 32,
        str(Pubkey.new_unique()),  # 32 bytes: an address, not a signature
        str(Signature.default()),
        "1" + str(Keypair().sign_message(b"x")),  # a non-canonical leading zero
        str(Keypair().sign_message(b"x"))[:-1] + "0",  # not base58
    ],
    ids=["empty", "short", "evm", "address", "zero", "leading-one", "alphabet"],
)
def test_malformed_hash(client: SolanaClient, value: str) -> None:
    with pytest.raises(PaymentRejected) as caught:
        client.normalize_tx_hash(value)
    assert caught.value.code == "malformed_tx_hash"
    with pytest.raises(PaymentRejected) as caught:
        verify(client, value, Keypair())
    assert caught.value.code == "malformed_tx_hash"


def test_unknown_hash_is_pending(client: SolanaClient, buyer: Keypair) -> None:
    with pytest.raises(PaymentPending, match="not on chain"):
        verify(client, str(Keypair().sign_message(b"never sent")), buyer)


def test_not_yet_finalized_is_pending(settings: Any) -> None:
    with running_devchain(finality_lag=3) as slow:
        use_devchain(settings, slow)
        client = chains.client("solana")
        buyer = new_wallet(slow.url)
        signature = pay_order(slow.url, buyer, client.payment_instructions(), PRICE, REF)
        with pytest.raises(PaymentPending, match="not finalized"):
            verify(client, signature, buyer)
        advance(slow.url, 2)
        with pytest.raises(PaymentPending):
            verify(client, signature, buyer)
        advance(slow.url, 1)
        assert verify(client, signature, buyer).amount == PRICE


OPERATIONS: dict[str, Callable[[chains.ChainClient], object]] = {
    "verify_payment": lambda c: verify(c, str(Keypair().sign_message(b"x")), Keypair()),
    "token_balance": lambda c: c.token_balance(str(Keypair().pubkey())),
    "sign_transfer": lambda c: c.sign_transfer(to=str(Keypair().pubkey()), amount=1, memo="m"),
    "send_raw": lambda c: c.send_raw(b"\x01" * 100),
    "transfer_status": lambda c: c.transfer_status(SignedTransfer("x", b"", 10)),
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_rpc_unreachable(client: SolanaClient, settings: Any, operation: str) -> None:
    settings.SOLANA_RPC_URL = closed_port_url()
    offline = chains.client("solana")
    assert offline.payment_instructions() == client.payment_instructions()  # no network needed
    with pytest.raises(ChainUnavailable):
        OPERATIONS[operation](offline)


class _Garbage(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/slow":
            time.sleep(0.5)  # the client gives up after 0.2 s
        status, body = {
            "/500": (500, b"oops"),
            "/html": (200, b"<html>"),
            "/error": (200, b'{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"Node is behind"}}'),
            "/list": (200, b"[1, 2]"),
            "/slow": (200, b"{}"),
            "/shape": (200, b'{"jsonrpc":"2.0","id":1,"result":{"meta":{"err":null},"transaction":{}}}'),
        }[self.path]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def garbage_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("path", ["/500", "/html", "/error", "/list", "/shape", "/slow"])
def test_rpc_answering_garbage_or_too_late(client: SolanaClient, settings: Any, garbage_url: str, path: str) -> None:
    settings.SOLANA_RPC_URL = garbage_url + path
    settings.CHAIN_RPC_TIMEOUT_SECONDS = 0.2
    with pytest.raises(ChainUnavailable):
        OPERATIONS["verify_payment"](chains.client("solana"))


def test_missing_configuration_is_unavailable(settings: Any, tmp_path: Any) -> None:
    settings.SOLANA_USDC_MINT = settings.SOLANA_ESCROW_SECRET = ""
    settings.DEVCHAIN_STATE = tmp_path / "absent.json"
    with pytest.raises(ChainUnavailable):
        chains.client("solana")


def test_configuration_from_the_devchain_state_file(settings: Any, tmp_path: Any, devchain: Devchain) -> None:
    state_file = tmp_path / "devchain.json"
    state_file.write_text(json.dumps({"solana": devchain.chain.state()}))
    settings.CHAIN_MODE, settings.DEVCHAIN_STATE, settings.SOLANA_RPC_URL = "local", state_file, devchain.url
    settings.SOLANA_USDC_MINT = settings.SOLANA_ESCROW_SECRET = ""
    instructions = chains.client("solana").payment_instructions()
    assert instructions.token == str(devchain.chain.usdc_mint)
    assert instructions.escrow_address == str(devchain.chain.escrow.pubkey())


# --- payouts --------------------------------------------------------------------------------------


def test_payout_round_trip(client: SolanaClient, devchain: Devchain) -> None:
    fund_wallet(devchain.url, client.escrow_address, sol=0, usdc=50 * USDC)
    escrow = str(client.escrow_address)
    escrow_before = client.token_balance(escrow)
    agent = receiving_wallet(devchain.url)  # no SOL, an empty USDC account
    assert client.token_balance(agent) == 0

    signed = client.sign_transfer(to=agent, amount=22_500_000, memo="atelier:payout:42")
    assert client.transfer_status(signed) == "pending"  # signed, not sent, blockhash still valid
    client.send_raw(signed.raw)
    client.send_raw(signed.raw)  # a retry after a crash: the same bytes, harmless

    assert client.transfer_status(signed) == "confirmed"
    assert client.token_balance(agent) == 22_500_000
    assert client.token_balance(escrow) == escrow_before - 22_500_000  # paid once
    tx = rpc(
        devchain.url, "getTransaction", signed.tx_hash, {"encoding": "jsonParsed", "maxSupportedTransactionVersion": 0}
    )
    kinds = [
        ix.get("parsed", {}).get("type") if ix["program"] != "spl-memo" else ix["parsed"]
        for ix in tx["transaction"]["message"]["instructions"]
    ]
    assert kinds == ["transferChecked", "atelier:payout:42"]  # no account created: no rent


def test_a_payout_to_a_wallet_with_no_usdc_account_is_not_signed(client: SolanaClient, devchain: Devchain) -> None:
    """Creating the account would cost the escrow ~0.002 SOL of rent, which its owner can take back by
    closing it: nothing is signed, and the caller holds the transfer."""
    fund_wallet(devchain.url, client.escrow_address, sol=0, usdc=5 * USDC)
    with pytest.raises(chains.NoDestination):
        client.sign_transfer(to=str(Keypair().pubkey()), amount=USDC, memo="atelier:payout:46")


def test_a_return_goes_into_the_account_it_came_from_while_it_is_open(client: SolanaClient, devchain: Devchain) -> None:
    """A non-associated source account is preferred; once it is not the owner's, the owner's
    associated account is used; with neither, NoDestination."""
    fund_wallet(devchain.url, client.escrow_address, sol=0, usdc=5 * USDC)
    owner = new_wallet(devchain.url, usdc=2 * USDC)
    side = funded_token_account(devchain.url, owner, client.mint, USDC)
    assert client.destination(str(owner.pubkey()), str(side)) == side
    stranger = Keypair()
    send_instructions(devchain.url, owner, [hand_over(side, owner, stranger.pubkey())])
    associated = get_associated_token_address(owner.pubkey(), client.mint)
    assert client.destination(str(owner.pubkey()), str(side)) == associated
    assert client.destination(str(stranger.pubkey())) is None  # its account is not its associated one


def test_unsent_payout_expires_with_its_blockhash(client: SolanaClient, devchain: Devchain) -> None:
    signed = client.sign_transfer(to=receiving_wallet(devchain.url), amount=1, memo="atelier:payout:43")
    assert signed.valid_until is not None
    height = rpc(devchain.url, "getBlockHeight", {"commitment": "finalized"})
    advance(devchain.url, signed.valid_until - height)
    assert client.transfer_status(signed) == "pending"  # at valid_until it could still land
    advance(devchain.url, 1)
    assert client.transfer_status(signed) == "expired"
    client.send_raw(signed.raw)  # too late: refused by the chain, not an error for the sender
    assert client.transfer_status(signed) == "expired"


def test_payout_that_fails_on_chain(client: SolanaClient, devchain: Devchain) -> None:
    too_much = client.token_balance(str(client.escrow_address)) + 1
    signed = client.sign_transfer(to=receiving_wallet(devchain.url), amount=too_much, memo="atelier:payout:44")
    client.send_raw(signed.raw)
    assert client.transfer_status(signed) == "failed"


def test_payout_is_pending_until_final(settings: Any) -> None:
    with running_devchain(finality_lag=2) as slow:
        use_devchain(settings, slow)
        client = chains.client("solana")
        fund_wallet(slow.url, client.payment_instructions().escrow_address, sol=0, usdc=5 * USDC)
        signed = client.sign_transfer(to=receiving_wallet(slow.url), amount=USDC, memo="atelier:payout:45")
        client.send_raw(signed.raw)
        assert client.transfer_status(signed) == "pending"
        finalize(slow.url)
        assert client.transfer_status(signed) == "confirmed"


# --- the devchain as an RPC ---------------------------------------------------------------------------


def parsed(kind: Any, envelope: dict[str, Any]) -> Any:
    value = kind.from_json(json.dumps(envelope))
    assert isinstance(value, kind), (kind, envelope)
    return value


def test_devchain_answers_in_the_rpc_shapes(client: SolanaClient, devchain: Devchain, buyer: Keypair) -> None:
    """solders' own response types (what solana-py parses with) accept every answer."""
    url = devchain.url
    signature = pay_order(url, buyer, client.payment_instructions(), PRICE, REF)
    wallet, account = str(buyer.pubkey()), str(get_associated_token_address(buyer.pubkey(), client.mint))

    blockhash = parsed(r.GetLatestBlockhashResp, rpc_envelope(url, "getLatestBlockhash", {"commitment": "finalized"}))
    assert blockhash.value.last_valid_block_height == blockhash.context.slot + 150
    for encoding in ("jsonParsed", "json", "base64"):
        config = {"encoding": encoding, "commitment": "finalized", "maxSupportedTransactionVersion": 0}
        tx = parsed(r.GetTransactionResp, rpc_envelope(url, "getTransaction", signature, config))
        assert tx.value.transaction.meta.err is None
    statuses = parsed(
        r.GetSignatureStatusesResp, rpc_envelope(url, "getSignatureStatuses", [signature, str(Signature.default())])
    )
    assert statuses.value[0].confirmation_status is not None
    assert statuses.value[1] is None
    assert parsed(r.GetBalanceResp, rpc_envelope(url, "getBalance", wallet)).value > 0
    balance = parsed(r.GetTokenAccountBalanceResp, rpc_envelope(url, "getTokenAccountBalance", account))
    assert balance.value.amount == str(100 * USDC - PRICE)
    assert balance.value.decimals == 6
    info = parsed(r.GetAccountInfoResp, rpc_envelope(url, "getAccountInfo", account, {"encoding": "base64"}))
    assert info.value.owner == TOKEN_PROGRAM_ID
    assert len(info.value.data) == 165
    assert (
        parsed(
            r.GetAccountInfoResp, rpc_envelope(url, "getAccountInfo", str(Keypair().pubkey()), {"encoding": "base64"})
        ).value
        is None
    )
    airdrop = parsed(r.RequestAirdropResp, rpc_envelope(url, "requestAirdrop", str(Keypair().pubkey()), 10**9))
    assert rpc(url, "getSignatureStatuses", [str(airdrop.value)])["value"][0]["err"] is None
    assert (
        parsed(
            r.GetMinimumBalanceForRentExemptionResp, rpc_envelope(url, "getMinimumBalanceForRentExemption", 165)
        ).value
        == 2039280
    )
    assert parsed(r.GetBlockHeightResp, rpc_envelope(url, "getBlockHeight")).value > 0
    assert parsed(r.GetSlotResp, rpc_envelope(url, "getSlot", {"commitment": "confirmed"})).value > 0
    assert parsed(r.IsBlockhashValidResp, rpc_envelope(url, "isBlockhashValid", str(blockhash.value.blockhash))).value
    message = MessageV0.try_compile(buyer.pubkey(), [memo(buyer, "x")], [], latest_blockhash(url))
    fee = parsed(
        r.GetFeeForMessageResp, rpc_envelope(url, "getFeeForMessage", base64.b64encode(bytes(message)).decode())
    )
    assert fee.value == 5000
    parsed(r.GetVersionResp, rpc_envelope(url, "getVersion"))
    parsed(r.GetGenesisHashResp, rpc_envelope(url, "getGenesisHash"))


def test_devchain_parses_payment_instructions(client: SolanaClient, devchain: Devchain, buyer: Keypair) -> None:
    signature = pay_order(devchain.url, buyer, client.payment_instructions(), PRICE, REF)
    tx = rpc(devchain.url, "getTransaction", signature, {"encoding": "jsonParsed", "maxSupportedTransactionVersion": 0})
    keys = tx["transaction"]["message"]["accountKeys"]
    assert keys[0] == {"pubkey": str(buyer.pubkey()), "signer": True, "writable": True, "source": "transaction"}
    transfer, note = tx["transaction"]["message"]["instructions"]
    assert transfer["program"] == "spl-token"
    assert transfer["parsed"]["type"] == "transferChecked"
    assert transfer["parsed"]["info"]["destination"] == str(client.escrow_token_account)
    assert transfer["parsed"]["info"]["tokenAmount"]["uiAmountString"] == "25"
    assert note == {"program": "spl-memo", "programId": note["programId"], "parsed": REF, "stackHeight": None}
    assert tx["version"] == 0
    assert tx["meta"]["fee"] == 5000


def test_devchain_rejects_what_a_node_rejects(client: SolanaClient, devchain: Devchain, buyer: Keypair) -> None:
    url = devchain.url
    signature = pay_order(url, buyer, client.payment_instructions(), PRICE, REF)
    assert rpc_envelope(url, "getTransaction", signature, {"encoding": "jsonParsed"})["error"]["code"] == -32015
    assert rpc_envelope(url, "getTransaction", signature, {"commitment": "processed"})["error"]["code"] == -32602
    assert rpc_envelope(url, "getBalance", "not-a-key")["error"]["code"] == -32602
    assert rpc_envelope(url, "getTokenAccountBalance", str(Keypair().pubkey()))["error"]["code"] == -32602
    assert rpc_envelope(url, "noSuchMethod")["error"]["code"] == -32601
    assert rpc_envelope(url, "sendTransaction", "!!!", {"encoding": "base64"})["error"]["code"] == -32602

    # A tampered signature, an unknown blockhash, the same bytes twice.
    message = MessageV0.try_compile(buyer.pubkey(), [memo(buyer, "x")], [], latest_blockhash(url))
    forged = VersionedTransaction.populate(message, [Keypair().sign_message(bytes(message))])
    sent = rpc_envelope(url, "sendTransaction", base64.b64encode(bytes(forged)).decode(), {"encoding": "base64"})
    assert sent["error"]["code"] == -32003
    stale = VersionedTransaction(
        MessageV0.try_compile(buyer.pubkey(), [memo(buyer, "y")], [], Hash.new_unique()), [buyer]
    )
    sent = rpc_envelope(
        url, "sendTransaction", base64.b64encode(bytes(stale)).decode(), {"encoding": "base64", "skipPreflight": True}
    )
    assert sent["error"]["data"]["err"] == "BlockhashNotFound"
    good = VersionedTransaction(
        MessageV0.try_compile(buyer.pubkey(), [memo(buyer, "z")], [], latest_blockhash(url)), [buyer]
    )
    raw = base64.b64encode(bytes(good)).decode()
    assert rpc(url, "sendTransaction", raw, {"encoding": "base64"}) == str(good.signatures[0])
    assert (
        rpc_envelope(url, "sendTransaction", raw, {"encoding": "base64"})["error"]["data"]["err"] == "AlreadyProcessed"
    )

    batch = [{"jsonrpc": "2.0", "id": i, "method": "getSlot"} for i in (1, 2)]
    assert [item["id"] for item in requests.post(url, json=batch, timeout=5).json()] == [1, 2]
    assert requests.post(url, data=b"{", timeout=5).json()["error"]["code"] == -32700


def test_devchain_restart_keeps_addresses_and_the_timer_makes_slots(devchain: Devchain) -> None:
    state = devchain.chain.state()
    again = SolanaDevchain(
        usdc_mint=state["usdc_mint"],
        escrow_secret=state["escrow_secret"],
        mint_authority_secret=state["mint_authority_secret"],
        slot_seconds=0.02,
    )
    try:
        assert again.state() == state
        assert again.escrow_token_account == devchain.chain.escrow_token_account
        start = again.info()["slot"]
        deadline = time.monotonic() + 5
        while again.info()["slot"] < start + 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert again.info()["slot"] >= start + 3
    finally:
        again.close()
