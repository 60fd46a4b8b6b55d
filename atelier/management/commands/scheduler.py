"""`manage.py scheduler`: run the periodic jobs, on any number of hosts at once.

Each job has an interval. Every tick, for each job, the scheduler tries the job's PostgreSQL
advisory lock (lib.locks); holding it, it reads the job's row (atelier.models.ScheduledJob),
and runs the job only if its interval has passed since the last start by anyone. So with several
schedulers running, each due round of a job runs exactly once, on whichever host got there first,
and a long job is never run twice at once. A scheduler that dies mid-job releases the lock with its
connection; the next due round runs as usual.

`--once` runs whatever is due and exits (cron, tests); `--job NAME` limits it to some jobs.
SIGTERM and SIGINT finish the running job and stop.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from io import StringIO
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections
from django.utils import timezone

from atelier.models import ScheduledJob
from idempotency.services import prune as prune_idempotency_keys
from lib import locks
from lib.tasks import requeue_stale
from orders.checkout import x402
from orders.checkout.escrow_scan import escrow_scan
from orders.disputes.announce import announce_to_staff
from payments import chains
from payments.tasks import release_held_transfers

log = logging.getLogger("atelier.scheduler")


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    run: Callable[[], str]


def _requeue_stale_tasks() -> str:
    return f"requeued {requeue_stale(older_than=timedelta(seconds=settings.REQUEUE_STALE_AFTER_SECONDS))}"


def _prune_idempotency_keys() -> str:
    return f"deleted {prune_idempotency_keys()}"


def _prune_task_results() -> str:
    out = StringIO()
    call_command("prune_db_task_results", min_age_days=7, failed_min_age_days=30, stdout=out)
    return out.getvalue().strip() or "done"


def _expire_x402_intents() -> str:
    return f"deleted {x402.intents_prune(before=timezone.now() - timedelta(days=7))}"


def _scan_escrow() -> str:
    found = []
    for chain in ("solana", "base"):
        try:
            found.append(f"{chain}: {len(escrow_scan(chain))} waiting")
        except chains.ChainError as exc:
            found.append(f"{chain}: {type(exc).__name__}")
    return "; ".join(found)


def _release_held_transfers() -> str:
    return f"released {release_held_transfers()}"


def _announce_to_staff() -> str:
    return f"told staff of {announce_to_staff()}"


def _reconcile() -> str:
    out = StringIO()
    try:
        call_command("reconcile", stdout=out)
    except CommandError as exc:
        raise RuntimeError(f"{exc} (exit {exc.returncode})\n{out.getvalue()}") from None
    return out.getvalue().strip()


JOBS = [
    Job("requeue_stale_tasks", timedelta(minutes=1), _requeue_stale_tasks),
    Job("scan_escrow", timedelta(seconds=15), _scan_escrow),
    Job("prune_idempotency_keys", timedelta(hours=1), _prune_idempotency_keys),
    Job("prune_task_results", timedelta(hours=6), _prune_task_results),
    Job("expire_x402_intents", timedelta(hours=1), _expire_x402_intents),
    Job("reconcile", timedelta(minutes=10), _reconcile),
    # Held for want of a USDC account: one account read each, so not every tick.
    Job("release_held_transfers", timedelta(minutes=10), _release_held_transfers),
    # New disputes and newly overdue orders, a minute's burst in one email to staff who resolve them.
    Job("announce_to_staff", timedelta(minutes=1), _announce_to_staff),
]


def run_if_due(job: Job, *, host: str) -> bool | None:
    """Run `job` if no one else is running it and its interval has passed. True or False: it ran
    and succeeded or failed; None: not due, or another scheduler holds it."""
    with locks.advisory_lock(f"scheduler:{job.name}") as held:
        if not held:
            return None
        row, _ = ScheduledJob.objects.get_or_create(name=job.name)
        started = timezone.now()
        if row.last_started_at is not None and row.last_started_at + job.every > started:
            return None
        ScheduledJob.objects.filter(pk=job.name).update(last_started_at=started, last_host=host)
        clock = time.perf_counter()
        try:
            result, ok = job.run(), True
        except Exception as exc:
            result, ok = f"{type(exc).__name__}: {exc}", False
        log.log(
            logging.INFO if ok else logging.ERROR,
            "job %s %s: %s",
            job.name,
            "ok" if ok else "failed",
            result[:500],
            extra={
                "event": "job",
                "job": job.name,
                "ok": ok,
                "duration_ms": round((time.perf_counter() - clock) * 1000, 1),
            },
        )
        ScheduledJob.objects.filter(pk=job.name).update(
            last_finished_at=timezone.now(), last_ok=ok, last_result=result[:2000], runs=row.runs + 1
        )
        return ok


class Command(BaseCommand):
    help = "Run the periodic jobs on their schedule; safe to start on several hosts (one runs each job)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Run what is due once and exit.")
        parser.add_argument("--tick", type=float, default=5.0, help="Seconds between looks (default 5).")
        parser.add_argument("--job", action="append", choices=[job.name for job in JOBS], help="Only this job.")

    def handle(self, *args: Any, once: bool, tick: float, job: list[str] | None, **options: Any) -> None:
        jobs = [j for j in JOBS if not job or j.name in job]
        host = f"{socket.gethostname()}:{os.getpid()}"
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while not stopping:
            for each in jobs:
                if stopping:
                    break
                ran = run_if_due(each, host=host)
                if ran is not None and options["verbosity"] > 0:
                    self.stdout.write(f"{each.name}: {'ok' if ran else 'FAILED'}")
            if once:
                return
            close_old_connections()  # a connection past CONN_MAX_AGE or broken is replaced next tick
            time.sleep(tick)
