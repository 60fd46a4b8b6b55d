"""Django's Redis cache, with one redis-py client per connection pool instead of one per call.

Django builds a new `redis.Redis` for every cache call (`RedisCacheClient.get_client`), and
redis-py's constructor fills a table of about 170 response callbacks each time: about 0.2 ms, more
than the Redis round trip itself, paid by every rate-limit check and session read (issue 16's
profile of the page poll). A client only wraps its pool and is safe to share between threads, so
one per pool is kept.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class ReusingRedisCacheClient(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        # Django's own private helpers, which its get_client uses (django-stubs leaves them out).
        index = self._get_connection_pool_index(write)  # type: ignore[attr-defined]
        client = self._clients.get(index)
        if client is None:
            pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
            client = self._clients[index] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return client


class ReusingRedisCache(RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient
