"""One row per Idempotency-Key a caller sent on a POST or PATCH: claimed, then the stored response.

A row is claimed (state `in_progress`) before the view runs; the unique constraint on
(scope, key) is what makes a concurrent duplicate, on this app server or another, find the claim
instead of running the view a second time. When the view answers, the row becomes `done` with the
response (status, body, the view's own headers), which later requests with the same key and body
get back. Rows expire after 24 hours (`manage.py prune_idempotency_keys` deletes them).
"""

from __future__ import annotations

from django.db import models


class State(models.TextChoices):
    IN_PROGRESS = "in_progress"
    DONE = "done"


class IdempotencyKey(models.Model):
    # sha256 of (caller, method, path): the key is the caller's, for that one operation.
    scope = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    # The parts of the scope, for a person reading the table (the path cut to 255 characters).
    owner = models.CharField(max_length=120)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=255)
    # sha256 of the request body (JSON: canonical, credentials left out; multipart: see services).
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_PROGRESS)
    # Who holds an in-progress claim, so that a request whose claim was taken over (its server died
    # and the lease ran out) cannot overwrite or release the new holder's row.
    token = models.CharField(max_length=32)
    claimed_at = models.DateTimeField()
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    body = models.TextField(blank=True, default="")
    headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="idempotency_key_unique_in_scope")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.key} ({self.owner})"
