"""lib.tasks: tasks queued with the change that causes them, retried with capped
exponential backoff and full jitter, and taken up again when a dead worker left them running."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction
from django.tasks import task
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from lib import tasks
from lib.tasks import backoff, enqueue, requeue_stale, retry_later

BASE = timedelta(seconds=10)
CAP = timedelta(minutes=5)


@task()
def echo(value: str) -> str:
    return value


ECHO = f"{__name__}.echo"


def rows() -> Any:
    return DBTaskResult.objects.filter(task_path=ECHO)


def test_backoff_grows_exponentially_up_to_the_cap_with_full_jitter(monkeypatch):
    monkeypatch.setattr(tasks._random, "uniform", lambda low, high: high)  # the top of each range
    ceilings = [backoff(n, base=BASE, cap=CAP).total_seconds() for n in range(1, 9)]
    assert ceilings == [10, 20, 40, 80, 160, 300, 300, 300]
    assert backoff(10_000, base=BASE, cap=CAP) == CAP  # no overflow for absurd attempt numbers

    monkeypatch.setattr(tasks._random, "uniform", lambda low, high: low)  # the bottom: the floor, not 0
    assert backoff(5, base=BASE, cap=CAP) == timedelta(seconds=1)


def test_backoff_is_spread_over_the_whole_range():
    delays = [backoff(4, base=BASE, cap=CAP).total_seconds() for _ in range(400)]
    assert 1 <= min(delays) < 20
    assert 60 < max(delays) <= 80
    assert len(set(delays)) > 300  # jitter: a crowd of retries does not come back together


def test_retry_later_queues_the_task_for_later_but_never_past_not_after(db):
    before = timezone.now()
    run_after = retry_later(echo, "again", attempt=3, base=BASE, cap=CAP)
    assert run_after is not None
    assert before + timedelta(seconds=1) <= run_after <= timezone.now() + timedelta(seconds=40)
    row = rows().get()
    assert row.run_after == run_after
    assert row.args_kwargs == {"args": ["again"], "kwargs": {}}
    assert not DBTaskResult.objects.ready().filter(task_path=ECHO).exists()  # not yet

    soon = timezone.now() + timedelta(milliseconds=1500)
    assert retry_later(echo, "capped", attempt=20, base=BASE, cap=CAP, not_after=soon) == soon


def test_retry_later_does_nothing_on_a_backend_that_cannot_defer(settings):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    assert retry_later(echo, "x", attempt=1, base=BASE, cap=CAP) is None


def test_enqueue_writes_the_task_in_the_callers_transaction(db):
    class AbortError(Exception):
        pass

    def enqueue_then_abort() -> None:
        with transaction.atomic():
            enqueue(echo, "rolled back")
            assert rows().count() == 1  # written now, in this transaction...
            raise AbortError

    with pytest.raises(AbortError):
        enqueue_then_abort()
    assert rows().count() == 0  # ...and gone with it


def test_enqueue_on_another_backend_waits_for_commit(settings, django_capture_on_commit_callbacks):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
    with django_capture_on_commit_callbacks() as callbacks:
        enqueue(echo, "later")
    assert len(callbacks) == 1


def _claimed(started_ago: timedelta) -> DBTaskResult[[str], str]:
    echo.enqueue("work")
    row = rows().order_by("-enqueued_at").first()
    assert row is not None
    row.claim("worker-that-died")
    DBTaskResult.objects.filter(pk=row.pk).update(started_at=timezone.now() - started_ago)
    return row


def test_a_task_left_running_by_a_dead_worker_is_taken_up_again(db):
    stale = _claimed(timedelta(minutes=10))
    busy = _claimed(timedelta(seconds=30))  # a live worker's task: left alone
    out = StringIO()
    call_command("requeue_stale_tasks", "--older-than", "300", stdout=out)
    assert "Requeued 1 task(s)" in out.getvalue()

    stale.refresh_from_db()
    busy.refresh_from_db()
    assert (stale.status, stale.started_at) == ("READY", None)
    assert stale.worker_ids == ["worker-that-died"]  # the history stays
    assert busy.status == "RUNNING"
    # The next worker runs it, as the queue's ready() sees it.
    ready = DBTaskResult.objects.ready().filter(task_path=ECHO).get()
    assert ready.pk == stale.pk
    ready.claim("next-worker")
    ready.set_successful(ready.task.call(*ready.task_result.args))
    ready.refresh_from_db()
    assert (ready.status, ready.return_value, ready.worker_ids) == (
        "SUCCESSFUL",
        "work",
        ["worker-that-died", "next-worker"],
    )
    assert requeue_stale(older_than=timedelta(minutes=5)) == 0  # finished tasks are never touched
