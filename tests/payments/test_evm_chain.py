"""The Base client against a real EVM (eth-tester behind `devchain.evm` on loopback):
real signed transfers, each attack a transaction of its own, and a payout round trip."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from eth_account import Account

from devchain.evm import EvmDevchain
from payments import chains
from payments.chains import ChainUnavailable, PaymentPending, PaymentRejected, SignedTransfer
from payments.chains.evm import EvmClient
from tests.payments.evm_helpers import (
    Devchain,
    deploy_token,
    mine,
    mint,
    new_wallet,
    pay_order,
    point_settings,
    receipt,
    rpc,
    running_devchain,
    transfer_token,
)

PRICE = 25_000_000  # 25 USDC
CONFIRMATIONS = 2


@pytest.fixture(scope="module")
def dev() -> Iterator[Devchain]:
    with running_devchain() as chain:
        yield chain


@pytest.fixture
def base(settings: Any, dev: Devchain) -> EvmClient:
    point_settings(settings, dev, confirmations=CONFIRMATIONS)
    client = chains.client("base")
    assert isinstance(client, EvmClient)
    return client


@pytest.fixture
def buyer(dev: Devchain) -> Any:
    return new_wallet(dev.url, usdc=100 * 10**6)


def verify(base: EvmClient, tx_hash: str, buyer: str, **overrides: Any) -> chains.VerifiedTransfer:
    kwargs: dict[str, Any] = {
        "payer": buyer,
        "min_amount": PRICE,
        "reference": "ignored-on-evm",
        "not_before": int(time.time()) - 60,
    }
    return base.verify_payment(tx_hash, **(kwargs | overrides))


def rejected(base: EvmClient, tx_hash: str, buyer: str, **overrides: Any) -> str:
    with pytest.raises(PaymentRejected) as caught:
        verify(base, tx_hash, buyer, **overrides)
    return caught.value.code


# --- the devchain itself ----------------------------------------------------------------------


def test_devchain_reports_its_chain_and_keeps_addresses_across_restarts(dev: Devchain) -> None:
    state = dev.chain.state()
    assert int(rpc(dev.url, "eth_chainId"), 16) == state["chain_id"] == dev.chain.chain_id
    assert requests.get(dev.url, timeout=5).json()["usdc_address"] == state["usdc_address"]
    again = EvmDevchain(
        escrow_private_key=state["escrow_private_key"], deployer_private_key=state["deployer_private_key"]
    )
    assert again.state() == state


@pytest.mark.parametrize(
    "body", [{"address": "not-an-address", "usdc": 1}, {"usdc": 1}, [], {"address": "0x" + "11" * 20, "usdc": 2**256}]
)
def test_faucet_rejects_garbage(dev: Devchain, body: Any) -> None:
    reply = requests.post(f"{dev.url}/faucet", json=body, timeout=5)
    assert reply.status_code == 400


def test_rpc_errors_are_answered(dev: Devchain) -> None:
    reply = requests.post(dev.url, json={"jsonrpc": "2.0", "id": 7, "method": "evm_mine", "params": ["x"]}, timeout=5)
    assert reply.json()["error"]["code"] == -32602
    reply = requests.post(dev.url, json={"jsonrpc": "2.0", "id": 8, "method": "nope_nope", "params": []}, timeout=5)
    assert reply.json() == {
        "jsonrpc": "2.0",
        "id": 8,
        "error": {"code": -32601, "message": "Unknown RPC Endpoint: nope_nope"},
    }


# --- payments in ------------------------------------------------------------------------------


def test_instructions_name_the_escrow_and_the_token(base: EvmClient, dev: Devchain) -> None:
    instructions = base.payment_instructions()
    assert instructions.chain == "base"
    assert instructions.escrow_address == instructions.token_account == dev.chain.escrow.address
    assert instructions.token == dev.chain.usdc_address
    assert instructions.decimals == 6


def test_good_payment_is_pending_until_confirmed_then_verifies(base: EvmClient, dev: Devchain, buyer: Any) -> None:
    tx_hash = pay_order(dev.url, buyer, base.payment_instructions(), PRICE)
    with pytest.raises(PaymentPending):
        verify(base, tx_hash, buyer.address)  # mined: 1 of 2 confirmations
    mine(dev.url, 1)
    verified = verify(base, tx_hash.upper().replace("0X", "0x"), buyer.address.lower())
    assert verified.tx_hash == tx_hash
    assert verified.payer == buyer.address
    assert verified.amount == PRICE
    block = rpc(dev.url, "eth_getBlockByNumber", receipt(dev.url, tx_hash)["blockNumber"], False)  # type: ignore[index]
    assert verified.block_time == int(block["timestamp"], 16)
    assert base.token_balance(buyer.address) == 75 * 10**6


def test_overpayment_verifies_with_the_full_amount(base: EvmClient, dev: Devchain, buyer: Any) -> None:
    tx_hash = pay_order(dev.url, buyer, base.payment_instructions(), PRICE + 1)
    mine(dev.url, CONFIRMATIONS)
    assert verify(base, tx_hash, buyer.address).amount == PRICE + 1


def test_underpayment_is_rejected(base: EvmClient, dev: Devchain, buyer: Any) -> None:
    tx_hash = pay_order(dev.url, buyer, base.payment_instructions(), PRICE - 1)
    mine(dev.url, CONFIRMATIONS)
    assert rejected(base, tx_hash, buyer.address) == "underpaid"


def test_a_fake_token_with_the_same_name_symbol_and_decimals_is_rejected(
    base: EvmClient, dev: Devchain, buyer: Any
) -> None:
    fake = deploy_token(dev.url, buyer)
    mint(dev.url, buyer, fake, buyer.address, PRICE)
    tx_hash = transfer_token(dev.url, buyer, fake, base.escrow, PRICE)
    mine(dev.url, CONFIRMATIONS)
    assert rejected(base, tx_hash, buyer.address) == "wrong_token"


def test_usdc_sent_elsewhere_is_rejected(base: EvmClient, dev: Devchain, buyer: Any) -> None:
    tx_hash = transfer_token(dev.url, buyer, base.usdc, Account.create().address, PRICE)
    mine(dev.url, CONFIRMATIONS)
    assert rejected(base, tx_hash, buyer.address) == "not_to_escrow"


def test_someone_elses_payment_cannot_be_claimed(base: EvmClient, dev: Devchain, buyer: Any) -> None:
    victim = new_wallet(dev.url, usdc=PRICE)
    tx_hash = pay_order(dev.url, victim, base.payment_instructions(), PRICE)
    mine(dev.url, CONFIRMATIONS)
    assert rejected(base, tx_hash, buyer.address) == "buyer_not_sender"
    assert verify(base, tx_hash, victim.address).amount == PRICE  # it does pay the victim's own order


def test_a_reverted_transfer_is_rejected(base: EvmClient, dev: Devchain, buyer: Any) -> None:
    tx_hash = pay_order(dev.url, buyer, base.payment_instructions(), 10**12)  # more than the buyer holds
    assert receipt(dev.url, tx_hash)["status"] == "0x0"  # type: ignore[index]
    with pytest.raises(PaymentPending):
        verify(base, tx_hash, buyer.address)  # decided at finality only, like everything else
    mine(dev.url, CONFIRMATIONS)
    assert rejected(base, tx_hash, buyer.address) == "tx_failed"


def test_a_transaction_older_than_the_order_is_rejected(base: EvmClient, dev: Devchain, buyer: Any) -> None:
    tx_hash = pay_order(dev.url, buyer, base.payment_instructions(), PRICE)
    mine(dev.url, CONFIRMATIONS)
    block_time = verify(base, tx_hash, buyer.address).block_time
    assert rejected(base, tx_hash, buyer.address, not_before=block_time + 1) == "tx_too_old"


def test_a_node_on_another_chain_is_rejected(settings: Any, base: EvmClient, dev: Devchain, buyer: Any) -> None:
    tx_hash = pay_order(dev.url, buyer, base.payment_instructions(), PRICE)
    mine(dev.url, CONFIRMATIONS)
    settings.BASE_CHAIN_ID = 8453
    assert rejected(EvmClient.from_settings(), tx_hash, buyer.address) == "wrong_chain"


@pytest.mark.parametrize(
    "value",
    ["", "0x", "0x1234", "ab" * 32, "0x" + "ab" * 31, "0x" + "ab" * 33, "0x" + "zz" * 32, "0x" + "ab" * 31 + "a "],
)
def test_malformed_hashes_are_rejected(base: EvmClient, value: str) -> None:
    with pytest.raises(PaymentRejected) as caught:
        base.normalize_tx_hash(value)
    assert caught.value.code == "malformed_tx_hash"
    with pytest.raises(PaymentRejected) as caught:
        verify(base, value, Account.create().address)
    assert caught.value.code == "malformed_tx_hash"


def test_hashes_are_normalized_to_lowercase(base: EvmClient) -> None:
    assert base.normalize_tx_hash(" 0x" + "AB" * 32 + "\n") == "0x" + "ab" * 32


def test_an_unknown_hash_is_pending_not_rejected(base: EvmClient) -> None:
    with pytest.raises(PaymentPending):
        verify(base, "0x" + "12" * 32, Account.create().address)


def test_a_payment_reorged_out_goes_back_to_pending(base: EvmClient, dev: Devchain, buyer: Any) -> None:
    snapshot = rpc(dev.url, "evm_snapshot")
    tx_hash = pay_order(dev.url, buyer, base.payment_instructions(), PRICE)
    mine(dev.url, CONFIRMATIONS)
    assert verify(base, tx_hash, buyer.address).amount == PRICE
    rpc(dev.url, "evm_revert", snapshot)
    mine(dev.url, CONFIRMATIONS + 1)  # a longer chain without it
    with pytest.raises(PaymentPending):
        verify(base, tx_hash, buyer.address)


def test_an_unreachable_node_is_chain_unavailable(settings: Any, base: EvmClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends: nothing listens there
    settings.BASE_RPC_URL = f"http://127.0.0.1:{port}"
    down = EvmClient.from_settings()
    signed = SignedTransfer(tx_hash="0x" + "12" * 32, raw=b"\x02", valid_until=None, nonce=0)
    calls = [
        lambda: verify(down, "0x" + "12" * 32, Account.create().address),
        lambda: down.token_balance(Account.create().address),
        down.next_nonce,
        lambda: down.sign_transfer(to=Account.create().address, amount=1, memo=""),
        lambda: down.send_raw(signed.raw),
        lambda: down.transfer_status(signed),
    ]
    for call in calls:
        with pytest.raises(ChainUnavailable):
            call()


@contextmanager
def _node_answering(body: bytes) -> Iterator[str]:
    """A 'node' that answers every request with `body`."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "body", [b"<html>502 Bad Gateway</html>", b'{"jsonrpc": "2.0", "id": 0, "result": "0xzz"}', b"{}"]
)
def test_a_node_answering_garbage_is_chain_unavailable(settings: Any, base: EvmClient, body: bytes) -> None:
    with _node_answering(body) as url:
        settings.BASE_RPC_URL = url
        garbage = EvmClient.from_settings()
        with pytest.raises(ChainUnavailable):
            verify(garbage, "0x" + "12" * 32, Account.create().address)
        with pytest.raises(ChainUnavailable):
            garbage.token_balance(Account.create().address)


def test_an_unconfigured_client_is_chain_unavailable(settings: Any, base: EvmClient) -> None:
    settings.BASE_ESCROW_PRIVATE_KEY = ""
    with pytest.raises(ChainUnavailable):
        EvmClient.from_settings()
    settings.BASE_ESCROW_PRIVATE_KEY = "0x1234"
    with pytest.raises(ChainUnavailable):
        EvmClient.from_settings()


# --- payouts out ------------------------------------------------------------------------------


def test_payout_round_trip_pays_exactly_once(base: EvmClient, dev: Devchain) -> None:
    dev.chain.faucet(base.escrow, usdc=50 * 10**6)
    agent = Account.create().address
    escrow_before = base.token_balance(base.escrow)
    nonce = base.next_nonce()
    assert nonce is not None

    signed = base.sign_transfer(to=agent, amount=PRICE, memo="atelier:payout:ord_1", nonce=nonce)
    assert signed.nonce == nonce
    assert signed.valid_until is None
    assert signed.tx_hash == signed.tx_hash.lower()
    assert base.transfer_status(signed) == "pending"  # not sent yet

    base.send_raw(signed.raw)
    base.send_raw(signed.raw)  # a retry re-sends the same bytes: "already known", not an error
    assert base.transfer_status(signed) == "pending"  # 1 of 2 confirmations
    mine(dev.url, 1)
    base.send_raw(signed.raw)  # even once mined ("nonce too low" for our own transaction)
    assert base.transfer_status(signed) == "confirmed"

    assert base.token_balance(agent) == PRICE
    assert base.token_balance(base.escrow) == escrow_before - PRICE
    assert base.next_nonce() == nonce + 1


def test_a_payout_that_reverts_is_failed(base: EvmClient, dev: Devchain) -> None:
    too_much = base.token_balance(base.escrow) + 1
    signed = base.sign_transfer(to=Account.create().address, amount=too_much, memo="")
    base.send_raw(signed.raw)
    assert base.transfer_status(signed) == "pending"
    mine(dev.url, 1)
    assert base.transfer_status(signed) == "failed"


def test_a_payout_whose_nonce_went_to_another_transaction_is_failed(base: EvmClient, dev: Devchain) -> None:
    dev.chain.faucet(base.escrow, usdc=2)
    nonce = base.next_nonce()
    ours = base.sign_transfer(to=Account.create().address, amount=1, memo="", nonce=nonce)
    other = base.sign_transfer(to=Account.create().address, amount=2, memo="", nonce=nonce)
    base.send_raw(other.raw)
    assert base.transfer_status(ours) == "pending"  # the other one is not final yet
    mine(dev.url, 1)
    base.send_raw(ours.raw)  # "nonce too low": not an error, the status says what happened
    assert base.transfer_status(ours) == "failed"
    assert base.transfer_status(other) == "confirmed"


def test_signing_refuses_a_bad_destination_or_amount(base: EvmClient) -> None:
    with pytest.raises(PaymentRejected) as caught:
        base.sign_transfer(to="not-an-address", amount=1, memo="")
    assert caught.value.code == "invalid_address"
    with pytest.raises(PaymentRejected) as caught:
        base.sign_transfer(to=Account.create().address, amount=0, memo="")
    assert caught.value.code == "invalid_amount"
