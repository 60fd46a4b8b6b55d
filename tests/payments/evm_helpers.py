"""Paying on the local EVM devchain from tests, the way a buyer's wallet would: real keys, real
signed EIP-1559 transactions, sent as raw bytes over JSON-RPC.

    with running_devchain() as dev:
        point_settings(settings, dev)             # pytest-django's `settings` fixture
        buyer = new_wallet(dev.url, usdc=100_000_000)
        tx_hash = pay_order(dev.url, buyer, chains.client("base").payment_instructions(), 25_000_000)
        mine(dev.url, 2)
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import Hash32
from eth_utils import keccak, to_checksum_address

from devchain.evm import ARTIFACT, EvmDevchain, serve_evm
from payments.chains import PaymentInstructions

TRANSFER_SELECTOR = keccak(text="transfer(address,uint256)")[:4]
GAS = 100_000


@dataclass(frozen=True)
class Devchain:
    url: str
    chain: EvmDevchain


@contextmanager
def running_devchain(**keys: str) -> Iterator[Devchain]:
    """An EVM devchain on an ephemeral loopback port for the duration of the block."""
    server, thread, chain = serve_evm("127.0.0.1", 0, **keys)
    try:
        yield Devchain(url=server.url, chain=chain)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def point_settings(settings: Any, dev: Devchain, *, confirmations: int = 2) -> None:
    """Point the Base client at `dev`, as an operator would in rpc mode (no state file)."""
    settings.CHAIN_MODE = "rpc"
    settings.BASE_RPC_URL = dev.url
    settings.BASE_USDC_ADDRESS = dev.chain.usdc_address
    settings.BASE_ESCROW_PRIVATE_KEY = dev.chain.state()["escrow_private_key"]
    settings.BASE_CHAIN_ID = dev.chain.chain_id
    settings.BASE_CONFIRMATIONS = confirmations
    settings.CHAIN_RPC_TIMEOUT_SECONDS = 5.0


def rpc(url: str, method: str, *params: Any) -> Any:
    body = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}, timeout=10)
    reply = body.json()
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']['message']}")
    return reply["result"]


def mine(url: str, blocks: int = 1) -> None:
    rpc(url, "evm_mine", blocks)


def fund(url: str, address: str, *, eth: int = 10**18, usdc: int = 0) -> None:
    """Test ETH (for gas) and test USDC from the devchain's faucet."""
    reply = requests.post(f"{url}/faucet", json={"address": address, "eth": eth, "usdc": usdc}, timeout=10)
    reply.raise_for_status()


def new_wallet(url: str, *, usdc: int = 0, eth: int = 10**18) -> LocalAccount:
    account: LocalAccount = Account.create()
    fund(url, account.address, eth=eth, usdc=usdc)
    return account


def send_tx(
    url: str, account: LocalAccount, *, to: str | None, data: bytes, gas: int = GAS, nonce: int | None = None
) -> str:
    """Sign and send an EIP-1559 transaction with an explicit gas limit (so a reverting one still
    lands and fails on-chain). Returns the lowercase hash; eth-tester mines it at once."""
    raw, _tx_hash = sign_tx(url, account, to=to, data=data, gas=gas, nonce=nonce)
    return send_raw(url, raw)


def send_raw(url: str, raw: bytes) -> str:
    sent: str = rpc(url, "eth_sendRawTransaction", "0x" + raw.hex())
    return sent.lower()


def sign_tx(
    url: str, account: LocalAccount, *, to: str | None, data: bytes, gas: int = GAS, nonce: int | None = None
) -> tuple[bytes, str]:
    """A signed EIP-1559 transaction, not sent: its raw bytes and its (lowercase) hash, which anyone
    watching a mempool learns before the transaction is mined."""
    chain_id = int(rpc(url, "eth_chainId"), 16)
    if nonce is None:
        nonce = int(rpc(url, "eth_getTransactionCount", account.address, "pending"), 16)
    base_fee = int(rpc(url, "eth_getBlockByNumber", "latest", False)["baseFeePerGas"], 16)
    tx: dict[str, Any] = {
        "type": 2,
        "chainId": chain_id,
        "nonce": nonce,
        "value": 0,
        "gas": gas,
        "maxPriorityFeePerGas": 10**9,
        "maxFeePerGas": 2 * base_fee + 10**9,
        "data": data,
    }
    if to is not None:
        tx["to"] = to_checksum_address(to)
    signed = account.sign_transaction(tx)
    return bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()


def transfer_token(url: str, account: LocalAccount, token: str, to: str, amount: int, **kwargs: Any) -> str:
    data = TRANSFER_SELECTOR + abi_encode(["address", "uint256"], [to_checksum_address(to), amount])
    return send_tx(url, account, to=token, data=data, **kwargs)


def pay_order(url: str, buyer: LocalAccount, instructions: PaymentInstructions | Mapping[str, Any], amount: int) -> str:
    """Send `amount` USDC base units from `buyer` to the escrow, as the order's payment
    instructions say (the client's dataclass or the API's JSON). Returns the tx hash."""
    if isinstance(instructions, PaymentInstructions):
        token, escrow = instructions.token, instructions.escrow_address
    else:
        token, escrow = instructions["token"], instructions["escrow_address"]
    return transfer_token(url, buyer, token, escrow, amount)


def sign_payment(url: str, buyer: LocalAccount, instructions: Mapping[str, Any], amount: int) -> tuple[bytes, str]:
    """The buyer's payment signed but not sent: (raw bytes, hash)."""
    data = TRANSFER_SELECTOR + abi_encode(
        ["address", "uint256"], [to_checksum_address(instructions["escrow_address"]), amount]
    )
    return sign_tx(url, buyer, to=instructions["token"], data=data)


def receipt(url: str, tx_hash: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = rpc(url, "eth_getTransactionReceipt", tx_hash)
    return found


def deploy_token(url: str, account: LocalAccount) -> str:
    """Another 'USD Coin' / 'USDC' / 6 decimals contract, minted by `account`: a fake USDC."""
    artifact = json.loads(ARTIFACT.read_text())
    data = bytes.fromhex(artifact["bytecode"].removeprefix("0x")) + abi_encode(
        ["string", "string", "uint8"], ["USD Coin", "USDC", 6]
    )
    tx_hash = send_tx(url, account, to=None, data=data, gas=1_000_000)
    found = receipt(url, tx_hash)
    assert found is not None
    assert found["status"] == "0x1"
    return to_checksum_address(found["contractAddress"])


def mint(url: str, minter: LocalAccount, token: str, to: str, amount: int) -> str:
    data = keccak(text="mint(address,uint256)")[:4] + abi_encode(
        ["address", "uint256"], [to_checksum_address(to), amount]
    )
    return send_tx(url, minter, to=token, data=data)


# --- smart accounts (devchain/SmartAccount.vy): ERC-4337-style wallets, relayed transfers ---

SMART_ACCOUNT = json.loads(ARTIFACT.with_name("SmartAccount.json").read_text())
ACCOUNT_FACTORY = json.loads(ARTIFACT.with_name("AccountFactory.json").read_text())
EXECUTE_SIGNED = keccak(text="executeSigned(address,bytes,bytes)")[:4]
EXECUTE_BATCH = keccak(text="executeBatch(address[],bytes[])")[:4]
EXECUTE_DIGEST = keccak(text="executeDigest(address,bytes,uint256)")[:4]
NONCE = keccak(text="nonce()")[:4]
CREATE_ACCOUNT = keccak(text="createAccount(address,bytes32)")[:4]
ERC6492_MAGIC = bytes.fromhex("6492" * 16)


def _deploy(url: str, deployer: LocalAccount, initcode: bytes) -> str:
    tx_hash = send_tx(url, deployer, to=None, data=initcode, gas=3_000_000)
    found = receipt(url, tx_hash)
    assert found is not None
    assert found["status"] == "0x1"
    return to_checksum_address(found["contractAddress"])


def deploy_smart_account(url: str, owner: LocalAccount, *, deployer: LocalAccount | None = None) -> str:
    """A smart account owned by `owner` (deployed by `deployer`, by default a fresh funded key).
    Returns its address; it holds nothing yet."""
    deployer = deployer or new_wallet(url)
    initcode = bytes.fromhex(SMART_ACCOUNT["bytecode"].removeprefix("0x")) + abi_encode(["address"], [owner.address])
    return _deploy(url, deployer, initcode)


def deploy_account_factory(url: str, deployer: LocalAccount) -> str:
    """A blueprint of the smart account and the CREATE2 factory that stamps it out."""
    blueprint = _deploy(url, deployer, bytes.fromhex(SMART_ACCOUNT["blueprint_bytecode"].removeprefix("0x")))
    initcode = bytes.fromhex(ACCOUNT_FACTORY["bytecode"].removeprefix("0x")) + abi_encode(["address"], [blueprint])
    return _deploy(url, deployer, initcode)


def create_account_calldata(owner: str, salt: bytes) -> bytes:
    return CREATE_ACCOUNT + abi_encode(["address", "bytes32"], [to_checksum_address(owner), salt])


def counterfactual_account(url: str, factory: str, owner: str, salt: bytes) -> str:
    """Where the factory would deploy `owner`'s account: asked by simulating the deployment."""
    result = rpc(url, "eth_call", {"to": factory, "data": "0x" + create_account_calldata(owner, salt).hex()}, "latest")
    return to_checksum_address("0x" + result[-40:])


def wrap_erc6492(factory: str, calldata: bytes, signature: bytes) -> str:
    """An ERC-6492 signature: how to deploy the account, the account's own signature, the magic suffix."""
    wrapped = abi_encode(["address", "bytes", "bytes"], [to_checksum_address(factory), calldata, signature])
    return "0x" + (wrapped + ERC6492_MAGIC).hex()


def signed_call(url: str, account: str, owner: LocalAccount, target: str, data: bytes) -> bytes:
    """`executeSigned` calldata for `account`: the owner's signature over the account's digest."""
    nonce = int(rpc(url, "eth_call", {"to": account, "data": "0x" + NONCE.hex()}, "latest"), 16)
    query = EXECUTE_DIGEST + abi_encode(["address", "bytes", "uint256"], [to_checksum_address(target), data, nonce])
    digest = bytes.fromhex(rpc(url, "eth_call", {"to": account, "data": "0x" + query.hex()}, "latest")[2:])
    signature = bytes(owner.unsafe_sign_hash(Hash32(digest)).signature)
    return EXECUTE_SIGNED + abi_encode(["address", "bytes", "bytes"], [to_checksum_address(target), data, signature])


def relay_transfer(
    url: str, relayer: LocalAccount, account: str, owner: LocalAccount, token: str, to: str, amount: int
) -> str:
    """USDC from the smart `account` to `to`, signed by its owner and sent (and paid for) by `relayer`."""
    transfer = TRANSFER_SELECTOR + abi_encode(["address", "uint256"], [to_checksum_address(to), amount])
    return send_tx(url, relayer, to=account, data=signed_call(url, account, owner, token, transfer), gas=300_000)


def bundle_transfers(
    url: str,
    bundler: LocalAccount,
    bundler_account: str,
    transfers: list[tuple[str, LocalAccount, int]],
    token: str,
    to: str,
) -> str:
    """One transaction, sent by `bundler` through its own smart account, carrying each (account,
    owner, amount) transfer of USDC to `to`, each signed by that account's owner."""
    targets, calls = [], []
    for account, owner, amount in transfers:
        transfer = TRANSFER_SELECTOR + abi_encode(["address", "uint256"], [to_checksum_address(to), amount])
        targets.append(to_checksum_address(account))
        calls.append(signed_call(url, account, owner, token, transfer))
    data = EXECUTE_BATCH + abi_encode(["address[]", "bytes[]"], [targets, calls])
    return send_tx(url, bundler, to=bundler_account, data=data, gas=600_000)
