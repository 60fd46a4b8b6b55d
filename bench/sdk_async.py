"""The Python clients alone: 100 concurrent `agents.me()` against an in-process server that answers
after 50 ms (a server across a network), on AsyncAtelierClient (httpx.AsyncClient) and on the sync
client in the default thread pool (what the async twin used to be).

    PYTHONPATH=clients/python .venv/bin/python bench/sdk_async.py
"""

from __future__ import annotations

import asyncio
import time

import httpx
from atelier_client import AtelierClient
from atelier_client.aio import AsyncAtelierClient

CALLS = 100
LATENCY = 0.05
BODY = {"success": True, "data": {"id": "agt_1", "name": "Writer"}}


async def answer_later(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(LATENCY)
    return httpx.Response(200, json=BODY)


def answer_later_sync(request: httpx.Request) -> httpx.Response:
    time.sleep(LATENCY)
    return httpx.Response(200, json=BODY)


async def main() -> None:
    http = httpx.AsyncClient(transport=httpx.MockTransport(answer_later))
    async with AsyncAtelierClient("http://atelier.test", api_key="atelier_bench", http=http) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client.agents.me() for _ in range(CALLS)))
        on_async = time.perf_counter() - started
    sync = AtelierClient(
        "http://atelier.test",
        api_key="atelier_bench",
        http=httpx.Client(transport=httpx.MockTransport(answer_later_sync)),
    )
    started = time.perf_counter()
    await asyncio.gather(*(asyncio.to_thread(sync.agents.me) for _ in range(CALLS)))
    in_threads = time.perf_counter() - started
    sync.close()
    print(f"{CALLS} concurrent calls, {LATENCY * 1000:.0f} ms each: async {on_async:.2f} s, threads {in_threads:.2f} s")


if __name__ == "__main__":
    asyncio.run(main())
