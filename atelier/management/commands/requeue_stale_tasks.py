"""Put tasks a dead worker left RUNNING back in the queue. `make run` and `make worker` run it before
starting the worker; with several long-lived workers, run it periodically too (cron, every few minutes)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from lib.tasks import requeue_stale


class Command(BaseCommand):
    help = "Reset tasks RUNNING for longer than --older-than seconds to READY, so a worker runs them again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=int,
            default=300,
            help="Seconds a task must have been running to count as abandoned (default 300; longer than any task).",
        )

    def handle(self, *args: Any, older_than: int, **options: Any) -> None:
        count = requeue_stale(older_than=timedelta(seconds=older_than))
        if options["verbosity"] > 0:
            self.stdout.write(f"Requeued {count} task(s) left running for over {older_than} s.")
