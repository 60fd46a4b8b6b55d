"""A local Ethereum JSON-RPC node for development and tests, backed by eth-tester (py-evm).

`serve_evm(host, port)` starts it on loopback in a thread. It answers standard JSON-RPC (wire
format: hex quantities, camelCase fields) by passing each call to web3's `EthereumTesterProvider`
under one lock, plus:

- `evm_mine [n]` mines n empty blocks (eth-tester also mines one block per transaction);
- `evm_snapshot` / `evm_revert [id]` (eth-tester's), which tests use to simulate a reorg;
- `POST /faucet {"address", "eth": wei, "usdc": base_units}` sends test ETH and mints test USDC;
- `GET /` returns the public facts: chain id, USDC contract, escrow address.

At start it funds a deployer and the escrow hot wallet with ETH (from eth-tester's prefunded
account 0) and deploys a 6-decimal test USDC from the deployer at nonce 0, so the same deployer
key always gives the same token address. Chain state lives in memory only: balances reset on
restart; the keys (and so the addresses) are kept through `state()`.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_tester import EthereumTester, PyEVMBackend
from eth_utils import keccak, to_checksum_address
from web3 import EthereumTesterProvider, Web3
from web3.types import TxReceipt, Wei

ARTIFACT = Path(__file__).with_name("MockUSDC.json")
ETH = 10**18
GAS_FUNDING = 100 * ETH  # what the deployer and the escrow hot wallet start with
MINT_GAS = 120_000
DEPLOY_GAS = 1_000_000
TRANSFER_GAS = 21_000
MINT_SELECTOR = keccak(text="mint(address,uint256)")[:4]
NONCE_ERROR = re.compile(r"Expected (\d+), but got (\d+)")


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


def _wire(value: Any) -> Any:
    """eth-tester's Python values to JSON-RPC wire values: quantities as hex strings, camelCase
    keys (web3's middleware leaves some in snake_case, e.g. transactions inside a block)."""
    if isinstance(value, (bool, float, str)) or value is None:
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, dict):
        wired = {_camel(key): _wire(item) for key, item in value.items()}
        if isinstance(value.get("logsBloom"), int):
            wired["logsBloom"] = "0x" + value["logsBloom"].to_bytes(256, "big").hex()
        if "transaction_index" in value and "data" in value and "topics" not in value:
            wired["input"] = wired.pop("data")  # a transaction (not a log) in a block
        return wired
    if isinstance(value, (list, tuple)):
        return [_wire(item) for item in value]
    return str(value)


def _quantity(value: Any, default: int = 0) -> int:
    if value is None:
        return default
    if isinstance(value, str):
        return int(value, 16) if value.startswith(("0x", "0X")) else int(value)
    return int(value)


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class EvmDevchain:
    """One in-memory chain with a deployed test USDC, a deployer and an escrow hot wallet."""

    def __init__(self, *, escrow_private_key: str | None = None, deployer_private_key: str | None = None) -> None:
        self.lock = threading.RLock()
        self.tester = EthereumTester(PyEVMBackend())
        # Raw calls go through the provider's own formatting middleware only (hex params in,
        # camelCase results out); `w3` (default middleware) is for the node's own transactions.
        self._rpc_w3 = Web3(EthereumTesterProvider(self.tester), middleware=[])
        self._request = self._rpc_w3.provider.request_func(self._rpc_w3, self._rpc_w3.middleware_onion)
        self.w3 = Web3(EthereumTesterProvider(self.tester))
        self.chain_id: int = self.w3.eth.chain_id
        self.escrow = Account.from_key(escrow_private_key) if escrow_private_key else Account.create()
        self.deployer = Account.from_key(deployer_private_key) if deployer_private_key else Account.create()
        self._funder = self.w3.eth.accounts[0]  # eth-tester's prefunded, unlocked account
        artifact = json.loads(ARTIFACT.read_text())
        with self.lock:
            self._send_eth(self.deployer.address, GAS_FUNDING)
            self._send_eth(self.escrow.address, GAS_FUNDING)
            self.usdc_address = self._deploy_token(artifact["bytecode"])

    # --- the node's own transactions ---------------------------------------------------------

    def _send_eth(self, to: str, wei: int) -> str:
        tx_hash = self.w3.eth.send_transaction(
            {"from": self._funder, "to": to_checksum_address(to), "value": Wei(wei), "gas": TRANSFER_GAS}
        )
        return "0x" + bytes(tx_hash).hex()

    def _send_signed(self, tx: dict[str, Any]) -> TxReceipt:
        base_fee = self.w3.eth.get_block("latest").get("baseFeePerGas", 0)
        tx = {
            "chainId": self.chain_id,
            "nonce": self.w3.eth.get_transaction_count(self.deployer.address, "pending"),
            "maxPriorityFeePerGas": 10**9,
            "maxFeePerGas": 2 * base_fee + 10**9,
            "value": 0,
            **tx,
        }
        signed = self.deployer.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.get_transaction_receipt(tx_hash)
        if receipt["status"] != 1:
            raise RuntimeError(f"devchain transaction 0x{bytes(tx_hash).hex()} failed")
        return receipt

    def _deploy_token(self, bytecode: str) -> str:
        data = bytecode + abi_encode(["string", "string", "uint8"], ["USD Coin", "USDC", 6]).hex()
        address = self._send_signed({"data": data, "gas": DEPLOY_GAS})["contractAddress"]
        if address is None:
            raise RuntimeError("test USDC was not deployed")
        return to_checksum_address(address)

    def mint(self, to: str, amount: int) -> str:
        data = "0x" + (MINT_SELECTOR + abi_encode(["address", "uint256"], [to_checksum_address(to), amount])).hex()
        with self.lock:
            receipt = self._send_signed({"to": self.usdc_address, "data": data, "gas": MINT_GAS})
        return "0x" + bytes(receipt["transactionHash"]).hex()

    def faucet(self, address: str, *, eth: int = 0, usdc: int = 0) -> dict[str, str]:
        if eth < 0 or usdc < 0:
            raise ValueError("amounts must not be negative")
        sent: dict[str, str] = {}
        with self.lock:
            if eth:
                sent["eth_tx"] = self._send_eth(address, eth)
            if usdc:
                sent["usdc_tx"] = self.mint(address, usdc)
        return sent

    def mine(self, blocks: int = 1) -> None:
        with self.lock:
            self.tester.mine_blocks(blocks)

    # --- JSON-RPC ----------------------------------------------------------------------------

    def call(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC call; returns the wire-format result or raises RpcError."""
        with self.lock:
            if method == "evm_mine":
                blocks = _quantity(params[0] if params else None, default=1)
                if not 1 <= blocks <= 10_000:
                    raise RpcError(-32602, "evm_mine: 1 to 10000 blocks")
                self.tester.mine_blocks(blocks)
                return hex(self.w3.eth.block_number)
            if method == "eth_sendRawTransaction":
                return self._send_raw(params)
            return self._forward(method, params)

    def _forward(self, method: str, params: list[Any]) -> Any:
        try:
            response = self._request(method, params)
        except Exception as exc:  # eth-tester raises plain exceptions for bad input and reverts
            message = str(exc) or type(exc).__name__
            raise RpcError(3 if "revert" in message else -32000, message) from exc
        if "error" in response:
            error = response["error"]
            raise RpcError(int(error.get("code", -32000)), str(error.get("message", "error")))
        return _wire(response["result"])

    def _send_raw(self, params: list[Any]) -> Any:
        raw = params[0] if params else ""
        try:
            return self._forward("eth_sendRawTransaction", params)
        except RpcError as exc:
            # Speak like a real node, so clients handle re-sends the same way against both.
            if "Invalid transaction nonce" not in exc.message:
                raise
            tx_hash = "0x" + keccak(hexstr=raw).hex()
            if self._request("eth_getTransactionByHash", [tx_hash]).get("result"):
                raise RpcError(-32000, "already known") from exc
            found = NONCE_ERROR.search(exc.message)
            if found is None:
                raise
            expected, got = int(found[1]), int(found[2])
            kind = "nonce too low" if got < expected else "nonce too high"
            raise RpcError(-32000, f"{kind}: next nonce {expected}, tx nonce {got}") from exc

    def handle(self, body: Any) -> Any:
        if isinstance(body, list):
            return [self._handle_one(item) for item in body]
        return self._handle_one(body)

    def _handle_one(self, request: Any) -> dict[str, Any]:
        request_id = request.get("id") if isinstance(request, dict) else None
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            reply["error"] = {"code": -32600, "message": "invalid request"}
            return reply
        params = request.get("params") or []
        try:
            reply["result"] = self.call(request["method"], list(params))
        except RpcError as exc:
            reply["error"] = {"code": exc.code, "message": exc.message}
        except Exception as exc:  # bad params for our own methods: answer, never drop the connection
            reply["error"] = {"code": -32602, "message": f"{type(exc).__name__}: {exc}"}
        return reply

    # --- state -------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        return {"chain_id": self.chain_id, "usdc_address": self.usdc_address, "escrow_address": self.escrow.address}

    def state(self) -> dict[str, Any]:
        """What the devchain state file keeps for `payments.chains.config.base_config()`."""
        return {
            "usdc_address": self.usdc_address,
            "escrow_private_key": "0x" + bytes(self.escrow.key).hex(),
            "deployer_private_key": "0x" + bytes(self.deployer.key).hex(),
            "chain_id": self.chain_id,
        }


def _handler(chain: EvmDevchain) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, status: int, payload: Any) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._reply(200, chain.info())

        def do_POST(self) -> None:
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
            except (ValueError, RecursionError):  # RecursionError: nesting 100,000 deep
                self._reply(400, {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}})
                return
            if self.path.rstrip("/") == "/faucet":
                self._faucet(body)
            else:
                self._reply(200, chain.handle(body))

        def _faucet(self, body: Any) -> None:
            try:
                if not isinstance(body, dict):
                    raise ValueError("expected a JSON object")
                address = to_checksum_address(str(body["address"]))
                sent = chain.faucet(address, eth=_quantity(body.get("eth")), usdc=_quantity(body.get("usdc")))
            except Exception as exc:  # a bad address or amount (a mint that overflows reverts)
                self._reply(400, {"error": f"{type(exc).__name__}: {exc}"})
                return
            self._reply(200, {"address": address, **sent})

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class EvmRpcServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], chain: EvmDevchain) -> None:
        super().__init__(address, _handler(chain))
        self.chain = chain

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


def serve_evm(
    host: str = "127.0.0.1",
    port: int = 8545,
    *,
    escrow_private_key: str | None = None,
    deployer_private_key: str | None = None,
) -> tuple[EvmRpcServer, threading.Thread, EvmDevchain]:
    """Start the chain and its HTTP server in a daemon thread (port 0: an ephemeral port, see
    `server.url`). Stop it with `server.shutdown(); server.server_close()`."""
    chain = EvmDevchain(escrow_private_key=escrow_private_key, deployer_private_key=deployer_private_key)
    server = EvmRpcServer((host, port), chain)
    thread = threading.Thread(target=server.serve_forever, name=f"evm-devchain-{server.server_address[1]}", daemon=True)
    thread.start()
    return server, thread, chain
