"""Webhooks: every event an agent hears about is a delivery row written with the event, sent by a
task to a real HTTP receiver on loopback that verifies both signatures, retried with backoff until
it answers 2xx or its day is over, visible to the agent and in admin, and redeliverable."""

from __future__ import annotations

import socket
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from agents.models import Agent
from orders.core.transitions import transition
from orders.models import OrderEvent, Status
from tests.conftest import AgentPersona, make_agent, make_order, make_payment, make_service, sample_data
from tests.lib.ssrf_cases import EMBEDDED_NON_PUBLIC, PUBLIC_IPV6
from tests.webhooks.receiver import Receiver, receiving
from webhooks import services
from webhooks.models import DeliveryStatus, WebhookDelivery

DELIVER_TASK = "webhooks.services.deliver_webhook"


class Clock:
    """`timezone.now()`, moved forward by `advance` (see the autouse `clock` fixture)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)

    def advance_to(self, moment: Any) -> None:
        gap = moment - timezone.now()
        if gap > timedelta():
            self.offset += gap


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + clock.offset)
    return clock


def run_deliveries(clock: Clock, limit: int = 20) -> list[str]:
    """What the worker does with queued webhook tasks, one at a time in the order they fall due;
    a task due later is run once the clock is moved to its `run_after` (no test waits). Leaves
    out the worker's connection housekeeping, which would end the test's transaction. Returns each
    task's outcome."""
    outcomes: list[str] = []
    for _ in range(limit):
        row = queued().order_by("run_after", "enqueued_at").first()
        if row is None:
            break
        if row.run_after.year < 9999:  # 9999: "as soon as possible"
            clock.advance_to(row.run_after)
        row.claim("test-worker")
        result = row.task_result
        row.set_successful(row.task.call(*result.args, **result.kwargs))
        outcomes.append(row.return_value)
    return outcomes


def queued() -> Any:
    return DBTaskResult.objects.filter(status="READY", task_path=DELIVER_TASK)


def listen(agent: AgentPersona, url: str) -> None:
    """The agent sets its endpoint through the API, as a real agent would."""
    response = agent.api.patch("/api/agents/me", {"endpoint_url": url})
    assert response.status_code == 200, response.body
    agent.agent.refresh_from_db()


@pytest.fixture
def loopback(settings: Any) -> None:
    settings.SAFEHTTP_ALLOW_LOOPBACK = True


# --- delivery, signatures, retries ----------------------------------------------------------------


def test_a_receiver_that_fails_twice_gets_the_event_once_verified_on_the_third_attempt(buyer, agent, loopback, clock):
    with receiving(Receiver(script=[500, 500, 200])) as receiver:
        listen(agent, receiver.url)
        receiver.secret = agent.agent.webhook_secret
        order = make_order(buyer, agent)  # pending_quote: one event, order.created
        delivery = WebhookDelivery.objects.get(order=order)
        assert (delivery.event, delivery.status, delivery.attempts) == ("order.created", "pending", 0)

        assert run_deliveries(clock, limit=1) == ["retrying"]
        delivery.refresh_from_db()
        assert (delivery.attempts, delivery.last_status_code, delivery.status) == (1, 500, "pending")
        assert delivery.last_error.startswith("HTTP 500")
        retry = queued().get()
        assert retry.run_after == delivery.next_attempt_at
        assert timezone.now() < retry.run_after <= timezone.now() + services.RETRY_BASE

        assert run_deliveries(clock) == ["retrying", "delivered"]

    assert len(receiver.received) == 3
    assert all(r.verified for r in receiver.received), "every attempt carries both valid signatures"
    assert [r.answered for r in receiver.received] == [500, 500, 200]
    assert len(receiver.accepted) == 1
    ids = {(r.headers["X-Atelier-Delivery-Id"], r.headers["webhook-id"]) for r in receiver.received}
    assert ids == {(delivery.id, delivery.id)}, "the same delivery id on every attempt"
    first = receiver.accepted[0]
    assert first.headers["X-Atelier-Event"] == "order.created"
    assert first.headers["X-Atelier-Agent-Id"] == agent.id
    assert first.headers["Content-Type"] == "application/json"
    body = first.json
    assert set(body) == {"event", "order_id", "data"}
    assert (body["event"], body["order_id"]) == ("order.created", order.id)
    assert body["data"]["event_id"] == OrderEvent.objects.get(order=order, action="create").id
    assert body["data"]["order"]["brief"] == order.brief
    assert body["data"]["to_status"] == "pending_quote"

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.last_error) == (
        "delivered",
        3,
        200,
        "",
    )
    assert delivery.delivered_at is not None
    assert delivery.next_attempt_at is None
    assert not queued().exists()
    assert run_deliveries(clock) == []  # nothing more to do

    listed = agent.api.get("/api/agents/me/webhooks").body["data"]
    assert [(d["id"], d["status"], d["attempts"], d["last_status_code"]) for d in listed] == [
        (delivery.id, "delivered", 3, 200)
    ]


def test_a_receiver_that_hangs_past_the_timeout_is_a_failed_attempt(buyer, agent, loopback, clock, monkeypatch):
    monkeypatch.setattr(services, "TIMEOUT_SECONDS", 0.3)
    with receiving(Receiver(script=["hang", 200], hang_seconds=1.5)) as receiver:
        listen(agent, receiver.url)
        receiver.secret = agent.agent.webhook_secret
        order = make_order(buyer, agent)
        assert run_deliveries(clock, limit=1) == ["retrying"]
        delivery = WebhookDelivery.objects.get(order=order)
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, None)
        assert delivery.last_error == "No answer within 0.3 s."
        assert run_deliveries(clock) == ["delivered"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    assert len(receiver.received) == 2


def test_after_its_day_of_retries_a_delivery_fails_is_visible_and_can_be_redelivered(
    buyer, agent, other_agent, loopback, clock, django_user_model
):
    with receiving(Receiver(script=[503])) as receiver:
        listen(agent, receiver.url)
        receiver.secret = agent.agent.webhook_secret
        order = make_order(buyer, agent)
        delivery = WebhookDelivery.objects.get(order=order)
        assert delivery.retry_until == pytest.approx(
            delivery.created_at + timedelta(hours=24), abs=timedelta(seconds=5)
        )

        assert run_deliveries(clock, limit=3) == ["retrying"] * 3
        for retry in queued():
            assert retry.run_after <= delivery.retry_until  # never scheduled past the day
        clock.advance(hours=24, minutes=1)
        assert run_deliveries(clock) == ["failed"]
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 4, 503)
        assert not queued().exists()

        # The agent sees it, with its attempts and last error.
        failed = agent.api.get("/api/agents/me/webhooks?status=failed").body["data"]
        assert [(d["id"], d["attempts"], d["last_error"], d["next_attempt_at"]) for d in failed] == [
            (delivery.id, 4, delivery.last_error, None)
        ]
        assert failed[0]["last_error"].startswith("HTTP 503")

        # Staff see it in admin, filtered by status.
        staff = django_user_model.objects.create_superuser("root", password="pw-root-12345")
        client = Client()
        client.force_login(staff)
        page = client.get("/admin/webhooks/webhookdelivery/?status__exact=failed").content.decode()
        assert delivery.id in page
        assert (
            delivery.id not in client.get("/admin/webhooks/webhookdelivery/?status__exact=delivered").content.decode()
        )

        # Redeliver: never another agent's (404), the agent's own once the endpoint answers.
        url = f"/api/agents/me/webhooks/{delivery.id}/redeliver"
        assert other_agent.api.post(url).status_code == 404
        assert agent.api.post("/api/agents/me/webhooks/whk_1780278669252_r2oi99c7d/redeliver").status_code == 404
        receiver.script = [200]
        receiver.received.clear()
        redelivered = agent.api.post(url)
        assert redelivered.status_code == 202, redelivered.body
        assert redelivered.body["data"]["status"] == "pending"
        assert run_deliveries(clock) == ["delivered"]
        assert [r.headers["webhook-id"] for r in receiver.accepted] == [delivery.id]

        # And from admin: the action queues it again.
        receiver.received.clear()
        client.post(
            "/admin/webhooks/webhookdelivery/", {"action": "redeliver", "_selected_action": [delivery.id], "index": 0}
        )
        delivery.refresh_from_db()
        assert delivery.status == "pending"
        assert delivery.retry_until > timezone.now() + timedelta(hours=23)
        assert run_deliveries(clock) == ["delivered"]
        assert len(receiver.accepted) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 6)


def test_a_rotated_secret_signs_the_next_attempt(buyer, agent, loopback, clock):
    with receiving(Receiver(script=[500, 200])) as receiver:
        listen(agent, receiver.url)
        receiver.secret = agent.agent.webhook_secret
        make_order(buyer, agent)
        assert run_deliveries(clock, limit=1) == ["retrying"]
        rotated = agent.api.patch("/api/agents/me", {"rotate_webhook_secret": True}).body["data"]["webhook_secret"]
        receiver.secret = rotated
        assert run_deliveries(clock) == ["delivered"]
    assert [r.verified for r in receiver.received] == [True, True]


# --- SSRF: refused at connect time, recorded as a failed attempt -------------------------------------


@pytest.fixture
def no_connect(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Records every outgoing connect() (and lets it through)."""
    calls: list[Any] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        calls.append(address)
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return calls


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "169.254.169.254", "[::1]"],
    ids=["loopback", "a-name-for-loopback", "cloud-metadata", "ipv6-loopback"],
)
def test_an_endpoint_that_is_not_public_is_refused_and_recorded_as_a_failed_attempt(
    host, buyer, agent, settings, no_connect, clock
):
    settings.SAFEHTTP_ALLOW_LOOPBACK = False
    with receiving(Receiver(script=[200])) as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        listen(agent, f"http://{host}:{port}/hooks")
        make_order(buyer, agent)
        assert run_deliveries(clock, limit=1) == ["retrying"]
    delivery = WebhookDelivery.objects.get(agent=agent.agent)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, None)
    assert delivery.last_error.startswith("Refused: ")
    assert "not a public address" in delivery.last_error
    assert receiver.received == []
    assert no_connect == [], "refused before any connection was made"


@pytest.mark.parametrize("address", EMBEDDED_NON_PUBLIC)
def test_an_ipv6_endpoint_embedding_a_non_public_ipv4_address_is_refused(
    address, buyer, agent, settings, no_connect, clock
):
    settings.SAFEHTTP_ALLOW_LOOPBACK = False
    listen(agent, f"http://[{address}]:8080/hooks")
    make_order(buyer, agent)
    assert run_deliveries(clock, limit=1) == ["retrying"]
    delivery = WebhookDelivery.objects.get(agent=agent.agent)
    assert delivery.last_error.startswith("Refused: ")
    assert "not a public address" in delivery.last_error
    assert no_connect == [], "refused before any connection was made"


@pytest.fixture
def connect_refused(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Records every outgoing connect() and fails it, as an unreachable host would (no network in tests)."""
    calls: list[Any] = []

    def connect(self: socket.socket, address: Any) -> None:
        calls.append(address)
        raise ConnectionRefusedError("test: no network")

    monkeypatch.setattr(socket.socket, "connect", connect)
    return calls


@pytest.mark.parametrize("address", PUBLIC_IPV6)
def test_a_public_ipv6_endpoint_passes_the_check(address, buyer, agent, settings, connect_refused, clock):
    settings.SAFEHTTP_ALLOW_LOOPBACK = False
    listen(agent, f"http://[{address}]:8080/hooks")
    make_order(buyer, agent)
    assert run_deliveries(clock, limit=1) == ["retrying"]
    delivery = WebhookDelivery.objects.get(agent=agent.agent)
    assert delivery.last_error.startswith("Connection failed: ")
    assert [call[0] for call in connect_refused] == [address]


# --- which events, for whom, in which transaction ----------------------------------------------------


@pytest.fixture
def hooked(agent: AgentPersona) -> AgentPersona:
    """An agent with an endpoint (nothing is sent in these tests: the tasks are not run)."""
    listen(agent, "https://hooks.example.com/atelier")
    return agent


def events_for(agent: AgentPersona) -> list[str]:
    return list(WebhookDelivery.objects.filter(agent=agent.agent).order_by("id").values_list("event", flat=True))


def test_each_step_of_an_order_is_the_event_an_agent_hears_about(buyer, hooked, staff):
    order = make_order(buyer, hooked, Status.DELIVERED)  # create, quote, accept, pay, deliver
    buyer.api.post(f"/api/orders/{order.id}/messages", {"content": "Looks close!"})
    transition(order.id, "revision", buyer.principal, feedback="Darker.")
    transition(order.id, "deliver", hooked.principal, **sample_data("deliver", order))
    transition(order.id, "dispute", buyer.principal, reason="Still too light.")
    transition(order.id, "send_back", staff, note="One more pass.")
    transition(order.id, "deliver", hooked.principal, **sample_data("deliver", order))
    transition(order.id, "approve", buyer.principal)
    assert events_for(hooked) == [
        "order.created",
        "order.quoted",
        "order.paid",  # accept is not an event agents hear about
        "order.delivered",
        "order.message",
        "order.revision_requested",
        "order.delivered",
        "order.disputed",
        "order.revision_requested",
        "order.delivered",
        "order.completed",
    ]
    message = WebhookDelivery.objects.get(agent=hooked.agent, event="order.message").payload
    assert message["data"]["details"]["message"]["content"] == "Looks close!"
    assert message["data"]["actor"] == "buyer"
    # One task queued per delivery, in the same transactions.
    assert queued().count() == WebhookDelivery.objects.filter(agent=hooked.agent).count()

    cancelled = make_order(buyer, hooked, Status.PAID)
    transition(cancelled.id, "cancel", buyer.principal, reason="Changed my mind.")
    assert events_for(hooked)[-1] == "order.cancelled"


def test_a_workspace_prompt_is_an_event(buyer, hooked):
    service = make_service(hooked.agent, price_type="weekly", price="30.00")
    order = make_order(buyer, hooked, Status.ACCEPTED, service=service)
    transition(order.id, "pay", buyer.principal, payment=make_payment(order))  # opens the workspace
    response = buyer.api.post(f"/api/orders/{order.id}/generate", {"prompt": "A red fox, flat colours."})
    assert response.status_code < 300, response.body
    assert events_for(hooked)[-1] == "workspace.prompt"
    payload = WebhookDelivery.objects.get(agent=hooked.agent, event="workspace.prompt").payload
    assert payload["data"]["details"]["prompt"] == "A red fox, flat colours."


def test_payouts_are_events_too(buyer, hooked):
    from payments.tasks import process_transfer

    order = make_order(buyer, hooked, Status.COMPLETED)  # the agent has no payout wallet: it fails
    process_transfer(order.transfers.get().pk)
    assert events_for(hooked)[-1] == "order.payout_failed"
    payload = WebhookDelivery.objects.get(agent=hooked.agent, event="order.payout_failed").payload
    assert "no payout wallet" in payload["data"]["details"]["reason"]


def test_a_buyer_agent_hears_about_its_order_and_an_agent_without_an_endpoint_gets_nothing(hooked, other_agent):
    listen(other_agent, "https://buyer-agent.example.com/hooks")
    order = make_order(other_agent, hooked, Status.QUOTED)
    assert events_for(hooked) == ["order.created", "order.quoted"]
    assert events_for(other_agent) == ["order.created", "order.quoted"]
    assert {d.payload["order_id"] for d in WebhookDelivery.objects.all()} == {order.id}

    Agent.objects.filter(pk=other_agent.id).update(endpoint_url="")
    transition(order.id, "cancel", other_agent.principal)
    assert events_for(hooked)[-1] == "order.cancelled"
    assert len(events_for(other_agent)) == 2

    quiet = make_agent("Quiet Agent")
    make_order(other_agent, quiet, Status.QUOTED)
    assert events_for(quiet) == []


def test_a_rolled_back_transition_leaves_no_webhook_and_no_task(buyer, hooked):
    order = make_order(buyer, hooked)
    before = (WebhookDelivery.objects.count(), queued().count())

    class AbortError(Exception):
        pass

    def quote_then_abort() -> None:
        with transaction.atomic():
            transition(order.id, "quote", hooked.principal, price_usd=sample_data("quote", order)["price_usd"])
            # Inside the transaction: the delivery and its task are written with the event...
            delivery = WebhookDelivery.objects.get(order=order, event="order.quoted")
            assert queued().filter(args_kwargs__args=[delivery.id]).exists()
            raise AbortError

    with pytest.raises(AbortError):
        quote_then_abort()

    # ...and go with it.
    assert (WebhookDelivery.objects.count(), queued().count()) == before
    assert not WebhookDelivery.objects.filter(order=order, event="order.quoted").exists()
    order.refresh_from_db()
    assert order.status == Status.PENDING_QUOTE


def test_record_refuses_to_run_outside_a_transaction(buyer, agent):
    from orders.core.events import record

    order = make_order(buyer, agent)
    # What a caller that forgot transaction.atomic() would look like (the test itself runs in one).
    connection = transaction.get_connection()
    in_block, connection.in_atomic_block = connection.in_atomic_block, False
    try:
        with pytest.raises(RuntimeError, match="inside the transaction"):
            record(order, "message", actor_kind="buyer", actor_id="x")
    finally:
        connection.in_atomic_block = in_block
    assert not OrderEvent.objects.filter(order=order, action="message").exists()


# --- the signatures themselves ---------------------------------------------------------------------


def test_the_standard_webhooks_signature_matches_the_published_test_vector():
    headers = services.signed_headers(
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        delivery_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
        timestamp=1614265330,
        body=b'{"test": 2432232314}',
    )
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert headers["webhook-id"] == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    assert headers["webhook-timestamp"] == "1614265330"
    assert headers["X-Atelier-Signature"].startswith("t=1614265330,v1=")


def test_new_secrets_are_standard_base64_of_32_bytes(agent):
    assert len(services.standard_webhooks_key(agent.agent.webhook_secret)) == 32


def test_a_deliveries_body_is_the_same_bytes_whatever_order_the_database_keeps_keys_in():
    assert services.body_bytes({"b": 1, "a": {"d": 2, "c": 3}}) == services.body_bytes({"a": {"c": 3, "d": 2}, "b": 1})


def test_an_agent_without_an_endpoint_at_send_time_fails_without_retrying(buyer, hooked, clock):
    make_order(buyer, hooked)
    Agent.objects.filter(pk=hooked.id).update(endpoint_url="")
    assert run_deliveries(clock) == ["failed"]
    delivery = WebhookDelivery.objects.get(agent=hooked.agent)
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        DeliveryStatus.FAILED,
        1,
        "The agent has no endpoint_url.",
    )
    response = hooked.api.post(f"/api/agents/me/webhooks/{delivery.id}/redeliver")
    assert (response.status_code, response.body["code"]) == (409, "no_endpoint_url")


def test_a_duplicate_task_for_a_delivery_in_flight_or_scheduled_does_nothing(buyer, hooked):
    from webhooks.services import deliver_webhook

    make_order(buyer, hooked)
    delivery = WebhookDelivery.objects.get(agent=hooked.agent)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=5))
    assert deliver_webhook.call(delivery.id) == "skipped"
    delivery.refresh_from_db()
    assert delivery.attempts == 0


def test_the_list_pages_newest_first(buyer, hooked):
    for _ in range(3):
        make_order(buyer, hooked)
    first = hooked.api.get("/api/agents/me/webhooks?limit=2").body
    assert len(first["data"]) == 2
    rest = hooked.api.get(f"/api/agents/me/webhooks?limit=2&before={first['next_cursor']}").body
    assert rest["next_cursor"] is None
    ids = [d["id"] for d in first["data"] + rest["data"]]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == 3
    assert hooked.api.get("/api/agents/me/webhooks?status=nope").status_code == 400


def test_a_delivery_whose_worker_died_mid_attempt_is_sent_after_the_task_is_requeued(buyer, agent, loopback, clock):
    from lib.tasks import requeue_stale

    with receiving(Receiver(script=[200])) as receiver:
        listen(agent, receiver.url)
        receiver.secret = agent.agent.webhook_secret
        make_order(buyer, agent)
        delivery = WebhookDelivery.objects.get(agent=agent.agent)
        # A worker claims the task, starts the attempt (counted, leased), and dies before sending.
        row = queued().get()
        row.claim("worker-that-died")
        assert services._claim(delivery.id) is not None
        assert requeue_stale(older_than=timedelta(minutes=5)) == 0  # not stale yet
        clock.advance(minutes=6)
        assert requeue_stale(older_than=timedelta(minutes=5)) == 1
        assert run_deliveries(clock) == ["delivered"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    assert len(receiver.accepted) == 1


def test_a_redeliver_during_an_attempt_leaves_the_outcome_to_the_newer_attempt(buyer, hooked, monkeypatch):
    make_order(buyer, hooked)
    delivery = WebhookDelivery.objects.get(agent=hooked.agent)
    seen: list[int] = []

    def post(sending: WebhookDelivery) -> tuple[int | None, str]:
        seen.append(sending.attempts)
        if len(seen) == 1:  # while the first attempt waits on a slow endpoint, someone redelivers
            services.delivery_redeliver(WebhookDelivery.objects.get(pk=sending.pk))
            assert services.delivery_attempt(sending.pk) == "delivered"
            return 500, "HTTP 500"
        return 200, ""

    monkeypatch.setattr(services, "_post", post)
    assert services.delivery_attempt(delivery.id) == "superseded"
    delivery.refresh_from_db()
    assert seen == [1, 2]
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 2, 200)


# --- development webhooks and the endpoint's answer ------------------------------------------------


def test_with_allow_private_webhooks_a_receiver_on_loopback_gets_the_event_but_not_cloud_metadata(
    buyer, agent, settings, clock
):
    settings.SAFEHTTP_ALLOW_LOOPBACK = False
    settings.ALLOW_PRIVATE_WEBHOOKS = True  # what `make run` sets (DEBUG on)
    with receiving(Receiver(script=[200])) as receiver:
        listen(agent, receiver.url)
        receiver.secret = agent.agent.webhook_secret
        make_order(buyer, agent)
        assert run_deliveries(clock, limit=1) == ["delivered"]
    assert [r.verified for r in receiver.accepted] == [True]

    response = agent.api.patch("/api/agents/me", {"endpoint_url": "http://169.254.169.254/latest/"})
    assert response.status_code == 200, response.body
    assert "not a public address" in response.body["warnings"][0]


def test_a_patch_with_an_endpoint_the_worker_will_refuse_answers_with_a_warning(agent, settings):
    settings.SAFEHTTP_ALLOW_LOOPBACK = False
    settings.ALLOW_PRIVATE_WEBHOOKS = False
    refused = agent.api.patch("/api/agents/me", {"endpoint_url": "http://127.0.0.1:9/hooks"})
    assert refused.status_code == 200, refused.body
    assert refused.body["data"]["endpoint_url"] == "http://127.0.0.1:9/hooks"  # saved all the same
    (warning,) = refused.body["warnings"]
    assert "would be refused" in warning
    assert "ALLOW_PRIVATE_WEBHOOKS" in warning

    public = agent.api.patch("/api/agents/me", {"endpoint_url": "http://93.184.215.14/hooks"})
    assert public.status_code == 200
    assert "warnings" not in public.body


def test_an_empty_endpoint_url_clears_it_and_stops_the_webhooks(buyer, agent, loopback):
    listen(agent, "http://127.0.0.1:9/hooks")
    cleared = agent.api.patch("/api/agents/me", {"endpoint_url": ""})
    assert cleared.status_code == 200, cleared.body
    assert cleared.body["data"]["endpoint_url"] == ""
    agent.agent.refresh_from_db()
    make_order(buyer, agent)
    assert not WebhookDelivery.objects.filter(agent=agent.agent).exists()


def test_a_patch_whose_endpoint_host_resolves_slowly_answers_within_the_resolve_timeout(agent, settings, monkeypatch):
    """A resolver that hangs costs the PATCH at most the resolve timeout (2 s), not the resolver's;
    with no verdict the URL is saved without a warning (the worker checks again when it sends)."""
    released = threading.Event()

    def hung_lookup(*args: object, **kwargs: object) -> list[object]:
        released.wait(30)
        raise OSError("released")

    monkeypatch.setattr(socket, "getaddrinfo", hung_lookup)
    began = time.monotonic()
    try:
        response = agent.api.patch("/api/agents/me", {"endpoint_url": "https://hooks.slow-resolver.example/in"})
    finally:
        released.set()
    took = time.monotonic() - began
    assert response.status_code == 200, response.body
    assert response.body["data"]["endpoint_url"] == "https://hooks.slow-resolver.example/in"
    assert "warnings" not in response.body
    assert 1.5 < took < 5, took
