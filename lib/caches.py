"""CACHES["default"] from CACHE_URL: the shared cache, and where the rate-limit counters live.

`dbcache://atelier_cache` (the default: the database; `migrate` creates the table, and the rate
limiter counts in its own table, `atelier.models.RateLimitCounter`) or `redis://host:6379/0`
(production; `?key_prefix=...` allowed), parsed by django-environ and then put right for the
rate limiter:
- Redis is always Django's own backend (django-environ picks django-redis when it is installed;
  lib.rediscache keeps one client per pool),
  whose unpickled integers the limiter's Lua script counts in;
- django-environ lower-cases the base options of that backend (`key_prefix`), which Django then
  ignores: they are upper-cased here;
- a Redis that is down must cost a request little, since the limiter then lets it through: short
  socket timeouts and one immediate retry (a stale pooled connection), not redis-py's default of
  three retries with exponential backoff;
- the database cache culls a third of its rows past MAX_ENTRIES (300 by default): the cap is raised.
"""

from __future__ import annotations

from typing import Any

import environ

DEFAULT_URL = "dbcache://atelier_cache"
REDIS_BACKEND = "lib.rediscache.ReusingRedisCache"  # Django's, one client per pool
DATABASE_MAX_ENTRIES = 100_000
REDIS_TIMEOUT_SECONDS = 0.5
BASE_OPTIONS = ("key_prefix", "timeout", "version", "key_function")


def cache_config(url: str) -> dict[str, Any]:
    config: dict[str, Any] = environ.Env.cache_url_config(url)
    if config["BACKEND"].endswith(".DatabaseCache"):
        config.setdefault("OPTIONS", {}).setdefault("MAX_ENTRIES", DATABASE_MAX_ENTRIES)
    elif config["BACKEND"].endswith("RedisCache"):
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        config["BACKEND"] = REDIS_BACKEND
        for name in BASE_OPTIONS:
            if name in config:
                config[name.upper()] = config.pop(name)
        options = config.setdefault("OPTIONS", {})
        options.setdefault("socket_connect_timeout", REDIS_TIMEOUT_SECONDS)
        options.setdefault("socket_timeout", REDIS_TIMEOUT_SECONDS)
        options.setdefault("retry", Retry(NoBackoff(), 1))
    return config
