"""JSON-RPC 2.0 as Solana's RPC speaks it, for the devchain: its error codes and texts, the error
object, and reading a request's parameters (answering bad ones with INVALID_PARAMS)."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any

from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction_metadata import FailedTransactionMetadata

from devchain.solana_rendering import b58decode

log = logging.getLogger(__name__)

# JSON-RPC error codes, as Solana's RPC uses them.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SEND_TRANSACTION_PREFLIGHT_FAILURE = -32002
SIGNATURE_VERIFICATION_FAILURE = -32003
UNSUPPORTED_TRANSACTION_VERSION = -32015

_ERROR_TEXT = {
    "AlreadyProcessed": "This transaction has already been processed",
    "BlockhashNotFound": "Blockhash not found",
    "AccountNotFound": "Attempt to debit an account but found no record of a prior credit.",
    "InsufficientFundsForFee": "Insufficient funds for fee",
    "SignatureFailure": "Transaction did not pass signature verification",
}


class RpcError(Exception):
    """Answered as a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def as_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def err_json(result: FailedTransactionMetadata) -> Any:
    return json.loads(result.to_json())["err"]


def preflight_error(err: Any, logs: list[str] | None = None, units: int = 0) -> RpcError:
    if isinstance(err, dict) and "InstructionError" in err:
        index, detail = err["InstructionError"]
        text = (
            f"custom program error: {detail['Custom']:#x}"
            if isinstance(detail, dict) and "Custom" in detail
            else str(detail)
        )
        description = f"Error processing Instruction {index}: {text}"
    else:
        description = _ERROR_TEXT.get(err, str(err)) if isinstance(err, str) else json.dumps(err)
    data = {"err": err, "logs": logs or [], "accounts": None, "unitsConsumed": units, "returnData": None}
    return RpcError(SEND_TRANSACTION_PREFLIGHT_FAILURE, f"Transaction simulation failed: {description}", data)


def error_envelope(request_id: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "error": error.as_json(), "id": request_id}


def arg[T](params: list[Any], index: int, kind: type[T]) -> T:
    if len(params) <= index:
        raise RpcError(INVALID_PARAMS, f"Invalid params: missing parameter {index}")
    value = params[index]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise RpcError(INVALID_PARAMS, f"Invalid params: parameter {index} must be {kind.__name__}")
    return value


def config(params: list[Any], index: int) -> dict[str, Any]:
    if len(params) <= index or params[index] is None:
        return {}
    return arg(params, index, dict)


def pubkey(value: str) -> Pubkey:
    try:
        return Pubkey.from_string(value)
    except ValueError:
        raise RpcError(INVALID_PARAMS, "Invalid param: Invalid") from None


def signature(value: str) -> str:
    try:
        Signature.from_string(value)
    except ValueError:
        raise RpcError(INVALID_PARAMS, "Invalid param: Invalid") from None
    return value


def decode(encoded: str, encoding: str) -> bytes:
    try:
        if encoding == "base64":
            return base64.b64decode(encoded, validate=True)
        if encoding == "base58":
            return b58decode(encoded)
    except ValueError:
        raise RpcError(INVALID_PARAMS, f"Invalid params: invalid {encoding} encoding") from None
    raise RpcError(INVALID_PARAMS, f"Invalid params: unsupported encoding {encoding!r}")


Method = Callable[[list[Any]], Any]


def handle(body: bytes, methods: Mapping[str, Method], lock: AbstractContextManager[Any]) -> Any:
    """One JSON-RPC 2.0 request body (single or batch) in, the response object out; each call runs
    its method under `lock`."""
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nesting 100,000 deep
        return error_envelope(None, RpcError(PARSE_ERROR, "Parse error"))
    if isinstance(request, list):
        if not request:
            return error_envelope(None, RpcError(INVALID_REQUEST, "Invalid request"))
        return [_handle_one(item, methods, lock) for item in request]
    return _handle_one(request, methods, lock)


def _handle_one(request: Any, methods: Mapping[str, Method], lock: AbstractContextManager[Any]) -> dict[str, Any]:
    if not isinstance(request, dict):
        return error_envelope(None, RpcError(INVALID_REQUEST, "Invalid request"))
    request_id = request.get("id")
    method, params = request.get("method"), request.get("params", [])
    if request.get("jsonrpc") != "2.0" or not isinstance(method, str):
        return error_envelope(request_id, RpcError(INVALID_REQUEST, "Invalid request"))
    if not isinstance(params, list):
        return error_envelope(request_id, RpcError(INVALID_PARAMS, "Invalid params: expected an array"))
    handler = methods.get(method)
    if handler is None:
        return error_envelope(request_id, RpcError(METHOD_NOT_FOUND, "Method not found"))
    try:
        with lock:
            result = handler(params)
    except RpcError as exc:
        return error_envelope(request_id, exc)
    except Exception:
        log.exception("devchain %s failed", method)
        return error_envelope(request_id, RpcError(INTERNAL_ERROR, "Internal error"))
    return {"jsonrpc": "2.0", "result": result, "id": request_id}
