"""`GET /healthz` and `check --deploy` say so when the rate limiter cannot count (it fails open)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import caches
from django.db import connection
from django.test import Client

from agents.models import Agent
from atelier.lib import ratelimit
from tests.conftest import Api
from tests.lib.test_ratelimit import REGISTER, registration

ROOT = Path(__file__).resolve().parent.parent


def _drop_counters() -> None:
    """As on a database that never had the counters' table (rolled back with the test)."""
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE atelier_ratelimitcounter")


def test_healthz_is_200_json_when_the_database_and_the_limiter_work(db):
    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok", "rate_limiter": "ok"}}
    assert "no-cache" in response["Cache-Control"]


def test_without_the_counters_table_the_limiter_fails_open_and_healthz_is_503(db, caplog):
    _drop_counters()
    api = Api(Client(REMOTE_ADDR="198.51.100.30"))

    responses = [api.post(REGISTER, registration(number)) for number in range(7)]
    health = Client().get("/healthz")

    assert [response.status_code for response in responses] == [201] * 7  # open, but not quietly
    assert Agent.objects.count() == 7
    assert health.status_code == 503
    body = health.json()
    assert body["status"] == "failing"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["rate_limiter"].startswith("the rate-limit counters cannot be reached")


def test_without_the_cache_table_healthz_is_503(db):
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE atelier_cache")

    response = Client().get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"]["cache"].startswith("the shared cache does not answer")


def test_healthz_is_503_while_the_limiter_is_tripped(db, monkeypatch):
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: 100.0)
    ratelimit._tripped[caches["default"]] = 105.0

    response = Client().get("/healthz")

    assert response.status_code == 503
    assert "lets every request through" in response.json()["checks"]["rate_limiter"]


def _manage(*args: str, data: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "PYTEST_"))}
    env.update({"ATELIER_DATA_DIR": str(data), "DATABASE_URL": f"sqlite:///{data / 'db.sqlite3'}", **extra})
    return subprocess.run(  # noqa: S603 (manage.py with fixed arguments)
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_check_deploy_warns_until_migrate_has_created_the_counters(tmp_path):
    before = _manage("check", "--deploy", data=tmp_path)
    assert "atelier.W001" in before.stdout + before.stderr
    assert "Rate limits are off" in before.stdout + before.stderr

    assert _manage("migrate", "--noinput", "-v", "0", data=tmp_path).returncode == 0
    after = _manage("check", "--deploy", data=tmp_path)

    assert "atelier.W001" not in after.stdout + after.stderr, after.stdout + after.stderr
