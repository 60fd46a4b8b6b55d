"""JSON-RPC 2.0 as Solana's RPC speaks it, for the devchain: its error codes and texts, the error
object, and reading a request's parameters (answering bad ones with INVALID_PARAMS)."""

from __future__ import annotations

import base64
import json
from typing import Any

from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction_metadata import FailedTransactionMetadata

from devchain.solana_rendering import b58decode

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
