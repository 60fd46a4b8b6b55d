"""`GET /healthz` (the process is up), `GET /readyz` (everything this server needs answers) and
`check --deploy` say so when the rate limiter cannot count (it fails open)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import caches
from django.db import connection
from django.test import Client

from agents.models import Agent
from lib import ratelimit
from tests.conftest import Api
from tests.lib.test_ratelimit import REGISTER, registration

ROOT = Path(__file__).resolve().parent.parent


def _drop_counters() -> None:
    """As on a database that never had the counters' table (rolled back with the test)."""
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE atelier_ratelimitcounter")


@pytest.fixture
def chains(settings: Any) -> Iterator[list[dict[str, Any]]]:
    """A JSON-RPC endpoint on loopback standing in for both chains; records what it was asked."""
    calls: list[dict[str, Any]] = []

    class Rpc(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            calls.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "result": "0x1"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Rpc)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    settings.SOLANA_RPC_URL = settings.BASE_RPC_URL = url
    yield calls
    server.shutdown()


def test_healthz_is_200_while_the_process_runs_and_touches_nothing_shared(db):
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE atelier_cache")
    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_readyz_is_200_json_when_everything_answers(db, chains):
    response = Client().get("/readyz")

    assert response.status_code == 200, response.json()
    assert response.json() == {
        "status": "ok",
        "checks": {
            "database": "ok",
            "cache": "ok",
            "rate_limiter": "ok",
            "storage": "ok",
            "chain_solana": "ok",
            "chain_base": "ok",
        },
    }
    assert sorted(call["method"] for call in chains) == ["eth_blockNumber", "getLatestBlockhash"]
    assert "no-cache" in response["Cache-Control"]


def test_readyz_is_503_naming_a_chain_that_does_not_answer_without_its_url(db, chains, settings):
    settings.BASE_RPC_URL = "http://127.0.0.1:9/?api-key=sk_live_secret_in_the_url"
    response = Client().get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["chain_base"] == "the base RPC does not answer (ConnectionError)"
    assert response.json()["checks"]["chain_solana"] == "ok"
    assert "secret" not in response.content.decode()
    assert "127.0.0.1" not in response.content.decode()


def test_readyz_is_503_when_the_storage_does_not_answer(db, chains, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {
            "BACKEND": "lib.privatestorage.PrivateS3Storage",
            "OPTIONS": {
                "bucket_name": "nowhere",
                "endpoint_url": "http://127.0.0.1:9",
                "access_key": "AKIAEXAMPLEKEYID",
                "secret_key": "wJalrXUtnFEMI-secret-access-key",
                "addressing_style": "path",
            },
        },
    }
    response = Client().get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["storage"].startswith("the private file storage does not answer (")
    assert "AKIAEXAMPLEKEYID" not in response.content.decode()
    assert "wJalrXUtnFEMI" not in response.content.decode()


def test_without_the_counters_table_the_limiter_fails_open_and_readyz_is_503(db, caplog):
    _drop_counters()
    api = Api(Client(REMOTE_ADDR="198.51.100.30"))

    responses = [api.post(REGISTER, registration(number)) for number in range(7)]
    health = Client().get("/readyz")

    assert [response.status_code for response in responses] == [201] * 7  # open, but not quietly
    assert Agent.objects.count() == 7
    assert health.status_code == 503
    body = health.json()
    assert body["status"] == "failing"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["rate_limiter"].startswith("the rate-limit counters cannot be reached")


def test_without_the_cache_table_readyz_is_503(db):
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE atelier_cache")

    response = Client().get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["cache"].startswith("the shared cache does not answer")


def test_readyz_is_503_while_the_limiter_is_tripped(db, monkeypatch):
    monkeypatch.setattr(time, "monotonic", lambda: 100.0)  # the clock lib.ratelimit reads
    ratelimit._tripped[caches["default"]] = 105.0

    response = Client().get("/readyz")

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
