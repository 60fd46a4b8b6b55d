"""HTTP for the clients: the envelope unwrapped, typed errors, an Idempotency-Key on every POST and
PATCH (the same one on each retry of that call), and retries with backoff that honour Retry-After.

Building a request (`prepare`) and reading its answer (`parse`) are plain functions shared by the
sync `Transport` (httpx.Client) and the `AsyncTransport` (httpx.AsyncClient); only the sending and
the waiting between retries differ."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

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

USER_AGENT = "atelier-client-python/0.2.0"
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


@dataclass(frozen=True)
class Call[T]:
    """One API call, as both clients make it: what to send, and how its Result becomes the answer."""

    method: str
    path: str
    parse: Callable[[Result], T]
    json_body: Mapping[str, Any] | None = None
    params: Mapping[str, Any] | None = None
    files: Mapping[str, Any] | None = None
    idempotency_key: str | None = None
    authenticated: bool = True
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class ListCall[T]:
    """A paginated listing: each page is `GET path?params&<cursor_param>=<cursor>`, at most `limit`
    items in all (None: every page), pages of `page_size` (the server's maximum is 100)."""

    path: str
    item: Callable[[Any], T]
    params: Mapping[str, Any]
    cursor_param: str = "before"
    limit: int | None = None
    page_size: int | None = None
    first_cursor: str | None = None

    def page_call(self, cursor: str | None, remaining: int | None) -> Call[Result]:
        size = self.page_size
        if remaining is not None:
            size = min(remaining, size or 100)
        params = {**self.params, "limit": size, self.cursor_param: cursor or self.first_cursor}
        return Call("GET", self.path, lambda result: result, params=params)


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
            wait: float = error.retry_after
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


@dataclass(frozen=True)
class Prepared:
    """A request ready to send (signed for this attempt)."""

    method: str
    url: str
    full_path: str
    content: bytes | None
    files: Mapping[str, Any] | None
    headers: dict[str, str]


def full_path_of(call: Call[Any]) -> str:
    query = {key: value for key, value in (call.params or {}).items() if value is not None}
    return call.path + ("?" + urlencode(query) if query else "")


def prepare(
    base_url: str, call: Call[Any], full_path: str, key: str | None, creds: Credentials | None, extra: Mapping[str, str]
) -> Prepared:
    """The request for one attempt: JSON body, Idempotency-Key, credentials signed afresh (a wallet
    signature is accepted once)."""
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **extra, **(call.headers or {})}
    content: bytes | None = None
    if call.files is None and (call.json_body is not None or call.method in WRITE_METHODS):
        content = json.dumps(dict(call.json_body or {}), separators=(",", ":")).encode()
        headers["Content-Type"] = "application/json"
    if key:
        headers["Idempotency-Key"] = key
    if creds is not None:
        headers.update(creds.headers(call.method, full_path, content or b""))
    return Prepared(call.method, base_url + full_path, full_path, content, call.files, headers)


def parse(method: str, full_path: str, response: httpx.Response) -> Result:
    """The Result of a response, or the typed error it stands for."""
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


def connection_error(request: Prepared, exc: httpx.TransportError) -> APIConnectionError:
    """Names the host: "connection refused" alone does not say which server was meant."""
    host = urlsplit(request.url).netloc
    return APIConnectionError(f"{request.method} {request.full_path} to {host}: {exc or type(exc).__name__}")


class _Base:
    def __init__(
        self,
        base_url: str,
        *,
        credentials: Credentials | None = None,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.retry = retry or RetryPolicy()
        self.extra_headers = dict(headers or {})

    def _start(self, call: Call[Any]) -> tuple[str, str | None, Credentials | None]:
        key = call.idempotency_key or (str(uuid.uuid4()) if call.method in KEYED_METHODS else None)
        return full_path_of(call), key, self.credentials if call.authenticated else None


class Transport(_Base):
    """Sync: each call retried as the policy says, waiting with `sleep`."""

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
        super().__init__(base_url, credentials=credentials, retry=retry, headers=headers)
        self.sleep = sleep
        self.http = http or httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def call[T](self, call: Call[T]) -> T:
        """One API call. POST and PATCH carry an Idempotency-Key (a new UUID unless given), the same
        on every retry, so a retry never does the work twice."""
        full_path, key, creds = self._start(call)
        attempt = 0
        while True:
            attempt += 1
            request = prepare(self.base_url, call, full_path, key, creds, self.extra_headers)
            try:
                try:
                    response = self.http.request(
                        request.method,
                        request.url,
                        content=request.content,
                        files=request.files,
                        headers=request.headers,
                    )
                except httpx.TransportError as exc:
                    raise connection_error(request, exc) from exc
                return call.parse(parse(request.method, full_path, response))
            except AtelierError as exc:
                wait = self.retry.delay(attempt, exc)
                if wait is None:
                    raise
                self.sleep(wait)


class AsyncTransport(_Base):
    """Async, on httpx.AsyncClient: the same calls, awaited; waits with `sleep` (asyncio.sleep)."""

    def __init__(
        self,
        base_url: str,
        *,
        credentials: Credentials | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        http: httpx.AsyncClient | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(base_url, credentials=credentials, retry=retry, headers=headers)
        self.sleep = sleep
        self.http = http or httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=100))

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call[T](self, call: Call[T]) -> T:
        full_path, key, creds = self._start(call)
        attempt = 0
        while True:
            attempt += 1
            request = prepare(self.base_url, call, full_path, key, creds, self.extra_headers)
            try:
                try:
                    response = await self.http.request(
                        request.method,
                        request.url,
                        content=request.content,
                        files=request.files,
                        headers=request.headers,
                    )
                except httpx.TransportError as exc:
                    raise connection_error(request, exc) from exc
                return call.parse(parse(request.method, full_path, response))
            except AtelierError as exc:
                wait = self.retry.delay(attempt, exc)
                if wait is None:
                    raise
                await self.sleep(wait)
