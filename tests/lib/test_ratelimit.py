"""Rate limits (DESIGN.md section 4): every endpoint limited, each scope its own bucket per client IP
(behind TRUSTED_PROXY_COUNT proxies, IPv6 by /64), X-RateLimit-* on every response, 429 with
Retry-After, a sliding window, and fail-open when the cache is down.

Most tests run on the database cache, the default; the Redis ones (the production path, a Lua
script) skip when no Redis answers on 127.0.0.1:6379.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.core.cache import cache, caches
from django.test import Client, RequestFactory
from redis.backoff import NoBackoff
from redis.retry import Retry
from solders.keypair import Keypair

from agents.models import Agent
from atelier.models import RateLimitCounter
from atelier.openapi import DOCUMENT_RATE, api_endpoints
from lib import ratelimit
from lib.errors import RateLimited
from lib.ratelimit import Rate, Usage
from orders.models import Status
from tests.conftest import Api, make_order

REGISTER = "/api/agents/register"
REDIS_URL = "redis://127.0.0.1:6379/9"


def registration(number: int) -> dict[str, Any]:
    return {"name": f"Agent {number}", "description": "Makes things.", "payout_chain": "solana"}


def poll(agent: Any, **headers: str) -> Any:
    return agent.api.get(f"/api/agents/{agent.id}/orders", **headers)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


def redis_cache(url: str) -> dict[str, Any]:
    """CACHES as settings.py builds them for CACHE_URL=redis://... (timeouts, one retry)."""
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5, "retry": Retry(NoBackoff(), 1)},
        }
    }


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The limiter's clock, at a chosen second of a window."""

    class Clock:
        now = 1_800_000_000.0  # a multiple of 3600 and 100: the start of a window

        def __call__(self) -> float:
            return self.now

    fake = Clock()
    monkeypatch.setattr(ratelimit, "clock", fake)
    return fake


@pytest.fixture
def on_redis(settings: Any) -> Iterator[None]:
    if not redis_available():
        pytest.skip("no Redis on 127.0.0.1:6379 (start one: redis-server --daemonize yes)")
    settings.CACHES = redis_cache(REDIS_URL)
    yield
    client = caches["default"]._cache.get_client(write=True)  # type: ignore[attr-defined]  # django-redis's client, not in BaseCache
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


# --- every endpoint has its limit --------------------------------------------------------------


PRODUCT_TABLE = {
    ("POST", "/api/agents/register"): 5,
    ("POST", "/api/agents/{agent_id}/services"): 20,
    ("GET", "/api/agents/{agent_id}/orders"): 30,
    ("POST", "/api/orders"): 30,
    ("POST", "/api/orders/{order_id}/deliver"): 30,
    ("POST", "/api/upload"): 30,
    ("POST", "/api/orders/{order_id}/messages"): 60,
}


def test_every_endpoint_has_a_documented_limit_and_the_product_table_holds():
    endpoints = {(spec.method, path): spec for path, spec in api_endpoints()}
    for (method, path), limit in PRODUCT_TABLE.items():
        if (method, path) not in endpoints:
            continue  # an endpoint still being built elsewhere
        rate = endpoints[method, path].rate
        assert rate is not None, (method, path)
        assert (rate.limit, rate.window) == (limit, 3600), (method, path)
    defaults = []
    for (method, path), spec in endpoints.items():
        assert spec.rate is not None, (method, path)
        if "." in spec.rate.scope:  # no `rate=` declared: the default, "<app>.<view>"
            expected = ratelimit.READ_LIMIT if method == "GET" else ratelimit.WRITE_LIMIT
            assert spec.rate.limit == expected, (method, path, spec.rate)
            assert spec.rate.window == 3600
            defaults.append(spec.rate.scope)
    # Each endpoint without a declared limit has its own bucket (a declared one may be shared on
    # purpose, as sign-in's two steps are).
    assert len(defaults) == len(set(defaults))
    assert len(defaults) > 10


def test_the_document_states_each_limit(anonymous):
    doc = anonymous.get("/api/openapi.json").body
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            assert operation["description"].startswith("Rate limit: "), (method, path)
            assert "429" in operation["responses"], (method, path)
    register = doc["paths"]["/api/agents/register"]["post"]
    assert register["description"] == "Rate limit: 5 requests per hour per IP."
    assert set(register["responses"]["429"]["headers"]) == {
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "Retry-After",
    }
    assert doc["paths"]["/api/agents/me"]["get"]["description"] == "Rate limit: 600 requests per hour per IP."
    assert doc["paths"]["/api/agents/me"]["patch"]["description"] == "Rate limit: 120 requests per hour per IP."
    assert set(doc["components"]["headers"]) >= {"X-RateLimit-Limit", "Retry-After", "Idempotent-Replayed"}


# --- headers, 429, buckets ----------------------------------------------------------------------


def test_every_response_carries_the_headers_and_remaining_goes_down(agent, anonymous):
    seen = []
    for _ in range(3):
        response = agent.api.get("/api/agents/me")
        assert response.status_code == 200
        assert response["X-RateLimit-Limit"] == "600"
        assert int(response["X-RateLimit-Reset"]) % 3600 == 0  # the end of the current window
        seen.append(int(response["X-RateLimit-Remaining"]))
    assert seen == [599, 598, 597]
    # Refusals carry them too (a bad key is a 401 after the request was counted).
    refused = Api(Client(), {"Authorization": "Bearer atelier_nope_nope"}).get("/api/agents/me")
    assert refused.status_code == 401
    assert refused["X-RateLimit-Remaining"] == "596"
    document = anonymous.get("/api/openapi.json")
    assert document["X-RateLimit-Limit"] == str(DOCUMENT_RATE.limit)


def test_the_sixth_registration_is_429_with_retry_after_and_is_not_counted(db):
    api = Api(Client(REMOTE_ADDR="198.51.100.7"))
    remaining = [api.post(REGISTER, registration(n))["X-RateLimit-Remaining"] for n in range(5)]
    assert remaining == ["4", "3", "2", "1", "0"]

    sixth = api.post(REGISTER, registration(6))

    assert sixth.status_code == 429
    assert sixth.body["code"] == "rate_limited"
    assert 1 <= int(sixth["Retry-After"]) <= 2 * 3600
    assert sixth["X-RateLimit-Limit"] == "5"
    assert sixth["X-RateLimit-Remaining"] == "0"
    assert Agent.objects.count() == 5
    # A refusal is not counted: the bucket still holds the five that got in.
    current = _bucket_keys("register", "198.51.100.7")[0]
    assert RateLimitCounter.objects.get(bucket=current).count == 5


def _bucket_keys(scope: str, who: str) -> list[str]:
    index = int(ratelimit.clock() // 3600)
    return [f"rl:{scope}:{who}:{index}", f"rl:{scope}:{who}:{index - 1}"]


def test_each_scope_is_its_own_bucket_exhausting_messages_leaves_the_poll(buyer, agent):
    order = make_order(buyer, agent, Status.PAID)
    for number in range(60):
        assert agent.api.post(f"/api/orders/{order.id}/messages", {"content": f"Update {number}"}).status_code == 201
    limited = agent.api.post(f"/api/orders/{order.id}/messages", {"content": "One more"})
    assert limited.status_code == 429
    assert limited["X-RateLimit-Limit"] == "60"

    polled = poll(agent)
    assert polled.status_code == 200
    assert polled["X-RateLimit-Limit"] == "30"
    assert polled["X-RateLimit-Remaining"] == "29"
    # Reading messages is another bucket again.
    assert agent.api.get(f"/api/orders/{order.id}/messages").status_code == 200


def test_the_limit_is_per_ip_not_per_caller(agent, other_agent):
    """The product's table is per IP: two agents behind one address share the poll's 30."""
    for _ in range(15):
        assert poll(agent).status_code == 200
        assert poll(other_agent).status_code == 200
    assert poll(agent).status_code == 429
    assert poll(other_agent).status_code == 429
    elsewhere = Api(Client(REMOTE_ADDR="203.0.113.50"), dict(agent.api.headers))
    assert elsewhere.get(f"/api/agents/{agent.id}/orders").status_code == 200


# --- who is the client ------------------------------------------------------------------------


def test_ipv6_clients_are_limited_by_their_64(db):
    same_64 = ["2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe", "2001:db8:1:2:abcd::7", "2001:db8:1:2::2"]
    for number, address in enumerate([*same_64, "2001:db8:1:2::99"]):
        assert Api(Client(REMOTE_ADDR=address)).post(REGISTER, registration(number)).status_code == 201
    assert Api(Client(REMOTE_ADDR="2001:db8:1:2::100")).post(REGISTER, registration(9)).status_code == 429
    # The next /64 over is another client.
    assert Api(Client(REMOTE_ADDR="2001:db8:1:3::1")).post(REGISTER, registration(10)).status_code == 201


@pytest.mark.parametrize(
    ("remote", "forwarded", "hops", "expected"),
    [
        ("198.51.100.7", "", 0, "198.51.100.7"),
        ("198.51.100.7", "203.0.113.9", 0, "198.51.100.7"),  # no proxy trusted: the header is ignored
        ("10.0.0.2", "203.0.113.9", 1, "203.0.113.9"),
        ("10.0.0.2", "6.6.6.6, 203.0.113.9", 1, "203.0.113.9"),  # a spoofed left-most entry
        ("10.0.0.3", "6.6.6.6, 203.0.113.9, 10.0.0.2", 2, "203.0.113.9"),
        ("10.0.0.2", "", 1, "10.0.0.2"),  # not through the proxy: its own address
        ("::ffff:198.51.100.7", "", 0, "198.51.100.7"),  # IPv4 on a dual-stack socket
        ("2001:db8::1", "", 0, "2001:db8::/64"),
        ("10.0.0.2", "not an address, sure", 1, "sure"),
        ("10.0.0.2", "x, bad host name", 1, "bad_host_name"),  # still a valid cache key
    ],
)
def test_client_ip(settings, remote, forwarded, hops, expected):
    settings.TRUSTED_PROXY_COUNT = hops
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert ratelimit.client_ip(request) == expected


def test_a_spoofed_forwarded_for_does_not_escape_the_limit(db, settings):
    """Behind one proxy, which appends the address it saw: whatever the client writes to the left
    of that is not trusted, so a fresh fake address per request changes nothing."""
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = Client(REMOTE_ADDR="10.0.0.2")
    for number in range(5):
        forwarded = f"198.18.0.{number}, 203.0.113.9"
        response = proxy.post(
            REGISTER, registration(number), "application/json", headers={"X-Forwarded-For": forwarded}
        )
        assert response.status_code == 201
    for spoof in ("198.18.0.99", "1.1.1.1, 8.8.8.8", "203.0.113.10", "garbage"):
        response = proxy.post(
            REGISTER, registration(9), "application/json", headers={"X-Forwarded-For": f"{spoof}, 203.0.113.9"}
        )
        assert response.status_code == 429, spoof
    # Another real client behind the same proxy has its own bucket.
    other = proxy.post(REGISTER, registration(10), "application/json", headers={"X-Forwarded-For": "203.0.113.10"})
    assert other.status_code == 201


# --- the sliding window --------------------------------------------------------------------------


def _request(address: str = "198.51.100.7") -> Any:
    return RequestFactory().get("/", REMOTE_ADDR=address)


def test_the_previous_window_counts_by_how_much_of_it_still_overlaps(db, clock):
    rate = Rate("window-test", 10, 100)
    clock.now += 50  # the middle of window 0
    for _ in range(10):
        assert ratelimit.check(_request(), rate) is not None
    with pytest.raises(RateLimited):
        ratelimit.check(_request(), rate)

    clock.now += 100  # the middle of window 1: half of window 0's 10 still counts
    for expected_remaining in (4, 3, 2, 1, 0):
        assert _usage(ratelimit.check(_request(), rate)).remaining == expected_remaining
    with pytest.raises(RateLimited) as refused:
        ratelimit.check(_request(), rate)
    # 10 * (100 - 50 - t) / 100 + 5 + 1 <= 10  =>  t >= 10
    assert refused.value.retry_after == 10
    assert refused.value.reset == int(clock.now) + 10

    clock.now += 9
    with pytest.raises(RateLimited):
        ratelimit.check(_request(), rate)
    clock.now += 1
    assert ratelimit.check(_request(), rate) is not None


def test_retry_after_when_the_current_window_is_full_waits_for_it_to_slide_out(db, clock):
    rate = Rate("full-window", 4, 100)
    clock.now += 20
    for _ in range(4):
        ratelimit.check(_request(), rate)
    with pytest.raises(RateLimited) as refused:
        ratelimit.check(_request(), rate)
    # 80 s to the end of the window, then 4 * (100 - t) / 100 + 1 <= 4  =>  t >= 25
    assert refused.value.retry_after == 105
    clock.now += 104
    with pytest.raises(RateLimited):
        ratelimit.check(_request(), rate)
    clock.now += 1
    assert ratelimit.check(_request(), rate) is not None


# --- what it costs on the database ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_limiter_costs_one_read_and_one_upsert_on_the_database(django_assert_num_queries):
    """A SELECT of both buckets, then INSERT ... ON CONFLICT DO UPDATE (and, for a new bucket, a
    sweep of expired ones). A refusal is the SELECT alone."""
    rate = Rate("cost", 2, 3600)
    with django_assert_num_queries(3):
        ratelimit.check(_request(), rate)  # a new bucket: the upsert inserts, then the sweep
    with django_assert_num_queries(2):
        ratelimit.check(_request(), rate)
    with django_assert_num_queries(1), pytest.raises(RateLimited):
        ratelimit.check(_request(), rate)


def test_a_new_bucket_sweeps_the_expired_ones(db, clock):
    rate = Rate("sweep", 5, 100)
    ratelimit.check(_request("198.51.100.1"), rate)
    clock.now += 100
    ratelimit.check(_request("198.51.100.1"), rate)  # window 1: window 0 is still its "previous"
    assert RateLimitCounter.objects.filter(bucket__startswith="rl:sweep:").count() == 2
    clock.now += 150  # window 0's bucket expired (two windows after it began)

    ratelimit.check(_request("198.51.100.2"), rate)

    assert sorted(RateLimitCounter.objects.filter(bucket__startswith="rl:sweep:").values_list("bucket", flat=True)) == [
        "rl:sweep:198.51.100.1:18000001",
        "rl:sweep:198.51.100.2:18000002",
    ]


def test_the_counters_are_not_in_djangos_cache_table(db):
    """The database cache pickles its values, which SQL cannot increment: the counters have their own table."""
    Api(Client(REMOTE_ADDR="198.51.100.7")).post(REGISTER, registration(1))
    assert RateLimitCounter.objects.filter(bucket__startswith="rl:register:198.51.100.7:").get().count == 1
    assert cache.get(_bucket_keys("register", "198.51.100.7")[0]) is None


def test_on_locmem_the_counting_is_atomic_across_threads(settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "rl-threads"}
    }
    rate = Rate("locmem", 10, 3600)
    barrier = threading.Barrier(30)

    def one(_: int) -> bool:
        barrier.wait(timeout=10)
        try:
            return ratelimit.check(_request(), rate) is not None
        except RateLimited:
            return False

    with ThreadPoolExecutor(max_workers=30) as pool:
        admitted = list(pool.map(one, range(30)))

    assert admitted.count(True) == 10
    assert caches["default"].get(_bucket_keys("locmem", "198.51.100.7")[0]) == 10


# --- the cache is down: fail open ---------------------------------------------------------------


def test_with_the_cache_down_requests_pass_and_the_error_is_logged(db, settings, caplog):
    settings.CACHES = redis_cache(f"redis://127.0.0.1:{closed_port()}/0")
    api = Api(Client(REMOTE_ADDR="198.51.100.8"))

    with caplog.at_level(logging.ERROR, logger="atelier.ratelimit"):
        responses = [api.post(REGISTER, registration(number)) for number in range(7)]

    assert [response.status_code for response in responses] == [201] * 7  # over the limit of 5
    assert all("X-RateLimit-Limit" not in response for response in responses)
    errors = [record for record in caplog.records if record.name == "atelier.ratelimit"]
    assert errors, "the cache failure was not logged"
    assert "rate limit cache unavailable" in errors[0].getMessage()
    assert errors[0].exc_info is not None
    # Logged once, then the limiter stays off for a few seconds instead of failing on every request.
    assert len(errors) == 1
    assert Agent.objects.count() == 7


def test_after_the_trip_the_limiter_tries_the_cache_again(db, settings, monkeypatch):
    settings.CACHES = redis_cache(f"redis://127.0.0.1:{closed_port()}/0")
    rate = Rate("trip", 1, 3600)
    assert ratelimit.check(_request(), rate) is None
    calls: list[tuple[object, ...]] = []

    def counted(*args: object) -> tuple[bool, int, int]:
        calls.append(args)
        return True, 1, 0

    monkeypatch.setattr(ratelimit, "_count_redis", counted)
    assert ratelimit.check(_request(), rate) is None  # still tripped: the cache is not asked
    assert calls == []

    ratelimit._tripped[caches["default"]] = 0.0  # TRIP_SECONDS later

    assert ratelimit.check(_request(), rate) is not None
    assert len(calls) == 1


# --- Redis: one round trip, atomic ----------------------------------------------------------------


def test_on_redis_the_limit_holds_and_the_counters_are_plain_integers(db, on_redis):
    api = Api(Client(REMOTE_ADDR="198.51.100.9"))
    remaining = [api.post(REGISTER, registration(n))["X-RateLimit-Remaining"] for n in range(5)]
    assert remaining == ["4", "3", "2", "1", "0"]
    sixth = api.post(REGISTER, registration(6))
    assert sixth.status_code == 429
    assert 1 <= int(sixth["Retry-After"]) <= 2 * 3600
    # Django's RedisCache reads what the Lua script wrote.
    assert cache.get(_bucket_keys("register", "198.51.100.9")[0]) == 5
    assert Api(Client(REMOTE_ADDR="198.51.100.10")).post(REGISTER, registration(7)).status_code == 201


def test_on_redis_the_sliding_window_matches_the_portable_one(db, on_redis, clock):
    rate = Rate("window-test", 10, 100)
    clock.now += 50
    for _ in range(10):
        ratelimit.check(_request(), rate)
    clock.now += 100
    assert [_usage(ratelimit.check(_request(), rate)).remaining for _ in range(5)] == [4, 3, 2, 1, 0]
    with pytest.raises(RateLimited) as refused:
        ratelimit.check(_request(), rate)
    assert refused.value.retry_after == 10


# --- CACHE_URL ----------------------------------------------------------------------------------


def test_cache_url_redis_gives_djangos_backend_with_its_prefix_and_short_timeouts(monkeypatch):
    import environ

    from lib.caches import cache_config

    # Even where django-environ would choose django-redis (installed next to us some day).
    monkeypatch.setitem(environ.Env.CACHE_SCHEMES, "redis", "django_redis.cache.RedisCache")
    config = cache_config("redis://127.0.0.1:6379/3?key_prefix=atelier&timeout=60")

    assert config["BACKEND"] == "lib.rediscache.ReusingRedisCache"  # Django's, one client per pool
    assert config["LOCATION"] == "redis://127.0.0.1:6379/3"
    assert (config["KEY_PREFIX"], config["TIMEOUT"]) == ("atelier", 60)
    assert "key_prefix" not in config
    assert config["OPTIONS"]["socket_connect_timeout"] == config["OPTIONS"]["socket_timeout"] == 0.5
    assert config["OPTIONS"]["retry"].get_retries() == 1


def test_cache_url_default_is_the_database_cache_without_the_300_row_cull():
    from lib.caches import DEFAULT_URL, cache_config

    config = cache_config(DEFAULT_URL)
    assert config["BACKEND"] == "django.core.cache.backends.db.DatabaseCache"
    assert config["LOCATION"] == "atelier_cache"
    assert config["OPTIONS"]["MAX_ENTRIES"] == 100_000


def test_sign_in_is_limited_per_wallet_with_a_looser_limit_per_ip_and_the_wait_in_minutes(db):
    """An office behind one address signs in many wallets; one wallet cannot flood challenges."""
    from identity.sessions import SIGNIN_RATE, SIGNIN_WALLET_RATE

    assert SIGNIN_RATE.limit >= 10 * SIGNIN_WALLET_RATE.limit
    api = Api(Client(REMOTE_ADDR="198.51.100.8"))
    wallet, other = str(Keypair().pubkey()), str(Keypair().pubkey())
    for _ in range(SIGNIN_WALLET_RATE.limit):
        assert api.post("/api/auth/nonce", {"wallet": wallet, "chain": "solana"}).status_code == 201

    refused = api.post("/api/auth/nonce", {"wallet": wallet, "chain": "solana"})
    colleague = api.post("/api/auth/nonce", {"wallet": other, "chain": "solana"})

    assert refused.status_code == 429
    assert "per wallet" in refused.body["error"]
    assert re.search(r"Try again in \d+ minutes?\.$", refused.body["error"]), refused.body["error"]
    assert colleague.status_code == 201


def _usage(usage: Usage | None) -> Usage:
    assert usage is not None  # counted, not tripped
    return usage
