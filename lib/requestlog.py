"""One JSON line per request and per task, each with a request id, the order id where there is one,
and nothing secret.

- `RequestLogMiddleware` takes the caller's `X-Request-ID` (when it is a plain token of at most 128
  characters) or makes one, returns it in the response's `X-Request-ID`, and logs
  `{"event": "request", "method", "path", "status", "duration_ms", "request_id", "order_id"}` when the
  response is ready. The path is logged without its query string (the product's per-request wallet
  signature may travel there); no header or body is logged.
- Tasks (`django.tasks` signals): `task.enqueued` in the request that queued it (its request id and
  the task id), and `{"event": "task", "task", "task_id", "status", "duration_ms", "order_id"}` when
  a worker finishes it; the task's own lines carry `request_id` = `task:<task id>`.
- `bind(order_id=...)`: code that learns the order later (a transition) puts it on every line
  after, until the request or task ends.
- `JsonFormatter` writes every record as one JSON object, and `redact()` masks anything shaped like
  one of Atelier's credentials (API keys, session tokens, webhook secrets, raw private keys) in any
  message, as a last line of defence.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.tasks.signals import task_enqueued, task_finished, task_started
from prometheus_client import Counter, Histogram

# Prometheus (atelier.metrics serves them). With PROMETHEUS_MULTIPROC_DIR set before this module is
# imported, each gunicorn worker writes its counts there and any worker reports all of them.
# Labelled by the route's name, never the raw path, so the series stay few.
HTTP_REQUESTS = Counter(
    "atelier_http_requests", "HTTP responses by method, route and status.", ["method", "view", "status"]
)
HTTP_LATENCY = Histogram(
    "atelier_http_request_duration_seconds",
    "Time to answer, by method and route.",
    ["method", "view"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TASKS = Counter("atelier_tasks", "Finished tasks by task and status.", ["task", "status"])
TASK_LATENCY = Histogram(
    "atelier_task_duration_seconds", "Time a task ran.", ["task"], buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60)
)

log = logging.getLogger("atelier.request")
task_log = logging.getLogger("atelier.task")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
order_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("order_id", default=None)

INCOMING_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Shapes of secrets: API keys, wallet session tokens, webhook secrets, 32-byte hex keys, and whatever
# follows a "secret"/"password"/"token"/"key" field name. (Transaction hashes stay: they are public.)
SECRET_SHAPES = re.compile(
    r"(atelier_[A-Za-z0-9_-]{8,}|atws_[A-Za-z0-9_-]{8,}|whsec_[A-Za-z0-9+/=_-]{8,}"
    r"|0x[0-9a-fA-F]{64}\b"
    r"|(?i:(?:secret(?:_access)?(?:_key)?|password|passwd|token|api[_-]?key|private[_-]?key|wallet_sig)[\"']?\s*[:=]\s*[\"']?)[^\s\"',&}]+)"
)


def redact(text: str) -> str:
    def mask(match: re.Match[str]) -> str:
        found = match.group(0)
        field = re.match(r"(?i)(.*?[:=]\s*[\"']?)", found)
        if field and not found.startswith(("atelier_", "atws_", "whsec_", "0x")):
            return field.group(1) + "[redacted]"
        return "[redacted]"

    return SECRET_SHAPES.sub(mask, text)


def bind(*, order_id: str | None = None) -> None:
    if order_id:
        order_id_var.set(order_id)


class ContextFilter(logging.Filter):
    """Puts the current request id and order id on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        if not hasattr(record, "order_id"):
            record.order_id = order_id_var.get()
        return True


# The attributes every LogRecord has; anything else on a record came as `extra` and is logged.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            # Plain values only: Django's own `extra` includes the request object, whose repr
            # carries the query string (and a per-request signature may travel there).
            if key not in _STANDARD and key not in line and (value is None or isinstance(value, (str, int, float))):
                line[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, default=str, separators=(",", ":"))


class PlainFormatter(logging.Formatter):
    """For people at a terminal (DEBUG): the usual line, request id appended, secrets masked."""

    def format(self, record: logging.LogRecord) -> str:
        text = redact(super().format(record))
        request_id = getattr(record, "request_id", None)
        return f"{text} [{request_id}]" if request_id else text


def _order_from_route(request: HttpRequest) -> str | None:
    match = getattr(request, "resolver_match", None)
    value = match.kwargs.get("order_id") if match is not None else None
    return value if isinstance(value, str) else None


class RequestLogMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if INCOMING_ID.fullmatch(incoming) else uuid.uuid4().hex
        id_token = request_id_var.set(request_id)
        order_token = order_id_var.set(None)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            bind(order_id=_order_from_route(request))
            elapsed = time.perf_counter() - started
            match = getattr(request, "resolver_match", None)
            view = (match.view_name or "unnamed") if match is not None else "unresolved"
            HTTP_REQUESTS.labels(request.method, view, str(response.status_code)).inc()
            HTTP_LATENCY.labels(request.method, view).observe(elapsed)
            log.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "event": "request",
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 1),
                },
            )
            return response
        finally:
            request_id_var.reset(id_token)
            order_id_var.reset(order_token)


# --- tasks ----------------------------------------------------------------------------------------

# Per running task: when it started, and the context to restore after it (a task run inline, by the
# immediate backend, runs inside the request that queued it).
_task_started: dict[str, tuple[float, contextvars.Token[str | None], contextvars.Token[str | None]]] = {}


def _task_order(task_result: Any) -> str | None:
    kwargs = getattr(task_result, "kwargs", None) or {}
    for value in [kwargs.get("order_id"), *kwargs.values(), *(getattr(task_result, "args", None) or [])]:
        if isinstance(value, str) and value.startswith("ord_"):
            return value
    return None


def _on_enqueued(sender: Any, task_result: Any, **kwargs: Any) -> None:
    task_log.info(
        "queued %s",
        task_result.task.name,
        extra={"event": "task.enqueued", "task": task_result.task.module_path, "task_id": str(task_result.id)},
    )


def _on_started(sender: Any, task_result: Any, **kwargs: Any) -> None:
    _task_started[str(task_result.id)] = (
        time.perf_counter(),
        request_id_var.set(f"task:{task_result.id}"),
        order_id_var.set(_task_order(task_result)),
    )


def _on_finished(sender: Any, task_result: Any, **kwargs: Any) -> None:
    started, id_token, order_token = _task_started.pop(str(task_result.id), (None, None, None))
    status = str(getattr(task_result.status, "value", task_result.status))
    TASKS.labels(task_result.task.module_path, status).inc()
    if started is not None:
        TASK_LATENCY.labels(task_result.task.module_path).observe(time.perf_counter() - started)
    task_log.log(
        logging.ERROR if status == "FAILED" else logging.INFO,
        "%s %s",
        task_result.task.name,
        status,
        extra={
            "event": "task",
            "task": task_result.task.module_path,
            "task_id": str(task_result.id),
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1) if started is not None else None,
            "order_id": _task_order(task_result) or order_id_var.get(),
        },
    )
    if id_token is not None and order_token is not None:
        request_id_var.reset(id_token)
        order_id_var.reset(order_token)


def connect_task_signals() -> None:
    task_enqueued.connect(_on_enqueued, dispatch_uid="atelier.requestlog.enqueued")
    task_started.connect(_on_started, dispatch_uid="atelier.requestlog.started")
    task_finished.connect(_on_finished, dispatch_uid="atelier.requestlog.finished")
