"""Smart-account wallets on Base, over HTTP on the devchain (DESIGN.md section 5, "Real wallets").

An ERC-4337 account (Coinbase Smart Wallet and the like) is a contract: it signs in and proves a
payment through EIP-1271 (ERC-6492 before it is deployed), and its USDC leaves in a transaction a
bundler or relayer sends. The binding is the USDC Transfer log whose `from` is the proven buyer,
whoever sent the transaction; a log pays once, (chain, tx hash, log index).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from orders.checkout.escrow_scan import escrow_scan
from orders.models import Order, Status
from payments import chains, verification
from payments.chains.evm import EvmClient
from payments.models import WHOLE_TRANSACTION, Payment, PaymentStatus, WalletSession
from tests.conftest import Api, make_service
from tests.payments import evm_helpers
from tests.payments.test_order_kinds import requirements, x402_header
from tests.payments.test_order_payments import PRICE, PRICE_UNITS

pytestmark = pytest.mark.usefixtures("reconciled")


@dataclass
class SmartBuyer:
    owner: LocalAccount
    address: str  # the smart account's, the wallet that signs in and pays
    api: Api


def personal_sign(owner: LocalAccount, message: str) -> str:
    return "0x" + bytes(Account.sign_message(encode_defunct(text=message), owner.key).signature).hex()


def sign_in(address: str, sign: Any) -> Any:
    api = Api(Client())
    challenge = api.post("/api/auth/nonce", {"wallet": address, "chain": "base"})
    assert challenge.status_code == 201, challenge.body
    data = challenge.body["data"]
    return api.post("/api/auth/verify", {"nonce": data["nonce"], "signature": sign(data["message"])})


def smart_buyer(url: str, *, usdc: int = 100 * 10**6, signed_in: bool = True) -> SmartBuyer:
    """A deployed smart account holding USDC (and no ETH: a relayer pays its gas), signed in by
    its owner's key through EIP-1271."""
    owner = Account.create()
    address = evm_helpers.deploy_smart_account(url, owner)
    evm_helpers.fund(url, address, eth=0, usdc=usdc)
    api = Api(Client())
    if signed_in:
        response = sign_in(address, lambda message: personal_sign(owner, message))
        assert response.status_code == 201, response.body
        assert response.body["data"]["wallet"] == address
        api.headers["Authorization"] = f"Bearer {response.body['data']['token']}"
    return SmartBuyer(owner, address, api)


def order_for(api: Api, agent: Any) -> dict[str, Any]:
    service = make_service(agent.agent, price_type="fixed", price=str(PRICE))
    response = api.post(
        "/api/orders", {"service_id": service.id, "brief": "A mascot, three poses.", "payment_chain": "base"}
    )
    assert response.status_code == 201, response.body
    return response.body["data"]


def pay(api: Api, order: dict[str, Any], tx: str, **proof: str) -> Any:
    body = {"action": "pay", "escrow_tx_hash": tx, "payment_chain": "base", **proof}
    return api.patch(f"/api/orders/{order['id']}", body)


def escrow_and_token() -> tuple[str, str]:
    instructions = chains.client("base").payment_instructions()
    return instructions.escrow_address, instructions.token


@pytest.fixture
def url(chains_up: Any) -> str:
    return str(chains_up.evm.url)


@pytest.fixture
def bundler(url: str) -> tuple[LocalAccount, str]:
    """A bundler's EOA and the smart account it batches through."""
    key = evm_helpers.new_wallet(url)
    return key, evm_helpers.deploy_smart_account(url, key, deployer=key)


def test_a_smart_account_signs_in_by_eip1271_and_its_relayed_transfer_pays_its_order(url: str, agent: Any) -> None:
    buyer = smart_buyer(url)
    assert WalletSession.objects.filter(wallet=buyer.address, chain="base").exists()
    order = order_for(buyer.api, agent)
    relayer = evm_helpers.new_wallet(url)
    escrow, token = escrow_and_token()

    tx = evm_helpers.relay_transfer(url, relayer, buyer.address, buyer.owner, token, escrow, PRICE_UNITS)
    found = evm_helpers.receipt(url, tx)
    assert found is not None
    assert found["from"].lower() == relayer.address.lower()  # the buyer did not send it
    evm_helpers.mine(url, 2)

    paid = pay(buyer.api, order, tx)
    assert paid.status_code == 200, paid.body
    assert paid.body["data"]["status"] == "paid"
    payment = Payment.objects.get(order_id=order["id"], status=PaymentStatus.VERIFIED)
    assert (payment.payer, payment.amount_base_units, payment.tx_hash) == (buyer.address, PRICE_UNITS, tx)


def test_a_smart_account_pays_with_a_payer_proof_checked_by_eip1271(url: str, agent: Any, other_agent: Any) -> None:
    wallet = smart_buyer(url, signed_in=False)
    order = order_for(other_agent.api, agent)  # an agent buys, paying from a smart account
    escrow, token = escrow_and_token()
    tx = evm_helpers.relay_transfer(
        url, evm_helpers.new_wallet(url), wallet.address, wallet.owner, token, escrow, PRICE_UNITS
    )
    evm_helpers.mine(url, 2)
    proof = personal_sign(wallet.owner, f"atelier:pay:{order['payment_reference']}")

    # The owner key's own address sent nothing: without naming the account the proof binds nothing.
    refused = pay(other_agent.api, order, tx, payer_signature=proof)
    assert refused.status_code == 400, refused.body
    assert refused.body["code"] == "buyer_not_sender"
    # Another account's owner cannot vouch for this account.
    stranger = personal_sign(Account.create(), f"atelier:pay:{order['payment_reference']}")
    refused = pay(other_agent.api, order, tx, payer_signature=stranger, payer=wallet.address)
    assert refused.status_code == 400, refused.body
    assert refused.body["code"] == "invalid_payer_signature"

    paid = pay(other_agent.api, order, tx, payer_signature=proof, payer=wallet.address)
    assert paid.status_code == 200, paid.body
    assert paid.body["data"]["status"] == "paid"
    assert Payment.objects.get(order_id=order["id"]).payer == wallet.address


def two_buyers_in_one_bundle(url: str, agent: Any, bundler: tuple[LocalAccount, str]) -> tuple[Any, Any, str]:
    """Two smart-account buyers, an order each, and one relayed transaction carrying both their
    transfers into escrow, final: ((buyer, order), (buyer, order), tx hash)."""
    first, second = smart_buyer(url), smart_buyer(url)
    first_order, second_order = order_for(first.api, agent), order_for(second.api, agent)
    escrow, token = escrow_and_token()
    transfers = [(first.address, first.owner, PRICE_UNITS), (second.address, second.owner, PRICE_UNITS)]
    tx = evm_helpers.bundle_transfers(url, bundler[0], bundler[1], transfers, token, escrow)
    evm_helpers.mine(url, 2)
    return (first, first_order), (second, second_order), tx


def test_a_bundle_of_two_buyers_transfers_pays_each_order_once(
    url: str, agent: Any, bundler: tuple[LocalAccount, str]
) -> None:
    (first, first_order), (second, second_order), tx = two_buyers_in_one_bundle(url, agent, bundler)

    assert pay(first.api, first_order, tx).status_code == 200
    assert pay(second.api, second_order, tx).status_code == 200
    rows = Payment.objects.filter(tx_hash=tx, status=PaymentStatus.VERIFIED).order_by("log_index")
    assert [(row.order_id, row.payer) for row in rows] == [
        (first_order["id"], first.address),
        (second_order["id"], second.address),
    ]
    assert rows[0].log_index != rows[1].log_index

    # Each log pays once: the same transaction cannot pay the first buyer's next order too.
    again = order_for(first.api, agent)
    refused = pay(first.api, again, tx)
    assert refused.status_code == 409, refused.body
    assert refused.body["code"] == "tx_hash_used"
    assert pay(first.api, first_order, tx).status_code == 200  # the same claim again: a no-op
    assert Payment.objects.filter(tx_hash=tx).count() == 2


def test_a_log_from_someone_else_in_the_same_bundle_does_not_bind(
    url: str, agent: Any, base_buyer: Any, bundler: tuple[LocalAccount, str]
) -> None:
    victim, thief = smart_buyer(url), smart_buyer(url)
    victim_order, thief_order = order_for(victim.api, agent), order_for(thief.api, agent)
    escrow, token = escrow_and_token()
    # The thief rides in the victim's bundle with a token transfer of its own.
    transfers = [(thief.address, thief.owner, 10**6), (victim.address, victim.owner, PRICE_UNITS)]
    tx = evm_helpers.bundle_transfers(url, bundler[0], bundler[1], transfers, token, escrow)
    evm_helpers.mine(url, 2)

    # A signed-in buyer with no log in the transaction binds nothing.
    outsider = order_for(base_buyer.api, agent)
    refused = pay(base_buyer.api, outsider, tx)
    assert refused.status_code == 400, refused.body
    assert refused.body["code"] == "buyer_not_sender"
    # The thief's claim sees its own 1 USDC only: underpaid, recorded and returned to the thief.
    refused = pay(thief.api, thief_order, tx)
    assert refused.status_code == 400, refused.body
    assert refused.body["code"] == "underpaid"
    unapplied = Payment.objects.get(order_id=thief_order["id"], status=PaymentStatus.UNAPPLIED)
    assert (unapplied.payer, unapplied.amount_base_units) == (thief.address, 10**6)

    assert pay(victim.api, victim_order, tx).status_code == 200
    assert Order.objects.get(pk=victim_order["id"]).status == Status.PAID
    assert Order.objects.get(pk=thief_order["id"]).status == Status.QUOTED


def test_the_escrow_scan_applies_a_claimed_log_of_a_bundle_and_returns_the_unclaimed_one(
    url: str, agent: Any, settings: Any, bundler: tuple[LocalAccount, str]
) -> None:
    # No grace for a claim (eth-tester's block clock runs ahead of ours: well below zero).
    settings.UNCLAIMED_TRANSFER_GRACE_SECONDS = -3600
    claimed, silent = smart_buyer(url), smart_buyer(url)
    order = order_for(claimed.api, agent)
    escrow, token = escrow_and_token()
    transfers = [(silent.address, silent.owner, PRICE_UNITS), (claimed.address, claimed.owner, PRICE_UNITS)]
    tx = evm_helpers.bundle_transfers(url, bundler[0], bundler[1], transfers, token, escrow)
    assert pay(claimed.api, order, tx).status_code == 202  # not final yet: a claim waits

    evm_helpers.mine(url, 2)
    assert escrow_scan("base") == []
    assert Order.objects.get(pk=order["id"]).status == Status.PAID
    unapplied = Payment.objects.get(tx_hash=tx, status=PaymentStatus.UNAPPLIED)
    assert (unapplied.payer, unapplied.reason, unapplied.order_id) == (silent.address, "unclaimed", None)


def test_a_signature_by_another_key_does_not_sign_a_smart_account_in(url: str) -> None:
    owner = Account.create()
    address = evm_helpers.deploy_smart_account(url, owner)
    response = sign_in(address, lambda message: personal_sign(Account.create(), message))
    assert response.status_code == 401, response.body
    assert response.body["code"] == "invalid_signature"
    assert not WalletSession.objects.exists()


def test_an_undeployed_smart_account_signs_in_by_erc6492(url: str) -> None:
    deployer, owner = evm_helpers.new_wallet(url), Account.create()
    factory = evm_helpers.deploy_account_factory(url, deployer)
    salt = bytes(32)
    address = evm_helpers.counterfactual_account(url, factory, owner.address, salt)
    assert evm_helpers.rpc(url, "eth_getCode", address, "latest") in ("0x", "0x0")

    def sign(message: str) -> str:
        inner = bytes.fromhex(personal_sign(owner, message)[2:])
        return evm_helpers.wrap_erc6492(factory, evm_helpers.create_account_calldata(owner.address, salt), inner)

    response = sign_in(address, sign)
    assert response.status_code == 201, response.body
    assert response.body["data"]["wallet"] == address
    assert evm_helpers.rpc(url, "eth_getCode", address, "latest") in ("0x", "0x0")  # simulated, not deployed
    # Someone else's key wrapped the same way is refused.
    forged = sign_in(
        address,
        lambda message: evm_helpers.wrap_erc6492(
            factory,
            evm_helpers.create_account_calldata(owner.address, salt),
            bytes.fromhex(personal_sign(Account.create(), message)[2:]),
        ),
    )
    assert forged.status_code == 401, forged.body


def test_the_chain_being_down_during_a_contract_signature_check_is_a_503(url: str, settings: Any) -> None:
    owner = Account.create()
    address = evm_helpers.deploy_smart_account(url, owner)
    api = Api(Client())
    challenge = api.post("/api/auth/nonce", {"wallet": address, "chain": "base"}).body["data"]
    settings.BASE_RPC_URL = "http://127.0.0.1:9"
    response = api.post(
        "/api/auth/verify", {"nonce": challenge["nonce"], "signature": personal_sign(owner, challenge["message"])}
    )
    assert response.status_code == 503, response.body
    assert response.body["code"] == "chain_unavailable"
    assert not WalletSession.objects.exists()


def test_x402_on_base_is_paid_by_a_smart_account_through_a_relayer(url: str, agent: Any, anonymous: Any) -> None:
    wallet = smart_buyer(url, signed_in=False)
    service = make_service(agent.agent, price=str(PRICE))
    body = {"service_id": service.id, "brief": "A mascot, three poses."}
    accepted = requirements(anonymous.post("/api/orders", body), "eip155:")
    relayer = evm_helpers.new_wallet(url)
    tx = evm_helpers.relay_transfer(
        url, relayer, wallet.address, wallet.owner, accepted["asset"], accepted["payTo"], PRICE_UNITS
    )
    evm_helpers.mine(url, 2)
    proof = personal_sign(wallet.owner, f"atelier:x402:{accepted['extra']['reference']}")
    paid = anonymous.post("/api/orders", body, **{"X-PAYMENT": x402_header(accepted, tx, wallet.address, proof)})
    assert paid.status_code == 201, paid.body
    assert (paid.body["data"]["status"], paid.body["data"]["buyer_wallet"]) == ("paid", wallet.address)


# --- the on-chain check itself (payments.chains.evm.EvmClient.is_valid_signature) ---------------------


def test_is_valid_signature_answers_for_contracts_only_and_never_guesses(url: str) -> None:
    client = chains.client("base")
    assert isinstance(client, EvmClient)
    owner = Account.create()
    account = evm_helpers.deploy_smart_account(url, owner)
    message = "atelier:pay:atl-anything"
    good = bytes.fromhex(personal_sign(owner, message)[2:])
    assert client.is_valid_signature(account, message, good)
    assert not client.is_valid_signature(account, message + "!", good)  # another message
    assert not client.is_valid_signature(account, message, good[:64])  # truncated
    assert not client.is_valid_signature(owner.address, message, good)  # an EOA has no isValidSignature
    # A deployed account's ERC-6492 signature is checked without deploying again.
    deployer = evm_helpers.new_wallet(url)
    factory = evm_helpers.deploy_account_factory(url, deployer)
    wrapped = evm_helpers.wrap_erc6492(factory, b"\x00" * 4, good)
    assert client.is_valid_signature(account, message, bytes.fromhex(wrapped[2:]))
    # A suffix without a decodable wrapper, or a factory that deploys someone else's account, says no.
    assert not client.is_valid_signature(account, message, b"\x01" * 40 + evm_helpers.ERC6492_MAGIC)
    salt = b"\x07" * 32
    elsewhere = evm_helpers.counterfactual_account(url, factory, owner.address, salt)
    stranger = evm_helpers.create_account_calldata(Account.create().address, salt)
    forged = evm_helpers.wrap_erc6492(factory, stranger, good)
    assert not client.is_valid_signature(elsewhere, message, bytes.fromhex(forged[2:]))


def test_a_base_transaction_accounted_before_logs_bound_pays_nothing_else(
    url: str, agent: Any, bundler: tuple[LocalAccount, str]
) -> None:
    (first, first_order), (second, second_order), tx = two_buyers_in_one_bundle(url, agent, bundler)
    assert pay(first.api, first_order, tx).status_code == 200
    # As migration 0004 leaves a row recorded per transaction: its log unknown, the whole of it.
    Payment.objects.filter(tx_hash=tx).update(log_index=WHOLE_TRANSACTION)

    refused = pay(second.api, second_order, tx)
    assert refused.status_code == 409, refused.body
    assert refused.body["code"] == "tx_hash_used"
    assert Payment.objects.filter(tx_hash=tx).count() == 1
    for log_index in (0, 1, 7):  # the escrow scan finds every log of it accounted for
        assert verification.accounted("base", tx, log_index) is not None
    # Back to a per-log row, so the closing scan sees the second buyer's log as waiting for a claim.
    Payment.objects.filter(tx_hash=tx).update(log_index=0)
