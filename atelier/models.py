"""Models shared by all apps: the rate limiter's counters."""

from __future__ import annotations

from django.db import models


class RateLimitCounter(models.Model):
    # Its table, atelier_ratelimitcounter (Django's default name), is written by raw SQL in
    # atelier.lib.ratelimit (COUNTER_TABLE), which names it rather than importing this app.
    """One rate-limit bucket: the requests a client made to a scope in one window
    (`atelier.lib.ratelimit`, when CACHE_URL is the database). Counted with one atomic upsert."""

    bucket = models.CharField(primary_key=True, max_length=250)
    count = models.PositiveIntegerField()
    expires = models.BigIntegerField(db_index=True)  # unix seconds; expired rows are swept

    def __str__(self) -> str:
        return f"{self.bucket}: {self.count}"
