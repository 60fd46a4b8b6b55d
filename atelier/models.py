"""Models shared by all apps: the rate limiter's counters."""

from __future__ import annotations

from django.db import models


class RateLimitCounter(models.Model):
    # Its table, atelier_ratelimitcounter (Django's default name), is written by raw SQL in
    # lib.ratelimit (COUNTER_TABLE), which names it rather than importing this app.
    """One rate-limit bucket: the requests a client made to a scope in one window
    (`lib.ratelimit`, when CACHE_URL is the database). Counted with one atomic upsert."""

    bucket = models.CharField(primary_key=True, max_length=250)
    count = models.PositiveIntegerField()
    expires = models.BigIntegerField(db_index=True)  # unix seconds; expired rows are swept

    def __str__(self) -> str:
        return f"{self.bucket}: {self.count}"


class ScheduledJob(models.Model):
    """One periodic job of `manage.py scheduler`: when it last started and how it ended. The row is
    read and written under the job's advisory lock (lib.locks), so of several schedulers on
    several hosts exactly one runs each due round."""

    name = models.CharField(primary_key=True, max_length=60)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_ok = models.BooleanField(null=True)
    last_result = models.TextField(blank=True)
    last_host = models.CharField(max_length=200, blank=True)
    runs = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return self.name
