"""`Idempotency-Key` on POST and PATCH: a retried write is answered, not run again.

The API decorator (`api.endpoints.endpoint`) calls these once per keyed write, after the caller
is authenticated and the body validated:

    outcome = claim(owner=..., method="POST", path="/api/orders", key=..., fingerprint=...)
    if isinstance(outcome, Replay): return outcome.response()
    ... run the view ...
    finish(outcome, response)        # or release(outcome) if the view crashed

- The key is the caller's (agent, wallet, staff user, or the client IP when anonymous) and names
  one operation (method and path): another caller, or another path, with the same key is a
  different request.
- The same key and the same body replay the stored response (status, body, the view's headers)
  with `Idempotent-Replayed: true`; another body is a 422 `idempotency_key_reused`.
- The claim is a row inserted before the view runs, under a unique constraint on (scope, key):
  `INSERT ... ON CONFLICT DO NOTHING`, then read back. A concurrent duplicate, on any app server,
  finds the other request's row; it waits up to WAIT_SECONDS for the answer and replays it, or
  gets a 409 `idempotency_in_progress` (Retry-After: 1).
- 2xx and 4xx answers are stored, except a 402 (x402: "pay, then send it again"); a 5xx (or a
  crash) releases the claim, so a retry runs again.
- A claim whose request never finished (its server died) can be taken over after LEASE.
- Keys expire after TTL (24 hours); an expired row is replaced when its key comes back, and
  `manage.py prune_idempotency_keys` deletes the rest.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from idempotency.models import IdempotencyKey, State
from lib.errors import InProgress, Unprocessable, ValidationFailed

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
METHODS = ("POST", "PATCH")
TTL = timedelta(hours=24)
# A claim this old whose request never answered is abandoned (longer than any request may run).
LEASE = timedelta(seconds=60)
# How long a concurrent duplicate waits for the first request's answer before its 409.
WAIT_SECONDS = 5.0
KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII: UUIDs, ULIDs, anything a client makes
# Per-request headers: the replay gets its own.
NOT_STORED = frozenset(
    {
        "content-type",
        "content-length",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "retry-after",
        REPLAYED_HEADER.lower(),
    }
)


def now() -> datetime:
    return timezone.now()


def parse_key(raw: str | None) -> str | None:
    """The header's key, or None when it was not sent; 400 when it is malformed."""
    if raw is None:
        return None
    key = raw.strip()
    if not KEY_PATTERN.fullmatch(key):
        raise ValidationFailed(
            f"The {HEADER} header must be 1 to 255 visible ASCII characters (a UUID, say).",
            code="invalid_idempotency_key",
            details={HEADER: "must be 1 to 255 visible ASCII characters"},
        )
    return key


def fingerprint(request: HttpRequest, data: dict[str, Any], *, ignore_query: Collection[str] = ()) -> str:
    """What makes two requests "the same body": sha256 of the parsed JSON body, keys sorted (so
    whitespace and key order do not matter), and of the query string less `ignore_query`
    (credentials: a fresh per-request signature on a retry is the same request).

    A multipart body (an upload) is not read here: the view streams it, with its own limits. Its
    fingerprint is its content type and length, which differ for almost any other file and are
    the same for a client's retry of the same one.
    """
    digest = hashlib.sha256()
    if request.content_type == "multipart/form-data":
        digest.update(f"multipart:{request.META.get('CONTENT_LENGTH', '')}".encode())
    else:
        digest.update(json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
    query = sorted(
        (name, value) for name, values in request.GET.lists() if name not in ignore_query for value in values
    )
    digest.update(b"\x00" + json.dumps(query, ensure_ascii=False).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Claim:
    pk: int
    token: str


@dataclass(frozen=True)
class Replay:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> HttpResponse:
        response = HttpResponse(self.body, status=self.status, content_type="application/json")
        for name, value in self.headers.items():
            response[name] = value
        response[REPLAYED_HEADER] = "true"
        return response


def _scope(owner: str, method: str, path: str) -> str:
    return hashlib.sha256(f"{owner}\n{method}\n{path}".encode()).hexdigest()


def claim(*, owner: str, method: str, path: str, key: str, fingerprint: str) -> Claim | Replay:
    """Claim `key` for this request, or return the stored answer to replay; raise 422 or 409."""
    scope = _scope(owner, method, path)
    token = secrets.token_hex(16)
    deadline = time.monotonic() + WAIT_SECONDS
    pause = 0.02
    row: IdempotencyKey | None = None
    while True:
        moment = now()
        if row is None:
            IdempotencyKey.objects.bulk_create(
                [
                    IdempotencyKey(
                        scope=scope,
                        key=key,
                        owner=owner[:120],
                        method=method,
                        path=path[:255],
                        fingerprint=fingerprint,
                        token=token,
                        claimed_at=moment,
                        created_at=moment,
                        expires_at=moment + TTL,
                    )
                ],
                ignore_conflicts=True,
            )
            row = IdempotencyKey.objects.filter(scope=scope, key=key).first()
            if row is None:  # inserted by another request and deleted since (expired): try again
                continue
        if row.token == token:
            return Claim(row.pk, token)
        if row.expires_at <= moment:
            # Older than 24 hours: the key is free again.
            IdempotencyKey.objects.filter(pk=row.pk, expires_at__lte=moment).delete()
            row = None
            continue
        if row.fingerprint != fingerprint:
            raise Unprocessable(
                f"This {HEADER} was already used with a different request body; use a new key for a new request.",
                code="idempotency_key_reused",
                details={HEADER: "already used with a different body"},
            )
        if row.state == State.DONE:
            return Replay(row.status or 200, row.body, dict(row.headers))
        if row.claimed_at + LEASE <= moment:
            # The request holding the claim never answered (its server died): take it over.
            taken = IdempotencyKey.objects.filter(pk=row.pk, token=row.token, state=State.IN_PROGRESS).update(
                token=token, claimed_at=moment
            )
            if taken:
                return Claim(row.pk, token)
        elif time.monotonic() + pause > deadline:
            raise InProgress(
                f"A request with this {HEADER} is still being answered; retry in a moment to get its response.",
                code="idempotency_in_progress",
                retry_after=1,
            )
        else:
            time.sleep(pause)
            pause = min(pause * 1.5, 0.25)
        row = IdempotencyKey.objects.filter(scope=scope, key=key).first()


def finish(held: Claim, response: HttpResponse) -> None:
    """Store the answer for replays. Not stored (the claim is released, and a retry runs again): a
    5xx, our failure; a 402, which asks for the same request again with a payment (x402); a file."""
    if response.streaming or response.status_code >= 500 or response.status_code == 402:
        release(held)
        return
    try:
        body = response.content.decode()
    except UnicodeDecodeError:
        release(held)
        return
    headers = {name: value for name, value in response.items() if name.lower() not in NOT_STORED}
    IdempotencyKey.objects.filter(pk=held.pk, token=held.token, state=State.IN_PROGRESS).update(
        state=State.DONE, status=response.status_code, body=body, headers=headers
    )


def release(held: Claim) -> None:
    """Forget the claim: the request failed on our side, and a retry should run it again."""
    IdempotencyKey.objects.filter(pk=held.pk, token=held.token, state=State.IN_PROGRESS).delete()


def prune(*, before: datetime | None = None) -> int:
    """Delete expired keys; returns how many."""
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=before or now()).delete()
    return deleted
