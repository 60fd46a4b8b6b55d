"""A real webhook receiver on loopback, as an agent would run one: it verifies both signatures
independently of the code that makes them (Standard Webhooks: the key is the base64 decoding of
what follows `whsec_`, as the spec's reference libraries read it) and answers from a script."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE_SECONDS = 300


def atelier_signature_ok(secret: str, header: str, body: bytes) -> bool:
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp, signature = parts["t"], parts["v1"]
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def standard_signature_ok(secret: str, headers: Any, body: bytes) -> bool:
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    candidates = [item.split(",", 1)[1] for item in headers["webhook-signature"].split() if item.startswith("v1,")]
    return any(hmac.compare_digest(expected, candidate) for candidate in candidates)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: bool
    answered: int | str

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each request with the next item of `script` (a status code, or "hang" to sleep
    `hang_seconds` first); the last item repeats. `secret` is what it verifies with."""

    secret: str = ""
    script: list[int | str] = field(default_factory=lambda: [200])
    hang_seconds: float = 2.0
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def answer(self) -> int | str:
        index = min(len(self.received), len(self.script) - 1)
        return self.script[index]

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.received if r.verified and isinstance(r.answered, int) and 200 <= r.answered < 300]


@contextmanager
def receiving(receiver: Receiver, host: str = "127.0.0.1") -> Iterator[Receiver]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                answer = receiver.answer()
                verified = atelier_signature_ok(
                    receiver.secret, self.headers["X-Atelier-Signature"], body
                ) and standard_signature_ok(receiver.secret, self.headers, body)
                receiver.received.append(Received(dict(self.headers), body, verified, answer))
            if answer == "hang":
                time.sleep(receiver.hang_seconds)
                answer = 200
            status = int(answer) if verified else 401
            payload = b'{"ok": true}' if status < 300 else b'{"error": "nope"}'
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the sender gave up (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    receiver.url = f"http://{host}:{server.server_address[1]}/hooks/atelier"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
