"""Typed errors with stable codes. App code raises these; `api.endpoints` turns them into the
JSON envelope and the pages turn them into a message, each in one place."""

from __future__ import annotations

from typing import Any


class AtelierError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or {}


class ValidationFailed(AtelierError):
    status = 400
    code = "validation_error"


class Unauthorized(AtelierError):
    status = 401
    code = "unauthorized"


class Forbidden(AtelierError):
    status = 403
    code = "forbidden"


class NotFound(AtelierError):
    status = 404
    code = "not_found"


class MethodNotAllowed(AtelierError):
    status = 405
    code = "method_not_allowed"


class Conflict(AtelierError):
    status = 409
    code = "conflict"


class InProgress(Conflict):
    """The same request (its Idempotency-Key) is still being answered; retry after `retry_after` seconds."""

    code = "in_progress"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code, details={"retry_after": retry_after})
        self.retry_after = retry_after


class PaymentRequired(AtelierError):
    """402 (x402): `requirements` travel beside the envelope and, base64 JSON, in `headers`."""

    status = 402
    code = "payment_required"

    def __init__(
        self,
        message: str,
        *,
        requirements: dict[str, Any],
        headers: dict[str, str],
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code, details=details)
        self.requirements = requirements
        self.headers = headers


class PayloadTooLarge(AtelierError):
    status = 413
    code = "payload_too_large"


class Unprocessable(AtelierError):
    status = 422
    code = "unprocessable"


class RateLimited(AtelierError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, limit: int, reset: int) -> None:
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after
        self.limit = limit
        self.reset = reset

    def apply(self, response: Any) -> None:
        """The refusal's headers: when to come back, and the X-RateLimit-* of an exhausted budget."""
        response["Retry-After"] = str(self.retry_after)
        response["X-RateLimit-Limit"] = str(self.limit)
        response["X-RateLimit-Remaining"] = "0"
        response["X-RateLimit-Reset"] = str(self.reset)


class ServiceUnavailable(AtelierError):
    status = 503
    code = "service_unavailable"
