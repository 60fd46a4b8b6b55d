"""AgentRunner's pace and its reactions, on a fake server and a fake clock: a 429 on the agent poll
waits exactly the Retry-After, the poll spreads the window's remaining requests, revisions and
disputes reach the handler, webhooks act on their order at once. Nothing sleeps for real."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from atelier_client import AgentRunner, Delivery, Handler
from atelier_client.webhooks import WebhookVerificationError

from tests.clients.test_transport import FakeServer, fail, ok
from webhooks.services import body_bytes, signed_headers

ME = {"id": "agt_1", "name": "Writer"}
SECRET = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Writer(Handler):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def quote(self, ctx: Any, order: Any) -> Decimal:
        return Decimal("30.00")

    def work(self, ctx: Any, order: Any) -> Delivery:
        self.seen.append(("work", order.id))
        return Delivery.link(f"https://cdn.example.com/{order.id}.md", "document")

    def revise(self, ctx: Any, order: Any) -> Delivery:
        self.seen.append(("revise", order.revision_feedback))
        return Delivery.link(f"https://cdn.example.com/{order.id}-2.md", "document")

    def dispute(self, ctx: Any, order: Any) -> str:
        return "Tell me what to change."


def listing(*orders: dict[str, Any], remaining: int = 29, reset: float = 1_003_600) -> httpx.Response:
    return httpx.Response(
        200,
        json={"success": True, "data": list(orders), "next_cursor": None},
        headers={
            "X-RateLimit-Limit": "30",
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(int(reset)),
        },
    )


def runner_on(server: FakeServer, clock: FakeClock, **kwargs: Any) -> AgentRunner:
    # The client's own waits are recorded in server.slept, the runner's on the clock.
    return AgentRunner(server.client(), kwargs.pop("handler", Writer()), clock=clock, **kwargs)


def test_a_rate_limited_poll_waits_exactly_the_retry_after_on_the_clock():
    clock = FakeClock()
    server = FakeServer(ok(ME), fail(429, "rate_limited", headers={"Retry-After": "1500"}), listing())
    started = time.monotonic()

    runner_on(server, clock).run(max_polls=2)

    assert clock.slept == [1500.0]  # the client did not wait itself (longer than its max_wait)
    assert server.slept == []
    assert [request.url.path for request in server.requests] == [
        "/api/agents/me",
        "/api/agents/agt_1/orders",
        "/api/agents/agt_1/orders",
    ]
    assert time.monotonic() - started < 5


def test_polls_are_paced_to_last_the_window():
    clock = FakeClock()
    # 10 requests left and 3000 s until the window resets: one poll every 300 s, not every 120 s.
    server = FakeServer(
        ok(ME), listing(remaining=10, reset=clock.now + 3000), listing(remaining=9, reset=clock.now + 3000)
    )
    runner_on(server, clock).run(max_polls=2)
    assert clock.slept == [300.0]

    clock = FakeClock()
    server = FakeServer(ok(ME), listing(remaining=29, reset=clock.now + 60), listing())
    runner_on(server, clock).run(max_polls=2)
    assert clock.slept == [120.0]  # never faster than 3600 / 30


def test_each_status_reaches_its_handler_and_the_server_is_told():
    pending = {"id": "ord_q", "status": "pending_quote", "allowed_actions": ["quote", "cancel"]}
    paid = {"id": "ord_p", "status": "paid", "allowed_actions": ["start", "deliver", "cancel"]}
    revision = {
        "id": "ord_r",
        "status": "revision_requested",
        "allowed_actions": ["deliver"],
        "revision_feedback": "Shorter.",
        "revision_count": 1,
    }
    disputed = {"id": "ord_d", "status": "disputed", "allowed_actions": ["deliver"]}
    buyer_said = {"id": "msg_1", "sender_role": "buyer", "content": "This is not what I asked."}
    agent_said = {"id": "msg_2", "sender_role": "agent", "content": "Tell me what to change."}
    clock = FakeClock()
    handler = Writer()
    server = FakeServer(
        ok(ME),
        listing(disputed, revision, paid, pending),  # newest first; handled oldest first
        ok({**pending, "status": "quoted"}),
        ok({**paid, "status": "in_progress"}),
        ok({**paid, "status": "delivered"}),
        ok({**revision, "status": "delivered"}),
        ok([buyer_said], next_cursor=None),
        ok(agent_said, 201),
        listing(disputed),
        ok([buyer_said, agent_said], next_cursor=None),  # the agent spoke last: waiting for the buyer
    )
    runner = runner_on(server, clock, handler=handler)

    assert [(a.order_id, a.action) for a in runner.poll()] == [
        ("ord_q", "quote"),
        ("ord_p", "start"),
        ("ord_p", "deliver"),
        ("ord_r", "deliver"),
        ("ord_d", "message"),
    ]
    assert handler.seen == [("work", "ord_p"), ("revise", "Shorter.")]
    assert runner.poll() == []
    writes = [r for r in server.requests if r.method == "POST"]
    assert [r.url.path for r in writes] == [
        "/api/orders/ord_q/quote",
        "/api/orders/ord_p/start",
        "/api/orders/ord_p/deliver",
        "/api/orders/ord_r/deliver",
        "/api/orders/ord_d/messages",
    ]
    assert all(r.headers["Idempotency-Key"].startswith("runner-") for r in writes)


def test_an_order_that_moved_on_is_skipped_and_the_others_still_handled():
    one = {"id": "ord_1", "status": "paid", "allowed_actions": ["start"]}
    two = {"id": "ord_2", "status": "pending_quote", "allowed_actions": ["quote"]}
    server = FakeServer(
        ok(ME),
        listing(two, one),
        fail(409, "invalid_transition", {"status": "cancelled", "allowed_actions": []}),
        ok({**two, "status": "quoted"}),
    )
    assert [(a.order_id, a.action) for a in runner_on(server, FakeClock()).poll()] == [("ord_2", "quote")]


def test_a_webhook_is_verified_and_its_order_handled_at_once():
    order = {"id": "ord_w", "agent_id": "agt_1", "status": "pending_quote", "allowed_actions": ["quote"]}
    server = FakeServer(ok(order), ok(ME), ok({**order, "status": "quoted"}))
    runner = runner_on(server, FakeClock(), webhook_secret=SECRET)
    body = body_bytes({"event": "order.created", "order_id": "ord_w", "data": {}})
    headers = signed_headers(secret=SECRET, delivery_id="whk_1", timestamp=int(time.time()), body=body)

    assert [(a.order_id, a.action) for a in runner.handle_webhook(headers, body)] == [("ord_w", "quote")]
    assert "/api/agents/agt_1/orders" not in [r.url.path for r in server.requests]  # no poll spent
    with pytest.raises(WebhookVerificationError):
        runner.handle_webhook(headers, body.replace(b"ord_w", b"ord_x"))


def test_unanswered_buyer_messages_reach_the_message_hook_once():
    class Chatty(Handler):
        def message(self, ctx: Any, order: Any, unanswered: list[Any]) -> str:
            return f"Got {len(unanswered)} message(s)."

    order = {"id": "ord_m", "status": "in_progress", "allowed_actions": ["deliver"]}
    older = {"id": "msg_1", "sender_role": "agent", "content": "Started."}
    asks = [{"id": f"msg_{i}", "sender_role": "buyer", "content": "Any news?"} for i in (2, 3)]
    reply = {"id": "msg_4", "sender_role": "agent", "content": "Got 2 message(s)."}
    server = FakeServer(
        ok(ME),
        listing(order),
        ok([older, *asks], next_cursor=None),
        ok(reply, 201),
        listing(order),
        ok([older, *asks, reply], next_cursor=None),
    )
    runner = runner_on(server, FakeClock(), handler=Chatty())

    assert [(a.action, a.detail) for a in runner.poll()] == [("message", "Got 2 message(s).")]
    assert runner.poll() == []  # answered: the agent spoke last


def test_a_rate_limited_action_stops_the_pass_until_its_retry_after():
    one = {"id": "ord_1", "status": "in_progress", "allowed_actions": ["deliver"]}
    two = {"id": "ord_2", "status": "in_progress", "allowed_actions": ["deliver"]}
    clock = FakeClock()
    server = FakeServer(
        ok(ME),
        listing(two, one),
        fail(429, "rate_limited", headers={"Retry-After": "900"}),  # deliver: 30 an hour
        listing(two, one),
        ok({**one, "status": "delivered"}),
        ok({**two, "status": "delivered"}),
    )
    runner = runner_on(server, clock)

    runner.run(max_polls=2)

    assert clock.slept == [900.0]
    delivered = [r.url.path for r in server.requests if r.url.path.endswith("/deliver")]
    assert delivered == ["/api/orders/ord_1/deliver", "/api/orders/ord_1/deliver", "/api/orders/ord_2/deliver"]


def test_a_server_that_is_down_is_tried_again_at_the_next_poll():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    clock = FakeClock()
    server = FakeServer(ok(ME), refuse, refuse, refuse, refuse, listing())
    runner_on(server, clock).run(max_polls=2)
    assert clock.slept == [120.0]
    assert len(server.slept) == 3  # the client's own backoff, then the runner's interval


def test_a_message_after_delivery_is_answered_and_one_left_unanswered_is_not_read_again():
    class Picky(Handler):
        def message(self, ctx: Any, order: Any, unanswered: list[Any]) -> str | None:
            return "Thanks!" if "?" in unanswered[-1].content else None

    delivered = {"id": "ord_d", "agent_id": "agt_1", "status": "delivered", "allowed_actions": []}
    done = {"id": "ord_c", "agent_id": "agt_1", "status": "completed", "allowed_actions": []}
    question = {"id": "msg_2", "sender_role": "buyer", "content": "Can it be blue?"}
    remark = {"id": "msg_3", "sender_role": "buyer", "content": "Great work."}
    needs_reply = [{"order_id": "ord_c", "message_id": "msg_3"}, {"order_id": "ord_d", "message_id": "msg_2"}]

    def listing_with(waiting: list[dict[str, str]]) -> httpx.Response:
        return httpx.Response(200, json={"success": True, "data": [], "next_cursor": None, "needs_reply": waiting})

    server = FakeServer(
        ok(ME),
        listing_with(needs_reply),
        ok(delivered),  # oldest first: ord_d
        ok([question], next_cursor=None),
        ok({"id": "msg_4", "sender_role": "agent", "content": "Thanks!"}, 201),
        ok(done),
        ok([remark], next_cursor=None),  # declined: None
        listing_with(needs_reply[:1]),  # ord_c still waits on the same message: not read again
    )
    runner = runner_on(server, FakeClock(), handler=Picky())

    assert [(a.order_id, a.action) for a in runner.poll()] == [("ord_d", "message")]
    assert runner.poll() == []
    assert server.requests[1].url.params["needs_reply"] == "true"
    assert [r.url.path for r in server.requests[-1:]] == ["/api/agents/agt_1/orders"]
