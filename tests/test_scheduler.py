"""`manage.py scheduler`: each due job runs once per interval, whoever runs it; on PostgreSQL the
advisory lock makes several schedulers (hosts) agree, so each round runs on exactly one."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.utils import timezone

from atelier.management.commands import scheduler
from atelier.models import ScheduledJob
from lib import locks

needs_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="advisory locks are PostgreSQL's")


def counting_job(name: str = "counting", every: timedelta = timedelta(minutes=1)) -> tuple[scheduler.Job, list[int]]:
    runs: list[int] = []

    def run() -> str:
        runs.append(1)
        return "counted"

    return scheduler.Job(name, every, run), runs


def test_a_due_job_runs_and_is_recorded_then_waits_its_interval(db):
    job, runs = counting_job()

    assert scheduler.run_if_due(job, host="a") is True
    assert scheduler.run_if_due(job, host="b") is None  # not due again for a minute
    row = ScheduledJob.objects.get(pk="counting")
    assert (row.runs, row.last_ok, row.last_result, row.last_host) == (1, True, "counted", "a")

    ScheduledJob.objects.filter(pk="counting").update(last_started_at=timezone.now() - timedelta(minutes=2))
    assert scheduler.run_if_due(job, host="b") is True
    assert len(runs) == 2


def test_a_failing_job_is_recorded_and_runs_again_next_round(db):
    def broken() -> str:
        raise RuntimeError("the chain is down")

    assert scheduler.run_if_due(scheduler.Job("broken", timedelta(0), broken), host="a") is False
    row = ScheduledJob.objects.get(pk="broken")
    assert (row.last_ok, row.last_result) == (False, "RuntimeError: the chain is down")
    assert scheduler.run_if_due(scheduler.Job("broken", timedelta(0), broken), host="a") is False


def test_once_runs_the_housekeeping_jobs(db):
    call_command(
        "scheduler",
        "--once",
        "--job",
        "requeue_stale_tasks",
        "--job",
        "prune_idempotency_keys",
        "--job",
        "expire_x402_intents",
        "--job",
        "prune_task_results",
        verbosity=0,
    )
    rows = {row.name: row for row in ScheduledJob.objects.all()}
    assert set(rows) == {"requeue_stale_tasks", "prune_idempotency_keys", "expire_x402_intents", "prune_task_results"}
    assert all(row.last_ok for row in rows.values()), {r.name: r.last_result for r in rows.values()}
    assert rows["expire_x402_intents"].last_result == "deleted 0"


@needs_postgres
@pytest.mark.postgres
def test_a_job_locked_by_another_session_is_left_to_it(db):
    job, runs = counting_job("held")
    settings = connection.settings_dict
    other = psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        password=settings["PASSWORD"] or None,
        autocommit=True,
    )
    try:
        other.execute("SELECT pg_advisory_lock(%s, %s)", [locks.NAMESPACE, locks._key("scheduler:held")])
        assert scheduler.run_if_due(job, host="a") is None
        other.execute("SELECT pg_advisory_unlock(%s, %s)", [locks.NAMESPACE, locks._key("scheduler:held")])
        assert scheduler.run_if_due(job, host="a") is True
    finally:
        other.close()
    assert len(runs) == 1


@needs_postgres
@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_eight_schedulers_at_once_run_each_round_once():
    job, runs = counting_job("raced")
    start = threading.Barrier(8)
    results: list[bool | None] = []

    def scheduler_host(number: int) -> None:
        try:
            start.wait()
            for _ in range(5):
                results.append(scheduler.run_if_due(job, host=f"host-{number}"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=scheduler_host, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(runs) == 1
    assert results.count(True) == 1
    assert ScheduledJob.objects.get(pk="raced").runs == 1
