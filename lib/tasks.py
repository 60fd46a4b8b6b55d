"""What every background task shares: enqueueing with the change that causes it, retrying later
with exponential backoff and full jitter, and taking up tasks a dead worker left running.

`django.tasks` with django-tasks-db stores each task as a row (`DBTaskResult`) that `manage.py
db_worker` claims and runs. The backend has no retries of its own: a task that wants another go
enqueues itself again with `retry_later`, which picks the time.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import router, transaction
from django.tasks import Task, TaskResultStatus
from django.utils import timezone
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult

_random = random.SystemRandom()


def enqueue(task: Task[Any, Any], *args: Any, **kwargs: Any) -> None:
    """Queue `task` together with the change that causes it.

    The database backend writes its row in the current transaction, so the task exists exactly
    when the change commits (a rollback takes both away, and a crash after commit loses neither).
    Any other backend gets the task after commit, so it never sees uncommitted rows.
    """
    if isinstance(task.get_backend(), DatabaseBackend):
        task.enqueue(*args, **kwargs)
    else:
        transaction.on_commit(partial(task.enqueue, *args, **kwargs))


def backoff(attempt: int, *, base: timedelta, cap: timedelta, floor: timedelta = timedelta(seconds=1)) -> timedelta:
    """How long to wait after the `attempt`-th try (1, 2, ...) failed: exponential backoff with full
    jitter, a uniform draw from [0, min(cap, base * 2 ** (attempt - 1))], never under `floor`.
    Full jitter spreads a crowd of retries (an endpoint that was down for everyone) evenly."""
    exponent = min(max(attempt, 1) - 1, 62)  # 2**62 seconds is far past any cap
    ceiling = min(cap.total_seconds(), base.total_seconds() * 2**exponent)
    return max(floor, timedelta(seconds=_random.uniform(0, ceiling)))


def retry_later(
    task: Task[Any, Any],
    *args: Any,
    attempt: int,
    base: timedelta,
    cap: timedelta,
    not_after: datetime | None = None,
    **kwargs: Any,
) -> datetime | None:
    """Enqueue `task(*args, **kwargs)` again after `backoff(attempt)`, or at `not_after` if that is
    sooner. Returns when it will run, or None if the backend cannot defer (nothing is queued:
    such backends run tasks at once, and a retry loop there would never wait)."""
    if not task.get_backend().supports_defer:
        return None
    run_after = timezone.now() + backoff(attempt, base=base, cap=cap)
    if not_after is not None:
        run_after = min(run_after, not_after)
    enqueue(task.using(run_after=run_after), *args, **kwargs)
    return run_after


def requeue_stale(*, older_than: timedelta) -> int:
    """Put tasks that have been RUNNING for longer than `older_than` back in the queue (READY).

    A worker marks a task RUNNING when it claims it and FINISHED (successful or failed) when it
    is done, each in its own commit; a worker that dies in between (killed, out of memory, the
    machine lost) leaves the row RUNNING forever, and no worker looks at it again. Resetting it
    to READY lets the next worker run it again, so tasks must be safe to run twice (ours are).
    `older_than` must be longer than any task takes, or a slow task would be run twice at once.
    The update is one conditional statement, so two sweeps at once reset each row once.
    """
    cutoff = timezone.now() - older_than
    using = router.db_for_write(DBTaskResult)
    return (
        DBTaskResult.objects.using(using)
        .filter(status=TaskResultStatus.RUNNING, started_at__lt=cutoff)
        # started_at goes back to None as for a never-claimed task; worker_ids keeps who tried.
        .update(status=TaskResultStatus.READY, started_at=None)
    )
