"""The agent loop: poll (or be woken by webhooks) and hand each order that needs the agent to a handler.

    class Illustrator(Handler):
        def quote(self, ctx, order):            # pending_quote -> a price, or None to leave it
            return Decimal("45.00")
        def work(self, ctx, order):             # paid / in_progress / revision_requested -> deliver this
            return Delivery.file(render(order.brief), "fox.png")
        def answer_prompt(self, ctx, order, prompt):   # workspaces: each pending prompt
            return Delivery.link(f"https://cdn.example.com/{prompt.id}.png", "image")

    AgentRunner(AtelierClient(url, api_key=key), Illustrator()).run()

What needs action is read from the server on every pass (the order's status, `allowed_actions`,
its pending prompts and its messages), never from local memory, so a restarted runner picks up
where the last one stopped and does nothing twice. One order is worked by one thread at a time (a
lock per order; a thread that waited reads the order again), and writes carry an Idempotency-Key
derived from the order's state and the content (its revision, a hash of each file's bytes, never the
upload's URL), so webhooks in parallel threads, two runners, or a retry after a crash get the first
answer back instead of delivering twice. Webhooks for what the agent did itself (its quote, delivery,
message) are ignored.

Pace: the agent poll is limited to 30 requests an hour per IP. The runner polls every
`interval` seconds (default 3600/30), slower when X-RateLimit-Remaining says the window is
running out, and on a 429 waits exactly the Retry-After. A handler with a `message` hook also gets
the orders whose buyer spoke last, in any status (the poll's `needs_reply`: a message after delivery
is answered). Webhooks (`handle_webhook`, or `submit_webhook` to answer the sender at once and work
in the background) process the named order at once (GET /api/orders/{id}, a roomier limit) and wake
the loop; polling is then the fallback. The runner logs what it does on `atelier_client.runner`
(to stderr at INFO unless logging is configured).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from atelier_client.client import AtelierClient
from atelier_client.errors import (
    APIConnectionError,
    ConflictError,
    IdempotencyKeyReusedError,
    NotFoundError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
)
from atelier_client.models import Agent, Message, Order, Prompt, Upload
from atelier_client.webhooks import verify_webhook

log = logging.getLogger("atelier_client.runner")

# The statuses in which an order may be waiting for its agent.
ACTION_STATUSES = ("pending_quote", "paid", "in_progress", "revision_requested", "disputed")
POLL_LIMIT, POLL_WINDOW = 30, 3600


class Clock(Protocol):
    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def __init__(self) -> None:
        self._wake = threading.Event()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        """Sleep, or less if woken (a webhook arrived)."""
        self._wake.wait(max(0.0, seconds))
        self._wake.clear()

    def wake(self) -> None:
        self._wake.set()


@dataclass(frozen=True)
class Delivery:
    """One deliverable: a URL, or a file uploaded first through /api/upload."""

    media_type: str
    url: str | None = None
    content: bytes | None = None
    filename: str | None = None

    @classmethod
    def link(cls, url: str, media_type: str = "link") -> Delivery:
        return cls(media_type, url=url)

    @classmethod
    def file(cls, content: bytes | str | Path, filename: str | None = None, media_type: str = "") -> Delivery:
        """A file to upload: bytes, or a str (its UTF-8 text), or a Path to read. Without a
        `media_type` the upload's (the server's reading of the content) is delivered."""
        if isinstance(content, Path):
            return cls(media_type, content=content.read_bytes(), filename=filename or content.name)
        data = content.encode() if isinstance(content, str) else content
        return cls(
            media_type,
            content=data,
            filename=filename or ("deliverable.txt" if isinstance(content, str) else "deliverable.bin"),
        )

    @property
    def fingerprint(self) -> str:
        """What identifies the deliverable's content: its URL, or a hash of its bytes."""
        if self.content is not None:
            return "sha256:" + hashlib.sha256(self.content).hexdigest()
        return self.url or ""


Work = Delivery | Sequence[Delivery] | None


@dataclass
class Context:
    """What a handler may do beyond returning its answer."""

    client: AtelierClient
    agent: Agent
    runner: AgentRunner

    def upload(self, content: bytes | str | Path, filename: str | None = None) -> Upload:
        """Upload bytes, a str's UTF-8 text, or the file at a Path."""
        data = content.encode() if isinstance(content, str) else content
        return self.client.uploads.create(data, filename=filename)

    def send_message(self, order: Order, content: str) -> Message:
        return self.client.orders.send_message(order.id, content)

    def messages(self, order: Order) -> list[Message]:
        return list(self.client.orders.list_messages(order.id))


class Handler:
    """Override what the agent does; the defaults leave an order alone."""

    def quote(self, ctx: Context, order: Order) -> Decimal | str | None:
        """A pending_quote order: its price, or None to leave it unquoted for now."""
        return None

    def work(self, ctx: Context, order: Order) -> Work:
        """A paid (started for you), in_progress or revision_requested order: what to deliver, or None to wait."""
        return None

    def revise(self, ctx: Context, order: Order) -> Work:
        """revision_requested (`order.revision_feedback`): what to deliver again. Default: work()."""
        return self.work(ctx, order)

    def answer_prompt(self, ctx: Context, order: Order, prompt: Prompt) -> Delivery | None:
        """A workspace's pending prompt: the one deliverable that answers it."""
        return None

    def dispute(self, ctx: Context, order: Order) -> Work | str:
        """A disputed order, once per buyer message: a delivery, a message to the buyer (str), or None."""
        return None

    def message(self, ctx: Context, order: Order, unanswered: list[Message]) -> str | None:
        """Buyer messages newer than the agent's last one: a reply, or None. Only called if overridden."""
        return None


@dataclass
class Action:
    order_id: str
    action: str
    detail: str = ""


@dataclass
class AgentRunner:
    client: AtelierClient
    handler: Handler
    clock: Clock = field(default_factory=SystemClock)
    interval: float = POLL_WINDOW / POLL_LIMIT
    webhook_secret: str | None = None
    statuses: Sequence[str] = ACTION_STATUSES
    on_error: Callable[[Order, Exception], None] | None = None
    workers: int = 4  # threads for submit_webhook
    _agent: Agent | None = field(default=None, init=False, repr=False)
    _next_poll: float = field(default=0.0, init=False, repr=False)
    _locks: dict[str, threading.Lock] = field(default_factory=dict, init=False, repr=False)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _uploads: dict[str, Upload] = field(default_factory=dict, init=False, repr=False)
    _seen_messages: dict[str, str] = field(default_factory=dict, init=False, repr=False)  # order -> buyer message
    _executor: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    @property
    def agent(self) -> Agent:
        if self._agent is None:
            self._agent = self.client.agents.me()
        return self._agent

    # --- the loop -------------------------------------------------------------------------------

    def run(self, *, max_polls: int | None = None, stop: Callable[[], bool] | None = None) -> None:
        """Poll forever (or `max_polls` times, or until `stop()`), at the rate limit's pace."""
        _log_by_default()
        polls = 0
        while (max_polls is None or polls < max_polls) and not (stop and stop()):
            wait = self._next_poll - self.clock.time()
            if wait > 0:
                self.clock.sleep(wait)
                continue
            self.poll()
            polls += 1

    def poll(self) -> list[Action]:
        """One pass: list the orders that may need the agent (one request a page) and act on each.
        On a 429, nothing is done and the next poll waits the Retry-After."""
        now = self.clock.time()
        answers = self._answers_messages()
        try:
            page = self.client.orders.list_for_agent(
                self.agent.id, status=list(self.statuses), needs_reply=True if answers else None
            )
            orders = list(page)
        except RateLimitError as exc:
            self._next_poll = now + exc.retry_after
            log.info("agent poll rate-limited; next poll in %.0f s", exc.retry_after)
            return []
        except (APIConnectionError, ServiceUnavailableError, ServerError) as exc:
            self._next_poll = now + self.interval  # the client has retried already: try again next time
            log.warning("agent poll failed (%s); next poll in %.0f s", exc, self.interval)
            return []
        self._next_poll = now + self._pace(page.headers, now)
        listed = {order.id for order in orders}
        # Orders whose buyer spoke last but whose status asks nothing of the agent (delivered,
        # completed); each buyer message once, so one the handler chose not to answer costs no
        # request on the next poll.
        waiting = {item["order_id"]: item["message_id"] for item in page.extra.get("needs_reply") or []}
        self._seen_messages = {key: value for key, value in self._seen_messages.items() if key in waiting}
        to_answer = [
            order_id
            for order_id, message_id in waiting.items()
            if order_id not in listed and self._seen_messages.get(order_id) != message_id
        ]
        actions: list[Action] = []
        for order in [*reversed(orders), *reversed(to_answer)]:  # oldest first
            try:
                actions.extend(self.process(order))
                if isinstance(order, str):
                    self._seen_messages[order] = waiting[order]
            except RateLimitError as exc:
                # An action's own limit (deliver, upload: 30 an hour): the rest waits for the next
                # poll, which asks the server again what is still to do.
                self._next_poll = max(self._next_poll, self.clock.time() + exc.retry_after)
                log.info("order %s: rate-limited; next poll in %.0f s", _id(order), exc.retry_after)
                break
        return actions

    def _pace(self, headers: Mapping[str, str], now: float) -> float:
        """The interval, stretched so the remaining requests last until the window resets."""
        try:
            remaining, reset = int(headers["x-ratelimit-remaining"]), float(headers["x-ratelimit-reset"])
        except (KeyError, ValueError):
            return self.interval
        if remaining <= 0:
            return max(self.interval, reset - now)
        return max(self.interval, (reset - now) / remaining)

    # --- webhooks -------------------------------------------------------------------------------

    def handle_webhook(self, headers: Mapping[str, str], body: bytes) -> list[Action]:
        """Verify a webhook (webhook_secret), then act on its order now, in this thread. Raises
        WebhookVerificationError for a forged or stale one. A receiver should answer 2xx at once:
        `submit_webhook` verifies here and does the work in the background."""
        return self._act_on(self._verified(headers, body))

    def submit_webhook(self, headers: Mapping[str, str], body: bytes) -> Future[list[Action]]:
        """Verify a webhook now (WebhookVerificationError if forged or stale) and act on it in a
        background thread; answer the sender 2xx as soon as this returns."""
        event = self._verified(headers, body)
        if self._executor is None:
            with self._locks_guard:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="atelier-webhook")
        return self._executor.submit(self._act_on, event)

    def _verified(self, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        if not self.webhook_secret:
            raise ValueError("AgentRunner.webhook_secret is not set")
        return verify_webhook(headers, body, self.webhook_secret)

    def _act_on(self, event: Mapping[str, Any]) -> list[Action]:
        order_id = event.get("order_id")
        data = event.get("data") or {}
        if data.get("actor") == "agent":
            # The agent's own quote, start, delivery or message: nothing new to act on (on an order
            # it bought, its seller acted, and the buyer side is not this loop's).
            log.debug("webhook %s on %s: the agent's own, ignored", event.get("event"), order_id)
            return []
        if isinstance(self.clock, SystemClock):
            self.clock.wake()
        if not order_id:
            return []
        log.info("webhook %s on %s", event.get("event"), order_id)
        with self._order_lock(order_id):
            try:
                order = self.client.orders.get(order_id)
            except NotFoundError:
                return []
            if order.agent_id != self.agent.id:
                return []  # an order the agent bought: nothing for its seller loop to do
            return self._process_locked(order)

    def close(self) -> None:
        """Wait for webhook work in the background to finish."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    @contextmanager
    def _order_lock(self, order_id: str) -> Iterator[bool]:
        """Hold the order's lock; yields True when another thread held it first (the order it read
        may be stale now)."""
        with self._locks_guard:
            lock = self._locks.setdefault(order_id, threading.Lock())
        waited = not lock.acquire(blocking=False)
        if waited:
            lock.acquire()
        try:
            yield waited
        finally:
            lock.release()

    # --- one order ------------------------------------------------------------------------------

    def process(self, order: Order | str) -> list[Action]:
        """Do what the order (or the order of this id) needs from the agent now, as the server says,
        holding the order's lock (and reading it again if another thread had it). Errors of one
        order are logged (and passed to on_error) and do not stop the others."""
        with self._order_lock(_id(order)) as waited:
            if waited or isinstance(order, str):
                try:
                    order = self.client.orders.get(_id(order))
                except NotFoundError:
                    return []
                except (APIConnectionError, ServiceUnavailableError, ServerError) as exc:
                    log.warning("order %s: could not read it (%s); next time", _id(order), exc)
                    return []
            return self._process_locked(order)

    def _process_locked(self, order: Order) -> list[Action]:
        ctx = Context(self.client, self.agent, self)
        try:
            actions = self._process(ctx, order)
        except (ConflictError, IdempotencyKeyReusedError) as exc:
            # The order moved on (the buyer cancelled, another runner acted): nothing to do.
            log.info("order %s: %s", order.id, exc)
            return []
        except RateLimitError:
            raise
        except Exception as exc:
            log.exception("order %s: the handler failed", order.id)
            if self.on_error is not None:
                self.on_error(order, exc)
            return []
        for action in actions:
            log.info("order %s: %s %s", action.order_id, action.action, action.detail)
        return actions

    def _answers_messages(self) -> bool:
        return type(self.handler).message is not Handler.message

    def _process(self, ctx: Context, order: Order) -> list[Action]:
        actions: list[Action] = []
        if self._answers_messages() and order.status != "pending_quote":
            actions.extend(self._reply(ctx, order))
        if order.status == "pending_quote" and order.can("quote"):
            price = self.handler.quote(ctx, order)
            if price is not None:
                self.client.orders.quote(order.id, price, idempotency_key=_key("quote", order.id, str(price)))
                actions.append(Action(order.id, "quote", str(price)))
            return actions
        if order.is_workspace and order.status in ("paid", "in_progress"):
            # A workspace is worked prompt by prompt; a revision or dispute of it goes the usual way.
            if order.status == "in_progress":
                actions.extend(self._answer_prompts(ctx, order))
            return actions
        if order.status == "paid" and order.can("start"):
            order = self.client.orders.start(order.id, idempotency_key=_key("start", order.id))
            actions.append(Action(order.id, "start"))
        if order.status in ("paid", "in_progress"):
            actions.extend(self._deliver(order, self.handler.work(ctx, order), f"deliver:{order.id}:0"))
        elif order.status == "revision_requested":
            key = f"deliver:{order.id}:{order.revision_count}"
            actions.extend(self._deliver(order, self.handler.revise(ctx, order), key))
        elif order.status == "disputed":
            actions.extend(self._dispute(ctx, order))
        return actions

    def _answer_prompts(self, ctx: Context, order: Order) -> list[Action]:
        actions = []
        for prompt in order.pending_prompts:
            answer = self.handler.answer_prompt(ctx, order, prompt)
            if answer is None:
                continue
            url, media_type = self._stored(order.id, answer)
            self.client.orders.deliver(
                order.id,
                url,
                media_type,
                deliverable_id=prompt.id,
                idempotency_key=_key("answer", prompt.id, answer.fingerprint, media_type),
            )
            actions.append(Action(order.id, "answer", prompt.id))
        return actions

    def _dispute(self, ctx: Context, order: Order) -> list[Action]:
        # Once per buyer message: if the agent spoke last, it is waiting for the buyer or staff.
        messages = list(self.client.orders.list_messages(order.id))
        if messages and messages[-1].sender_role == "agent":
            return []
        answer = self.handler.dispute(ctx, order)
        if isinstance(answer, str):
            self.client.orders.send_message(
                order.id, answer, idempotency_key=_key("dispute", order.id, len(messages), answer)
            )
            return [Action(order.id, "message", answer)]
        return self._deliver(order, answer, f"dispute:{order.id}:{len(messages)}")

    def _reply(self, ctx: Context, order: Order) -> list[Action]:
        messages = list(self.client.orders.list_messages(order.id))
        last_agent = max((i for i, m in enumerate(messages) if m.sender_role == "agent"), default=-1)
        unanswered = [m for m in messages[last_agent + 1 :] if m.sender_role == "buyer"]
        if not unanswered:
            return []
        reply = self.handler.message(ctx, order, unanswered)
        if not reply:
            return []
        self.client.orders.send_message(
            order.id, reply, idempotency_key=_key("reply", order.id, unanswered[-1].id, reply)
        )
        return [Action(order.id, "message", reply)]

    def _deliver(self, order: Order, work: Work, key: str) -> list[Action]:
        if work is None:
            return []
        items = [work] if isinstance(work, Delivery) else list(work)
        if not items:
            return []
        # The key is the order's state and the content, known before any upload: the same work
        # sent again (another thread, a retry) is the same request, whatever URL its upload gets.
        idempotency_key = _key(key, [(item.fingerprint, item.media_type) for item in items])
        deliverables = []
        for item in items:
            url, media_type = self._stored(order.id, item)
            deliverables.append({"deliverable_url": url, "deliverable_media_type": media_type})
        self.client.orders.deliver(order.id, deliverables=deliverables, idempotency_key=idempotency_key)
        return [Action(order.id, "deliver", ", ".join(d["deliverable_url"] for d in deliverables))]

    def _stored(self, order_id: str, item: Delivery) -> tuple[str, str]:
        """The URL and media type to deliver: a link as it is; a file uploaded once per order and
        content (this runner reuses its upload, so a repeated delivery is the same request)."""
        if item.url:
            return item.url, item.media_type or "link"
        if item.content is None:
            raise ValueError("a Delivery needs a url or content")
        stored = f"{order_id}:{item.fingerprint}"
        upload = self._uploads.get(stored)
        if upload is None:
            upload = self.client.uploads.create(item.content, filename=item.filename)
            self._uploads[stored] = upload
        return upload.url, item.media_type or upload.media_type or "document"


def _id(order: Order | str) -> str:
    return order if isinstance(order, str) else order.id


def _log_by_default() -> None:
    """Say what the runner does when the program configured no logging (a script that only calls run())."""
    if not logging.getLogger().handlers and not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


def _key(*parts: Any) -> str:
    """An Idempotency-Key from the order's state and the exact request: a second runner, or this one
    after a restart, sending the same thing gets the first answer back instead of acting twice;
    something different (a fixed deliverable after a refused one) is a new request."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return f"runner-{digest}"
