"""One JSON line per request and per task, with a request id and the order id, and no secret in any
line: the captured log of a whole order is grepped for every credential the order used."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

from agents.models import Agent
from lib.requestlog import ContextFilter, JsonFormatter, redact
from orders.core.transitions import transition
from orders.models import Order, Status
from tests.conftest import Api, make_order, make_payment, make_service


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the production handler writes (the JSON formatter and the context filter), captured."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_a_whole_order_logs_request_ids_order_ids_and_no_secret(buyer, json_log, django_capture_on_commit_callbacks):
    anonymous = Api(Client())
    registered = anonymous.post(
        "/api/agents/register",
        {"name": "Log Forge", "description": "Makes things for the log test.", "payout_chain": "solana"},
    )
    assert registered.status_code == 201, registered.body
    key = registered.body["data"]["api_key"]
    webhook_secret = registered.body["data"]["webhook_secret"]
    agent = Api(Client(), {"Authorization": f"Bearer {key}"})
    agent_id = registered.body["data"]["agent"]["id"]
    service = make_service(Agent.objects.get(pk=agent_id), price_type="quote", price="0.00")
    token = buyer.api.headers["Authorization"].removeprefix("Bearer ")

    with django_capture_on_commit_callbacks(execute=True):
        created = buyer.api.post(
            "/api/orders",
            {"service_id": service.id, "brief": "Draw a fox in a lab coat, flat colours."},
            **{"X-Request-ID": "client-chosen-id-1"},
        )
        order_id = created.body["data"]["id"]
        agent.post(f"/api/orders/{order_id}/quote", {"price_usd": "45.00"})
        buyer.api.patch(f"/api/orders/{order_id}", {"action": "accept"})
        transition(order_id, "pay", buyer.principal, payment=make_payment(Order.objects.get(pk=order_id)))
        agent.post(f"/api/orders/{order_id}/start")
        agent.post(
            f"/api/orders/{order_id}/deliver",
            {"deliverable_url": "https://cdn.example.com/result.png", "deliverable_media_type": "image"},
        )
        buyer.api.patch(f"/api/orders/{order_id}", {"action": "approve"})
        # The product's per-request signature in a query string (GET only): never logged.
        ts = "1780278669252"
        sig = buyer.sign(f"atelier:{buyer.wallet}:{ts}")
        Client().get(f"/api/orders/{order_id}?wallet={buyer.wallet}&wallet_sig={sig}&wallet_sig_ts={ts}")
    assert Order.objects.get(pk=order_id).status == Status.COMPLETED
    assert created["X-Request-ID"] == "client-chosen-id-1"

    captured = json_log.getvalue()
    records = lines(json_log)
    requests = [r for r in records if r.get("event") == "request"]
    assert len(requests) >= 8
    assert all(r["request_id"] and r["status"] and r["duration_ms"] is not None for r in requests)
    assert len({r["request_id"] for r in requests}) == len(requests)  # one id per request
    first = next(r for r in requests if r["request_id"] == "client-chosen-id-1")
    assert (first["method"], first["path"], first["status"], first["order_id"]) == (
        "POST",
        "/api/orders",
        201,
        order_id,
    )
    on_order = [r for r in requests if r["path"].startswith(f"/api/orders/{order_id}")]
    assert on_order
    assert all(r["order_id"] == order_id for r in on_order)
    # Lines written inside a request carry its id and order (the task it queued, for one).
    deliver = next(r for r in requests if r["path"].endswith("/deliver"))
    queued = next(r for r in records if r.get("event") == "task.enqueued" and r["task"].endswith("fetch_deliverables"))
    assert (queued["request_id"], queued["order_id"]) == (deliver["request_id"], order_id)

    for secret in (key, webhook_secret, token, sig, django_settings.SECRET_KEY, key.split("_", 2)[2]):
        assert secret not in captured
    assert "wallet_sig" not in captured


def test_a_request_id_that_is_not_a_plain_token_is_replaced(db, json_log):
    response = Client().get("/healthz", HTTP_X_REQUEST_ID='bad id" injected\n{"level": "ERROR"}')
    made = response["X-Request-ID"]
    assert len(made) == 32
    assert '"level": "ERROR"' not in json_log.getvalue()
    assert lines(json_log)[-1]["request_id"] == made


def test_tasks_log_one_line_each_with_their_order(buyer, agent, json_log, settings, django_capture_on_commit_callbacks):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    order = make_order(buyer, agent, Status.DELIVERED)
    with django_capture_on_commit_callbacks(execute=True):
        transition(order.id, "approve", buyer.principal)
    tasks = [r for r in lines(json_log) if r.get("event") == "task"]
    assert tasks
    assert all(r["task_id"] and r["status"] in ("SUCCESSFUL", "FAILED") for r in tasks)
    assert any(r["order_id"] == order.id for r in tasks)


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer atelier_abcd1234_0123456789abcdefghij",
        "session atws_0123456789abcdefghijkl",
        "secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "key 0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318",
        '{"password": "hunter2"}',
        "SECRET_KEY=test-only-9f3c1e7a",
    ],
)
def test_redact_masks_credential_shapes(text):
    masked = redact(text)
    assert "[redacted]" in masked
    for fragment in ("abcd1234_0123", "atws_0123", "MfKQ9r8", "4c0883a6", "hunter2", "9f3c1e7a"):
        assert fragment not in masked
