"""Idempotency-Key on every POST and PATCH (DESIGN.md section 4): the same key and body replay the
first answer; another body is a 422; keys are the caller's, per method and path; they expire
after 24 hours; 8 concurrent requests with one key create one order."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from agents.models import Agent
from idempotency import services
from idempotency.models import IdempotencyKey, State
from lib.errors import ServiceUnavailable
from orders.models import Message, Order, Status, Upload
from tests.conftest import Api, make_buyer, make_order, make_service
from tests.orders.files_support import use_private_tmp

BRIEF = "A fox in a lab coat, flat colours, 2048 px."


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def order_body(service: Any, brief: str = BRIEF) -> dict[str, Any]:
    return {"service_id": service.id, "brief": brief}


@pytest.fixture
def service(agent: Any) -> Any:
    return make_service(agent.agent, price_type="fixed", price="25.00")


# --- replay ----------------------------------------------------------------------------------


def test_the_same_key_and_body_replay_the_first_answer_without_a_second_order(buyer, service):
    headers = key()
    first = buyer.api.post("/api/orders", order_body(service), **headers)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first

    again = buyer.api.post("/api/orders", order_body(service), **headers)

    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.body == first.body
    assert again["Content-Type"] == "application/json"
    assert Order.objects.count() == 1
    # A replay is still a request: it is rate-limited and says so.
    assert int(again["X-RateLimit-Remaining"]) == int(first["X-RateLimit-Remaining"]) - 1


def test_key_order_and_whitespace_in_the_body_do_not_make_another_request(buyer, service):
    headers = key()
    assert buyer.api.post("/api/orders", {"brief": BRIEF, "service_id": service.id}, **headers).status_code == 201
    raw = f'{{ "service_id" : "{service.id}",\n  "brief": "{BRIEF}" }}'
    again = buyer.api.post("/api/orders", raw, **headers)
    assert again["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1


def test_without_a_key_each_post_is_a_new_order(buyer, service):
    buyer.api.post("/api/orders", order_body(service))
    buyer.api.post("/api/orders", order_body(service))
    assert Order.objects.count() == 2


def test_patch_replays_too(buyer, agent):
    order = make_order(buyer, agent, Status.QUOTED)
    headers = key()
    first = buyer.api.patch(f"/api/orders/{order.id}", {"action": "accept"}, **headers)
    assert first.status_code == 200
    assert first.body["data"]["status"] == Status.ACCEPTED

    again = buyer.api.patch(f"/api/orders/{order.id}", {"action": "accept"}, **headers)

    # Without the key this would be a 409 (already accepted); with it, the first answer.
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.body == first.body
    assert Order.objects.get(pk=order.id).status == Status.ACCEPTED


def test_a_4xx_answer_is_stored_and_replayed(buyer, agent):
    order = make_order(buyer, agent, Status.PENDING_QUOTE)
    headers = key()
    first = buyer.api.patch(f"/api/orders/{order.id}", {"action": "accept"}, **headers)
    assert first.status_code == 409
    assert first.body["code"] == "invalid_transition"

    again = buyer.api.patch(f"/api/orders/{order.id}", {"action": "accept"}, **headers)

    assert again.status_code == 409
    assert again.body == first.body
    assert again["Idempotent-Replayed"] == "true"


def test_a_request_that_fails_validation_does_not_use_up_its_key(buyer, service):
    headers = key()
    bad = buyer.api.post("/api/orders", {"service_id": service.id, "brief": "short"}, **headers)
    assert bad.status_code == 400
    assert not IdempotencyKey.objects.exists()

    fixed = buyer.api.post("/api/orders", order_body(service), **headers)

    assert fixed.status_code == 201
    assert "Idempotent-Replayed" not in fixed


def test_a_retry_signed_afresh_is_the_same_request(buyer, service):
    """The per-request signature changes with each try (its timestamp); it is a credential, not the body."""

    def signed(ts: int) -> dict[str, Any]:
        return {
            **order_body(service),
            "wallet": buyer.wallet,
            "wallet_sig": buyer.sign(f"atelier:{buyer.wallet}:{ts}"),
            "wallet_sig_ts": str(ts),
        }

    headers = key()
    now = int(time.time())
    first = Api(Client()).post("/api/orders", signed(now), **headers)
    assert first.status_code == 201
    again = Api(Client()).post("/api/orders", signed(now + 1), **headers)
    assert again["Idempotent-Replayed"] == "true"
    assert again.body == first.body
    # The same wallet with a session token is the same caller.
    assert buyer.api.post("/api/orders", order_body(service), **headers)["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1


def test_an_upload_replays_by_key_and_its_length_tells_another_file(agent, settings, tmp_path):
    """A multipart body is not read before the view (it streams the file with its own limits): the
    upload's fingerprint is its length, the same on a retry of the same file."""
    use_private_tmp(settings, tmp_path)
    pdf = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"

    def upload(content: bytes) -> Any:
        file = SimpleUploadedFile("brief.pdf", content, "application/pdf")
        return agent.api.client.post(
            "/api/upload", {"file": file}, headers={**agent.api.headers, "Idempotency-Key": "upload-1"}
        )

    first = upload(pdf)
    assert first.status_code == 201, first.json()
    again = upload(pdf)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Upload.objects.count() == 1
    other = upload(pdf + b"% another file\n")
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"


# --- refusals ---------------------------------------------------------------------------------


def test_the_same_key_with_another_body_is_422(buyer, service):
    headers = key()
    assert buyer.api.post("/api/orders", order_body(service), **headers).status_code == 201

    other = buyer.api.post("/api/orders", order_body(service, brief="A different brief entirely."), **headers)

    assert other.status_code == 422
    assert other.body == {
        "success": False,
        "error": other.body["error"],
        "code": "idempotency_key_reused",
        "details": {"Idempotency-Key": "already used with a different body"},
    }
    assert Order.objects.count() == 1


@pytest.mark.parametrize("value", ["", "   ", "x" * 256, "naïve"], ids=["empty", "blank", "too long", "non-ascii"])
def test_a_malformed_key_is_400(buyer, service, value):
    response = buyer.api.post("/api/orders", order_body(service), **{"Idempotency-Key": value})
    assert response.status_code == 400
    assert response.body["code"] == "invalid_idempotency_key"
    assert not Order.objects.exists()


def test_a_key_on_a_get_is_ignored(buyer):
    response = buyer.api.get("/api/orders", **{"Idempotency-Key": ""})
    assert response.status_code == 200


# --- scope -----------------------------------------------------------------------------------


def test_different_callers_with_the_same_key_are_independent(buyer, other_buyer, agent, other_agent, service):
    headers = key()
    answers = [
        caller.api.post("/api/orders", order_body(service), **headers)
        for caller in (buyer, other_buyer, other_agent, buyer)
    ]
    assert [answer.status_code for answer in answers] == [201, 201, 201, 201]
    assert [answer.has_header("Idempotent-Replayed") for answer in answers] == [False, False, False, True]
    assert Order.objects.count() == 3
    assert len({answer.body["data"]["id"] for answer in answers}) == 3


def test_the_same_key_on_another_path_is_another_request(buyer, agent, service):
    headers = key()
    order = make_order(buyer, agent, Status.PAID)
    assert buyer.api.post("/api/orders", order_body(service), **headers).status_code == 201
    message = buyer.api.post(f"/api/orders/{order.id}/messages", {"content": "Hello"}, **headers)
    assert message.status_code == 201
    assert "Idempotent-Replayed" not in message
    assert Message.objects.count() == 1


def test_anonymous_callers_are_told_apart_by_their_address(db):
    headers = key()
    body = {"name": "Pixel Forge", "description": "Makes things.", "payout_chain": "solana"}
    here = Api(Client(REMOTE_ADDR="198.51.100.7"))
    first = here.post("/api/agents/register", body, **headers)
    again = here.post("/api/agents/register", body, **headers)
    elsewhere = Api(Client(REMOTE_ADDR="203.0.113.9")).post("/api/agents/register", body, **headers)

    assert first.status_code == again.status_code == elsewhere.status_code == 201
    # The API key is shown once, and a replay is that once again: the same key, not a new agent.
    assert again.body["data"]["api_key"] == first.body["data"]["api_key"]
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in elsewhere
    assert Agent.objects.count() == 2


# --- what is not stored ------------------------------------------------------------------------


def test_a_5xx_is_not_stored_so_a_retry_runs_again(buyer, service, monkeypatch):
    from orders.core.transitions import order_open as real_open
    from orders.web import api as orders_api

    calls = []

    def flaky(**kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise ServiceUnavailable("The chain is down.", code="chain_unavailable")
        return real_open(**kwargs)

    monkeypatch.setattr(orders_api, "order_open", flaky)
    headers = key()
    assert buyer.api.post("/api/orders", order_body(service), **headers).status_code == 503
    assert not IdempotencyKey.objects.exists()

    retry = buyer.api.post("/api/orders", order_body(service), **headers)

    assert retry.status_code == 201
    assert "Idempotent-Replayed" not in retry
    assert len(calls) == 2


def test_a_crash_releases_the_key(buyer, service, monkeypatch):
    from orders.web import api as orders_api

    def crash(**kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(orders_api, "order_open", crash)
    with pytest.raises(RuntimeError):
        buyer.api.post("/api/orders", order_body(service), **key())
    assert not IdempotencyKey.objects.exists()


# --- expiry, in-progress, takeover -------------------------------------------------------------


def test_keys_expire_after_24_hours(buyer, service, monkeypatch):
    headers = key()
    first = buyer.api.post("/api/orders", order_body(service), **headers)
    row = IdempotencyKey.objects.get()
    assert row.expires_at - row.created_at == timedelta(hours=24)

    later = timezone.now() + timedelta(hours=24, seconds=1)
    monkeypatch.setattr(services, "now", lambda: later)
    # Expired: another body is no longer a 422, the same body is a new request.
    other = buyer.api.post("/api/orders", order_body(service, brief="A different brief entirely."), **headers)

    assert other.status_code == 201
    assert "Idempotent-Replayed" not in other
    assert other.body["data"]["id"] != first.body["data"]["id"]
    assert Order.objects.count() == 2
    assert IdempotencyKey.objects.count() == 1


def test_just_before_24_hours_the_key_still_replays(buyer, service, monkeypatch):
    headers = key()
    buyer.api.post("/api/orders", order_body(service), **headers)
    later = timezone.now() + timedelta(hours=23, minutes=59)
    monkeypatch.setattr(services, "now", lambda: later)
    assert buyer.api.post("/api/orders", order_body(service), **headers)["Idempotent-Replayed"] == "true"


def test_while_the_first_request_runs_a_duplicate_gets_409_with_retry_after(buyer, service, monkeypatch):
    headers = key()
    buyer.api.post("/api/orders", order_body(service), **headers)
    # As if the first request were still running (its row claimed a moment ago, no answer yet).
    IdempotencyKey.objects.update(state=State.IN_PROGRESS, status=None, body="", claimed_at=timezone.now())
    monkeypatch.setattr(services, "WAIT_SECONDS", 0.05)

    response = buyer.api.post("/api/orders", order_body(service), **headers)

    assert response.status_code == 409
    assert response.body["code"] == "idempotency_in_progress"
    assert response["Retry-After"] == "1"
    assert Order.objects.count() == 1


def test_a_claim_abandoned_past_its_lease_is_taken_over(buyer, service):
    headers = key()
    buyer.api.post("/api/orders", order_body(service), **headers)
    # A server died between its claim and its answer, over a minute ago.
    IdempotencyKey.objects.update(
        state=State.IN_PROGRESS, status=None, body="", claimed_at=timezone.now() - services.LEASE - timedelta(seconds=1)
    )

    response = buyer.api.post("/api/orders", order_body(service), **headers)

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    row = IdempotencyKey.objects.get()
    assert (row.state, row.status) == (State.DONE, 201)


def test_prune_deletes_expired_keys_only(buyer, service, monkeypatch):
    for _ in range(3):
        buyer.api.post("/api/orders", order_body(service), **key())
    IdempotencyKey.objects.filter(pk__in=IdempotencyKey.objects.values_list("pk", flat=True)[:2]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    call_command("prune_idempotency_keys", verbosity=0)
    assert IdempotencyKey.objects.count() == 1


# --- the document ------------------------------------------------------------------------------


def test_every_post_and_patch_documents_the_header_and_the_422(anonymous):
    doc = anonymous.get("/api/openapi.json").body
    writes = 0
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            headers = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}
            if method in ("post", "patch"):
                writes += 1
                assert "Idempotency-Key" in headers, (method, path)
                assert headers["Idempotency-Key"]["required"] is False
                assert "422" in operation["responses"], (method, path)
                assert "Idempotent-Replayed" in operation["responses"][next(iter(operation["responses"]))]["headers"]
            else:
                assert "Idempotency-Key" not in headers, (method, path)
                assert "422" not in operation["responses"], (method, path)
    assert writes >= 15


# --- concurrency -------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite's in-memory test database (shared cache, table locks) fails a write that meets another "
    "with 'database table is locked' at once instead of waiting; the WAL file database of a real "
    "deployment waits, and tests/lib/test_two_app_servers.py holds this on one (two gunicorn processes)",
)
@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_posts_with_one_key_create_one_order(agent):
    # transaction=True: committed rows, so each thread's own connection sees them.
    buyer = make_buyer("solana")
    service = make_service(agent.agent, price_type="fixed", price="25.00")
    headers = key()
    threads = 8
    barrier = threading.Barrier(threads)

    def post() -> Any:
        api = Api(Client(), dict(buyer.api.headers))
        try:
            barrier.wait(timeout=30)
            return api.post("/api/orders", order_body(service), **headers)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        responses = [future.result(timeout=60) for future in [pool.submit(post) for _ in range(threads)]]

    assert Order.objects.count() == 1
    order_id = Order.objects.get().id
    statuses = sorted(response.status_code for response in responses)
    # The duplicates wait for the first answer (up to WAIT_SECONDS) and replay it.
    assert statuses == [201] * threads, [(r.status_code, r.body) for r in responses]
    assert {response.body["data"]["id"] for response in responses} == {order_id}
    assert sum(response.has_header("Idempotent-Replayed") for response in responses) == threads - 1
    assert IdempotencyKey.objects.get().state == State.DONE
