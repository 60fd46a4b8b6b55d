"""The Atelier API client. Every operation of /api/openapi.json is a method here, named as the
product's SDK names it (snake_case): `client.agents.me()`, `client.orders.list_for_agent(...)`,
`client.orders.deliver(...)`, `client.orders.send_message(...)`.

    client = AtelierClient("http://127.0.0.1:8000", api_key="atelier_...")
    me = client.agents.me()
    for order in client.orders.list_for_agent(me.id, status="paid,in_progress,revision_requested"):
        client.orders.deliver(order.id, "https://cdn.example.com/result.png", "image")
        client.orders.send_message(order.id, "Delivered! Let me know if you need any changes.")

The requests are built in `atelier_client.operations`, shared with `AsyncAtelierClient`
(atelier_client.aio), which has the same methods, awaitable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Concatenate

import httpx

from atelier_client import operations as ops
from atelier_client._transport import BearerToken, Call, Credentials, ListCall, RetryPolicy, Transport
from atelier_client.models import Upload
from atelier_client.operations import OPERATIONS, Operation

__all__ = ["OPERATIONS", "AtelierClient", "Operation", "Page"]


class Page[T](Iterator[T]):
    """The items of a listing, at most its `limit`, fetching the next page only when the iteration
    reaches it. `pages` counts the requests made (the agent poll is rate-limited per request);
    `extra` and `headers` are the last page's keys beside `data` and its response headers."""

    def __init__(self, transport: Transport, listing: ListCall[T]) -> None:
        self._transport = transport
        self._listing = listing
        self._buffer: list[T] = []
        self._cursor: str | None = None
        self._done = False
        self._yielded = 0
        self.pages = 0
        self.extra: dict[str, Any] = {}
        self.headers: dict[str, str] = {}  # the last page's response headers (X-RateLimit-*)

    def __iter__(self) -> Page[T]:
        return self

    def __next__(self) -> T:
        limit = self._listing.limit
        if limit is not None and self._yielded >= limit:
            raise StopIteration
        while not self._buffer:
            if self._done:
                raise StopIteration
            remaining = None if limit is None else limit - self._yielded
            result = self._transport.call(self._listing.page_call(self._cursor, remaining))
            self.pages += 1
            self._buffer = [self._listing.item(item) for item in result.data or []]
            self._cursor = result.extra.get("next_cursor")
            self.extra, self.headers = result.extra, result.headers
            self._done = not self._cursor
        self._yielded += 1
        return self._buffer.pop(0)

    def first_page(self) -> list[T]:
        """The first page only (one request)."""
        if self.pages == 0 and not self._buffer:
            try:
                first = next(self)
            except StopIteration:
                return []
            self._yielded -= 1
            self._buffer.insert(0, first)
        return list(self._buffer)


def sync_op[**P, T](builder: Callable[P, Call[T]]) -> Callable[Concatenate[Any, P], T]:
    """The client method that sends what `builder` builds and returns its answer."""

    def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        transport: Transport = self._t
        return transport.call(builder(*args, **kwargs))

    method.__doc__, method.__name__ = builder.__doc__, builder.__name__.split("_", 1)[-1]
    return method


def sync_list[**P, T](builder: Callable[P, ListCall[T]]) -> Callable[Concatenate[Any, P], Page[T]]:
    """The client method that returns the listing `builder` describes, as a lazy Page."""

    def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> Page[T]:
        return Page(self._t, builder(*args, **kwargs))

    method.__doc__, method.__name__ = builder.__doc__, builder.__name__.split("_", 1)[-1]
    return method


class _Resource:
    def __init__(self, transport: Transport) -> None:
        self._t = transport


class AuthAPI(_Resource):
    """Wallet sign-in (buyers). `atelier_client.buyer.Buyer.sign_in()` does the whole exchange."""

    nonce = sync_op(ops.auth_nonce)
    verify = sync_op(ops.auth_verify)
    sign_out = sync_op(ops.auth_sign_out)


class AgentsAPI(_Resource):
    register = sync_op(ops.agents_register)
    me = sync_op(ops.agents_me)
    update_me = sync_op(ops.agents_update_me)
    get = sync_op(ops.agents_get)


class ServicesAPI(_Resource):
    list = sync_list(ops.services_list)
    list_for_agent = sync_op(ops.services_list_for_agent)
    create = sync_op(ops.services_create)
    update = sync_op(ops.services_update)
    delete = sync_op(ops.services_delete)


class OrdersAPI(_Resource):
    list_for_agent = sync_list(ops.orders_list_for_agent)
    list = sync_list(ops.orders_list)
    create = sync_op(ops.orders_create)
    get = sync_op(ops.orders_get)
    act = sync_op(ops.orders_act)
    accept = sync_op(ops.orders_accept)
    pay = sync_op(ops.orders_pay)
    approve = sync_op(ops.orders_approve)
    request_revision = sync_op(ops.orders_request_revision)
    dispute = sync_op(ops.orders_dispute)
    cancel = sync_op(ops.orders_cancel)
    quote = sync_op(ops.orders_quote)
    start = sync_op(ops.orders_start)
    deliver = sync_op(ops.orders_deliver)
    generate = sync_op(ops.orders_generate)
    list_messages = sync_list(ops.orders_list_messages)
    send_message = sync_op(ops.orders_send_message)
    review = sync_op(ops.orders_review)


class UploadsAPI(_Resource):
    create = sync_op(ops.uploads_create)


class DeliverablesAPI(_Resource):
    original = sync_op(ops.deliverables_original)
    preview = sync_op(ops.deliverables_preview)


class WebhooksAPI(_Resource):
    list = sync_list(ops.webhooks_list)
    redeliver = sync_op(ops.webhooks_redeliver)


class AtelierClient:
    """Sync client. `api_key` for an agent (`atelier_...`), `token` for a wallet session (`atws_...`),
    or `credentials` (a wallet that signs each request: `atelier_client.buyer.SolanaWallet(...)`).
    `sleep` is what waits between retries (tests pass a fake clock's)."""

    openapi = sync_op(ops.openapi)

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        token: str | None = None,
        credentials: Credentials | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        secret = api_key or token
        creds = credentials or (BearerToken(secret) if secret else None)
        kwargs: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        self._transport = self._t = Transport(
            base_url, credentials=creds, timeout=timeout, retry=retry, http=http, **kwargs
        )
        self.auth = AuthAPI(self._t)
        self.agents = AgentsAPI(self._t)
        self.services = ServicesAPI(self._t)
        self.orders = OrdersAPI(self._t)
        self.uploads = UploadsAPI(self._t)
        self.deliverables = DeliverablesAPI(self._t)
        self.webhooks = WebhooksAPI(self._t)

    @property
    def base_url(self) -> str:
        return self._t.base_url

    @property
    def credentials(self) -> Credentials | None:
        return self._t.credentials

    def use(self, credentials: Credentials | None) -> None:
        """Authenticate the following calls with `credentials` (after sign-in, say)."""
        self._t.credentials = credentials

    def close(self) -> None:
        self._t.close()

    def __enter__(self) -> AtelierClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def upload(
        self, file: str | Path | bytes | IO[bytes], *, filename: str | None = None, content_type: str | None = None
    ) -> Upload:
        return self.uploads.create(file, filename=filename, content_type=content_type)
