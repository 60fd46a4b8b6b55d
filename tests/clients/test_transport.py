"""The client's HTTP behaviour on a fake server (httpx.MockTransport) and a fake clock: the
envelope unwrapped, typed errors per status and code, pagination, an Idempotency-Key on every
POST and PATCH reused on its retries, and waits that honour Retry-After (never real sleeping)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from atelier_client import (
    AtelierClient,
    AuthenticationError,
    ConflictError,
    IdempotencyKeyReusedError,
    InvalidTransitionError,
    NotFoundError,
    PaymentRejectedError,
    PaymentRequiredError,
    RateLimitError,
    RetryPolicy,
    ServiceUnavailableError,
    ValidationError,
    WalletSignatureError,
)
from atelier_client.buyer import SolanaWallet
from solders.keypair import Keypair

ORDER = {"id": "ord_1", "status": "paid", "allowed_actions": ["start", "deliver"], "quoted_price_usd": "45.00"}


def ok(data: Any, status: int = 200, **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"success": True, "data": data, **extra})


def fail(
    status: int, code: str, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None, **extra: Any
) -> httpx.Response:
    body = {"success": False, "error": f"{code}.", "code": code, "details": details or {}, **extra}
    return httpx.Response(status, json=body, headers=headers)


class FakeServer:
    """Answers from a script, one response a request, and records the requests."""

    def __init__(self, *responses: httpx.Response | Callable[[httpx.Request], httpx.Response]) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []
        self.slept: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.responses.pop(0)
        return answer(request) if callable(answer) else answer

    def client(self, **kwargs: Any) -> AtelierClient:
        kwargs.setdefault("api_key", "atelier_test")
        kwargs.setdefault("sleep", self.slept.append)
        return AtelierClient("http://atelier.test", http=httpx.Client(transport=httpx.MockTransport(self)), **kwargs)


def test_the_envelope_is_unwrapped_into_typed_models():
    server = FakeServer(ok(ORDER))
    order = server.client().orders.get("ord_1")

    assert (order.id, order.status, str(order.quoted_price_usd)) == ("ord_1", "paid", "45.00")
    assert order.can("deliver")
    assert not order.can("approve")
    assert server.requests[0].headers["Authorization"] == "Bearer atelier_test"
    assert "Idempotency-Key" not in server.requests[0].headers


@pytest.mark.parametrize(
    ("response", "error", "check"),
    [
        (
            fail(400, "validation_error", {"price_usd": "must be positive"}),
            ValidationError,
            lambda e: e.details == {"price_usd": "must be positive"},
        ),
        (fail(401, "invalid_api_key"), AuthenticationError, lambda e: e.code == "invalid_api_key"),
        (fail(404, "order_not_found"), NotFoundError, lambda e: e.status == 404),
        (
            fail(409, "invalid_transition", {"status": "delivered", "allowed_actions": ["deliver"]}),
            InvalidTransitionError,
            lambda e: (e.allowed_actions, e.current_status) == (["deliver"], "delivered"),
        ),
        (fail(409, "already_reviewed"), ConflictError, lambda e: type(e) is ConflictError),
        (fail(401, "signature_replayed"), WalletSignatureError, lambda e: isinstance(e, AuthenticationError)),
        (fail(400, "underpaid", {"missing": 5}), PaymentRejectedError, lambda e: isinstance(e, ValidationError)),
        (fail(422, "idempotency_key_reused"), IdempotencyKeyReusedError, lambda e: e.status == 422),
        (
            fail(402, "payment_required", {"reference": "ref_1"}, x402Version=2, accepts=[{"network": "solana:x"}]),
            PaymentRequiredError,
            lambda e: (
                (e.reference, e.accepts, e.requirements["x402Version"]) == ("ref_1", [{"network": "solana:x"}], 2)
            ),
        ),
    ],
)
def test_failures_raise_typed_errors(response, error, check):
    server = FakeServer(response)
    with pytest.raises(error) as caught:
        server.client().orders.quote("ord_1", "45.00")
    assert check(caught.value)
    assert server.slept == []  # not retried


def test_a_429_waits_its_retry_after_and_reuses_the_idempotency_key():
    server = FakeServer(fail(429, "rate_limited", headers={"Retry-After": "7"}), ok(ORDER))
    order = server.client().orders.deliver("ord_1", "https://cdn.example.com/a.png", "image")

    assert order.id == "ord_1"
    assert server.slept == [7.0]
    first, second = (request.headers["Idempotency-Key"] for request in server.requests)
    assert first == second
    assert json.loads(server.requests[1].content) == {
        "deliverable_url": "https://cdn.example.com/a.png",
        "deliverable_media_type": "image",
    }


def test_a_retry_after_longer_than_max_wait_is_raised_at_once_with_retry_after():
    server = FakeServer(fail(429, "rate_limited", headers={"Retry-After": "1800"}))
    with pytest.raises(RateLimitError) as caught:
        server.client().orders.list_for_agent("agt_1").first_page()
    assert caught.value.retry_after == 1800
    assert server.slept == []


def test_503_and_connection_errors_back_off_then_give_up():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    server = FakeServer(fail(503, "chain_unavailable"), refuse, ok(ORDER))
    assert server.client().orders.pay("ord_1", "sig", payment_chain="solana").id == "ord_1"
    assert len(server.slept) == 2
    assert 0.25 <= server.slept[0] <= 0.5
    assert 0.5 <= server.slept[1] <= 1.0
    assert len({request.headers["Idempotency-Key"] for request in server.requests}) == 1

    server = FakeServer(*(fail(503, "chain_unavailable") for _ in range(3)))
    with pytest.raises(ServiceUnavailableError):
        server.client(retry=RetryPolicy(max_retries=2)).orders.pay("ord_1", "sig", payment_chain="solana")
    assert len(server.requests) == 3


def test_each_post_gets_its_own_key_unless_one_is_given():
    server = FakeServer(ok(ORDER, 201), ok(ORDER, 201), ok(ORDER, 201))
    client = server.client()
    client.orders.create("svc_1", "A brief of some length.")
    client.orders.create("svc_1", "A brief of some length.")
    client.orders.create("svc_1", "A brief of some length.", idempotency_key="mine")
    keys = [request.headers["Idempotency-Key"] for request in server.requests]
    assert keys[0] != keys[1]
    assert keys[2] == "mine"


def test_pages_are_fetched_as_the_iteration_reaches_them():
    server = FakeServer(
        ok([ORDER, {**ORDER, "id": "ord_2"}], next_cursor="ord_2"), ok([{**ORDER, "id": "ord_3"}], next_cursor=None)
    )
    page = server.client().orders.list_for_agent("agt_1", status=["paid", "in_progress"])

    assert [order.id for order in page] == ["ord_1", "ord_2", "ord_3"]
    assert page.pages == 2
    assert server.requests[0].url.params["status"] == "paid,in_progress"
    assert server.requests[1].url.params["before"] == "ord_2"


def test_a_wallet_signs_each_attempt_afresh_over_the_exact_bytes():
    wallet = SolanaWallet(Keypair())
    server = FakeServer(fail(429, "rate_limited", headers={"Retry-After": "1"}), ok(ORDER))
    server.client(api_key=None, credentials=wallet).orders.act("ord_1", "approve")

    first, second = server.requests
    assert first.headers["X-Atelier-Wallet"] == wallet.address
    assert first.headers["X-Atelier-Wallet-Signature-Version"] == "2"
    assert first.headers["X-Atelier-Wallet-Signature"] != second.headers["X-Atelier-Wallet-Signature"] or (
        first.headers["X-Atelier-Wallet-Timestamp"] == second.headers["X-Atelier-Wallet-Timestamp"]
    )
    assert first.content == second.content == b'{"action":"approve"}'


def test_the_async_twin_awaits_the_same_calls():
    import asyncio

    from atelier_client.aio import AsyncAtelierClient

    server = FakeServer(ok(ORDER), ok([ORDER], next_cursor=None))

    async def main() -> tuple[Any, Any]:
        async with AsyncAtelierClient(
            "http://atelier.test", api_key="atelier_test", http=httpx.AsyncClient(transport=httpx.MockTransport(server))
        ) as client:
            return await client.orders.get("ord_1"), [o async for o in client.orders.list_for_agent("agt_1")]

    order, listed = asyncio.run(main())
    assert order.id == "ord_1"
    assert [o.id for o in listed] == ["ord_1"]


def test_the_async_client_keeps_a_hundred_calls_in_flight_at_once():
    """On httpx.AsyncClient, not the sync client in a thread pool (which kept 6 in flight on 2 cores)."""
    import asyncio

    from atelier_client.aio import AsyncAtelierClient

    in_flight = {"now": 0, "most": 0}

    async def slow_server(request: httpx.Request) -> httpx.Response:
        in_flight["now"] += 1
        in_flight["most"] = max(in_flight["most"], in_flight["now"])
        await asyncio.sleep(0.05)
        in_flight["now"] -= 1
        return ok({"id": "agt_1", "name": "Writer"})

    async def main() -> list[Any]:
        http = httpx.AsyncClient(transport=httpx.MockTransport(slow_server))
        async with AsyncAtelierClient("http://atelier.test", api_key="atelier_test", http=http) as client:
            return await asyncio.gather(*(client.agents.me() for _ in range(100)))

    answers = asyncio.run(main())
    assert [agent.id for agent in answers] == ["agt_1"] * 100
    assert in_flight["most"] == 100


def test_limit_caps_a_listing_and_asks_for_no_more_than_it_needs():
    server = FakeServer(ok([ORDER, {**ORDER, "id": "ord_2"}, {**ORDER, "id": "ord_3"}], next_cursor="ord_3"))
    page = server.client().orders.list(limit=3)
    assert [order.id for order in page] == ["ord_1", "ord_2", "ord_3"]
    assert page.pages == 1
    assert server.requests[0].url.params["limit"] == "3"


def test_an_endpoint_url_of_none_clears_it_and_warnings_are_read():
    warning = "Webhooks to endpoint_url would be refused: not a public address."
    server = FakeServer(ok({"id": "agt_1", "endpoint_url": ""}, warnings=[warning]))
    agent = server.client().agents.update_me(endpoint_url=None)
    assert json.loads(server.requests[0].content) == {"endpoint_url": ""}
    assert agent.warnings == [warning]


def test_delivery_file_takes_a_str_as_its_text_and_a_path_as_a_file(tmp_path):
    from pathlib import Path

    from atelier_client import Delivery

    assert Delivery.file("# Not a path\n", "piece.md").content == b"# Not a path\n"
    written = tmp_path / "fox.md"
    written.write_bytes(b"# From disk\n")
    from_disk = Delivery.file(Path(written))
    assert (from_disk.content, from_disk.filename) == (b"# From disk\n", "fox.md")
