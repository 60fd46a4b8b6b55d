"""HTTP for the client: the envelope unwrapped, typed errors, an Idempotency-Key on every POST and
PATCH (the same one on each retry of that call), and retries with backoff that honour Retry-After."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx

from atelier_client.errors import (
    APIConnectionError,
    AtelierError,
    IdempotencyInProgressError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
    error_for,
)

USER_AGENT = "atelier-client-python/0.1.0"
WRITE_METHODS = ("POST", "PATCH", "PUT")
KEYED_METHODS = ("POST", "PATCH")


class Credentials(Protocol):
    """What authenticates a request: headers for this method, path (with its query) and exact body."""

    def headers(self, method: str, path: str, body: bytes) -> dict[str, str]: ...


@dataclass(frozen=True)
class BearerToken:
    """An agent's API key (`atelier_...`) or a wallet session token (`atws_...`)."""

    token: str

    def headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Result:
    """A success: `data` unwrapped from the envelope; `extra` the keys beside it (`next_cursor`)."""

    data: Any
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    content: bytes = b""


@dataclass
class RetryPolicy:
    """How failures are retried. A 429 or 409 `idempotency_in_progress` waits its Retry-After (up to
    `max_wait`; a longer wait raises at once, so a caller with a clock of its own can wait instead);
    connection errors, 502, 503 and 504 back off exponentially with jitter."""

    max_retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_wait: float = 60.0

    def delay(self, attempt: int, error: AtelierError | None) -> float | None:
        """Seconds before retry number `attempt` (1-based), or None to give up and raise."""
        if attempt > self.max_retries:
            return None
        if isinstance(error, RateLimitError | IdempotencyInProgressError):
            wait = error.retry_after
            return wait if wait <= self.max_wait else None
        if error is None or isinstance(error, ServiceUnavailableError | ServerError | APIConnectionError):
            if error is not None and error.status not in (0, 502, 503, 504):
                return None
            computed = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
            wait = computed * (0.5 + random.random() / 2)  # noqa: S311 -- jitter, not a secret
            retry_after = error.headers.get("retry-after") if error is not None else None
            if retry_after is not None and retry_after.isdigit():
                wait = max(wait, float(retry_after))
            return wait
        return None


class Transport:
    def __init__(
        self,
        base_url: str,
        *,
        credentials: Credentials | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        http: httpx.Client | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.http = http or httpx.Client(timeout=timeout)
        self.extra_headers = dict(headers or {})

    def close(self) -> None:
        self.http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        credentials: Credentials | None = None,
        authenticated: bool = True,
    ) -> Result:
        """One API call, retried as the policy says. POST and PATCH carry an Idempotency-Key (a new
        UUID unless given), the same on every retry, so a retry never does the work twice."""
        query = {key: value for key, value in (params or {}).items() if value is not None}
        full_path = path + ("?" + urlencode(query) if query else "")
        key = idempotency_key or (str(uuid.uuid4()) if method in KEYED_METHODS else None)
        creds = (credentials or self.credentials) if authenticated else None
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._send(method, full_path, json_body, files, key, creds)
            except AtelierError as exc:
                wait = self.retry.delay(attempt, exc)
                if wait is None:
                    raise
                self.sleep(wait)

    def _send(
        self,
        method: str,
        full_path: str,
        json_body: Mapping[str, Any] | None,
        files: Mapping[str, Any] | None,
        key: str | None,
        creds: Credentials | None,
    ) -> Result:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **self.extra_headers}
        content: bytes | None = None
        if files is None and (json_body is not None or method in WRITE_METHODS):
            content = json.dumps(dict(json_body or {}), separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        if key:
            headers["Idempotency-Key"] = key
        if creds is not None:  # signed afresh on each attempt: a wallet signature is accepted once
            headers.update(creds.headers(method, full_path, content or b""))
        try:
            response = self.http.request(
                method, self.base_url + full_path, content=content, files=files, headers=headers
            )
        except httpx.TransportError as exc:
            raise APIConnectionError(f"{method} {full_path}: {exc}") from exc
        response_headers = {name.lower(): value for name, value in response.headers.items()}
        is_json = response.headers.get("content-type", "").startswith("application/json")
        body: Any = None
        if is_json:
            try:
                body = response.json()
            except ValueError:
                body = None
        if response.status_code >= 400:
            raise error_for(response.status_code, body if isinstance(body, dict) else None, response_headers)
        if not is_json:
            return Result(None, headers=response_headers, status=response.status_code, content=response.content)
        if not isinstance(body, dict):
            raise ServerError(f"{method} {full_path}: not a JSON object", status=response.status_code)
        extra = {name: value for name, value in body.items() if name not in ("success", "data")}
        data = body.get("data") if "success" in body else body
        return Result(data, extra, response_headers, response.status_code, response.content)
