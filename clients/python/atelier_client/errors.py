"""Typed errors: one class per HTTP status, a few more per `code`, all carrying the envelope.

try:
    client.orders.deliver(order_id, url, "image")
except RateLimitError as exc:
    time.sleep(exc.retry_after)
except ConflictError as exc:
    print(exc.code, exc.status, exc.allowed_actions)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class AtelierError(Exception):
    """Any error from the API: `status`, `code` (stable, snake_case), `message`, `details`."""

    status: int = 0

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str = "",
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}" if status else message)
        self.message = message
        self.status = status or type(self).status
        self.code = code
        self.details: dict[str, Any] = dict(details or {})
        self.headers: dict[str, str] = dict(headers or {})
        self.body: dict[str, Any] = dict(body or {})


class APIConnectionError(AtelierError):
    """The server could not be reached (after the retries)."""


class ValidationError(AtelierError):
    """400: `details` names the fields (`{"price_usd": "must be ..."}`)."""

    status = 400


class AuthenticationError(AtelierError):
    """401: missing, malformed, revoked or wrong credentials (or a wallet signature refused)."""

    status = 401


class WalletSignatureError(AuthenticationError):
    """401 for a wallet signature refused: expired, in the future, replayed or not the wallet's.
    Sign every request afresh (the client's wallets do)."""


class PaymentRequiredError(AtelierError):
    """402 (x402): `requirements` is the PaymentRequired object; `accepts` its payment options."""

    status = 402

    @property
    def requirements(self) -> dict[str, Any]:
        return {key: value for key, value in self.body.items() if key not in ("success", "error", "code", "details")}

    @property
    def accepts(self) -> list[dict[str, Any]]:
        return list(self.body.get("accepts") or [])

    @property
    def reference(self) -> str | None:
        return self.details.get("reference")


class PaymentRejectedError(ValidationError):
    """400 for a transaction that cannot pay the order (`code`: underpaid, memo_mismatch,
    not_to_escrow, payer_proof_required, ...); `details` says what the chain showed."""


class PermissionDeniedError(AtelierError):
    """403: a party acting outside its role."""

    status = 403


# The TypeScript SDK's name for the same error.
ForbiddenError = PermissionDeniedError


class NotFoundError(AtelierError):
    """404: unknown, or not yours."""

    status = 404


class MethodNotAllowedError(AtelierError):
    status = 405


class ConflictError(AtelierError):
    """409: not allowed in the order's current status (`current_status`, `allowed_actions`), or a duplicate."""

    status = 409

    @property
    def allowed_actions(self) -> list[str]:
        return list(self.details.get("allowed_actions") or [])

    @property
    def current_status(self) -> str | None:
        return self.details.get("status")


class InvalidTransitionError(ConflictError):
    """409 `invalid_transition`: the action is not in the order's `allowed_actions` now."""


class IdempotencyInProgressError(ConflictError):
    """409 `idempotency_in_progress`: the same request is still being answered; retried automatically."""

    @property
    def retry_after(self) -> float:
        return _retry_after(self.headers, self.details)


class PayloadTooLargeError(AtelierError):
    status = 413


class IdempotencyKeyReusedError(AtelierError):
    """422 `idempotency_key_reused`: this Idempotency-Key was used with another body."""

    status = 422


class RateLimitError(AtelierError):
    """429: `retry_after` seconds until a retry is admitted (the Retry-After header)."""

    status = 429

    @property
    def retry_after(self) -> float:
        return _retry_after(self.headers, self.details)


class ServiceUnavailableError(AtelierError):
    """503: a chain RPC is unreachable; nothing changed, retry."""

    status = 503


class ServerError(AtelierError):
    """5xx other than 503."""


def _retry_after(headers: Mapping[str, str], details: Mapping[str, Any]) -> float:
    for value in (headers.get("retry-after"), details.get("retry_after")):
        try:
            if value is not None:
                return max(0.0, float(value))
        except (TypeError, ValueError):
            continue
    return 1.0


BY_STATUS: dict[int, type[AtelierError]] = {
    400: ValidationError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: IdempotencyKeyReusedError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}
BY_CODE: dict[str, type[AtelierError]] = {
    "invalid_transition": InvalidTransitionError,
    "idempotency_in_progress": IdempotencyInProgressError,
    "in_progress": IdempotencyInProgressError,
    **dict.fromkeys(
        ("invalid_signature", "signature_expired", "signature_in_future", "signature_replayed"), WalletSignatureError
    ),
    **dict.fromkeys(
        (
            "buyer_not_sender",
            "buyer_not_signer",
            "invalid_payer_signature",
            "malformed_tx_hash",
            "memo_mismatch",
            "not_to_escrow",
            "payer_proof_required",
            "tx_failed",
            "tx_too_old",
            "underpaid",
            "wrong_chain",
            "wrong_token",
        ),
        PaymentRejectedError,
    ),
}


def error_for(status: int, body: Mapping[str, Any] | None, headers: Mapping[str, str]) -> AtelierError:
    """The typed error for a failed response (its envelope, if it has one)."""
    body = body or {}
    code = str(body.get("code") or "")
    cls = BY_CODE.get(code)
    if cls is None or cls.status != status:
        cls = BY_STATUS.get(status) or (ServerError if status >= 500 else AtelierError)
    details = body.get("details")
    return cls(
        str(body.get("error") or f"HTTP {status}"),
        status=status,
        code=code,
        details=details if isinstance(details, Mapping) else {},
        headers={key.lower(): value for key, value in headers.items()},
        body=body,
    )
