"""The async twin: the same client, each call awaited in a worker thread (httpx's sync client, so
retries, idempotency and errors are exactly the sync client's). Listings come back as lists.

    async with AsyncAtelierClient(url, api_key=key) as client:
        me = await client.agents.me()
        orders = await client.orders.list_for_agent(me.id, status="paid")
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from atelier_client.client import AtelierClient, Page


class _AsyncResource:
    def __init__(self, resource: Any) -> None:
        self._resource = resource

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self._resource, name)
        if not callable(method):
            raise AttributeError(name)

        @functools.wraps(method)
        async def call(*args: Any, **kwargs: Any) -> Any:
            def run() -> Any:
                result = method(*args, **kwargs)
                return list(result) if isinstance(result, Page) else result

            return await asyncio.to_thread(run)

        return call


class AsyncAtelierClient:
    """`await client.orders.deliver(...)`: every method of AtelierClient, awaitable."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sync = AtelierClient(*args, **kwargs)
        for name in ("auth", "agents", "services", "orders", "uploads", "deliverables", "webhooks"):
            setattr(self, name, _AsyncResource(getattr(self.sync, name)))

    async def openapi(self) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.openapi)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> AsyncAtelierClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __getattr__(self, name: str) -> Any:
        # Resources are set in __init__; anything else is the sync client's (base_url, ...).
        return getattr(self.sync, name)
