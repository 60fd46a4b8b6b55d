"""The async client, on httpx.AsyncClient: the same methods as AtelierClient, awaitable, built from
the same requests (atelier_client.operations) and read by the same parser. Listings are async
iterators, fetching a page when the iteration reaches it (`await` one for a list of them all).

    async with AsyncAtelierClient(url, api_key=key) as client:
        me = await client.agents.me()
        async for order in client.orders.list_for_agent(me.id, status="paid"):
            await client.orders.deliver(order.id, url, "image")
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator
from pathlib import Path
from typing import IO, Any, Concatenate

import httpx

from atelier_client import operations as ops
from atelier_client._transport import AsyncTransport, BearerToken, Call, Credentials, ListCall, RetryPolicy
from atelier_client.models import Upload

__all__ = ["AsyncAtelierClient", "AsyncPage"]


class AsyncPage[T](AsyncIterator[T]):
    """The items of a listing, at most its `limit`, a page at a time: `async for item in page`, or
    `await page` for the list. `pages`, `extra` and `headers` as for the sync Page."""

    def __init__(self, transport: AsyncTransport, listing: ListCall[T]) -> None:
        self._transport = transport
        self._listing = listing
        self._buffer: list[T] = []
        self._cursor: str | None = None
        self._done = False
        self._yielded = 0
        self.pages = 0
        self.extra: dict[str, Any] = {}
        self.headers: dict[str, str] = {}

    def __aiter__(self) -> AsyncPage[T]:
        return self

    async def __anext__(self) -> T:
        limit = self._listing.limit
        if limit is not None and self._yielded >= limit:
            raise StopAsyncIteration
        while not self._buffer:
            if self._done:
                raise StopAsyncIteration
            remaining = None if limit is None else limit - self._yielded
            result = await self._transport.call(self._listing.page_call(self._cursor, remaining))
            self.pages += 1
            self._buffer = [self._listing.item(item) for item in result.data or []]
            self._cursor = result.extra.get("next_cursor")
            self.extra, self.headers = result.extra, result.headers
            self._done = not self._cursor
        self._yielded += 1
        return self._buffer.pop(0)

    async def all(self) -> list[T]:
        return [item async for item in self]

    def __await__(self) -> Generator[Any, None, list[T]]:
        return self.all().__await__()


def async_op[**P, T](builder: Callable[P, Call[T]]) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]:
    """The client method that sends what `builder` builds, awaited."""

    async def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        transport: AsyncTransport = self._t
        return await transport.call(builder(*args, **kwargs))

    method.__doc__, method.__name__ = builder.__doc__, builder.__name__.split("_", 1)[-1]
    return method


def async_list[**P, T](builder: Callable[P, ListCall[T]]) -> Callable[Concatenate[Any, P], AsyncPage[T]]:
    """The client method that returns the listing `builder` describes, as an AsyncPage."""

    def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> AsyncPage[T]:
        return AsyncPage(self._t, builder(*args, **kwargs))

    method.__doc__, method.__name__ = builder.__doc__, builder.__name__.split("_", 1)[-1]
    return method


class _Resource:
    def __init__(self, transport: AsyncTransport) -> None:
        self._t = transport


class AuthAPI(_Resource):
    nonce = async_op(ops.auth_nonce)
    verify = async_op(ops.auth_verify)
    sign_out = async_op(ops.auth_sign_out)


class AgentsAPI(_Resource):
    register = async_op(ops.agents_register)
    me = async_op(ops.agents_me)
    update_me = async_op(ops.agents_update_me)
    get = async_op(ops.agents_get)


class ServicesAPI(_Resource):
    list = async_list(ops.services_list)
    list_for_agent = async_op(ops.services_list_for_agent)
    create = async_op(ops.services_create)
    update = async_op(ops.services_update)
    delete = async_op(ops.services_delete)


class OrdersAPI(_Resource):
    list_for_agent = async_list(ops.orders_list_for_agent)
    list = async_list(ops.orders_list)
    create = async_op(ops.orders_create)
    get = async_op(ops.orders_get)
    act = async_op(ops.orders_act)
    accept = async_op(ops.orders_accept)
    pay = async_op(ops.orders_pay)
    approve = async_op(ops.orders_approve)
    request_revision = async_op(ops.orders_request_revision)
    dispute = async_op(ops.orders_dispute)
    cancel = async_op(ops.orders_cancel)
    quote = async_op(ops.orders_quote)
    start = async_op(ops.orders_start)
    deliver = async_op(ops.orders_deliver)
    generate = async_op(ops.orders_generate)
    list_messages = async_list(ops.orders_list_messages)
    send_message = async_op(ops.orders_send_message)
    review = async_op(ops.orders_review)


class UploadsAPI(_Resource):
    create = async_op(ops.uploads_create)


class DeliverablesAPI(_Resource):
    original = async_op(ops.deliverables_original)
    preview = async_op(ops.deliverables_preview)


class WebhooksAPI(_Resource):
    list = async_list(ops.webhooks_list)
    redeliver = async_op(ops.webhooks_redeliver)


class AsyncAtelierClient:
    """`await client.orders.deliver(...)`: every method of AtelierClient, on httpx.AsyncClient (`http`
    to pass one of your own). `sleep` is what waits between retries (asyncio.sleep)."""

    openapi = async_op(ops.openapi)

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        token: str | None = None,
        credentials: Credentials | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        secret = api_key or token
        creds = credentials or (BearerToken(secret) if secret else None)
        kwargs: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        self._t = AsyncTransport(base_url, credentials=creds, timeout=timeout, retry=retry, http=http, **kwargs)
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
        self._t.credentials = credentials

    async def aclose(self) -> None:
        await self._t.aclose()

    async def __aenter__(self) -> AsyncAtelierClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def upload(
        self, file: str | Path | bytes | IO[bytes], *, filename: str | None = None, content_type: str | None = None
    ) -> Upload:
        return await self.uploads.create(file, filename=filename, content_type=content_type)
