"""Delete Idempotency-Key rows older than 24 hours. Run it daily (cron, or after `make worker`'s
requeue); an expired key that comes back is replaced on the spot, so this only bounds the table."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from idempotency.services import prune


class Command(BaseCommand):
    help = "Delete expired Idempotency-Key records (older than 24 hours)."

    def handle(self, *args: Any, **options: Any) -> None:
        count = prune()
        if options["verbosity"] > 0:
            self.stdout.write(f"Deleted {count} expired idempotency key(s).")
