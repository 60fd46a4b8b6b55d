"""`make prod-sim` in CI: two app servers, two workers and the scheduler over PostgreSQL, Redis,
moto's S3 and the devchains; paid orders through both servers, one server and one worker killed
mid-run; every end-state check of bench/prod_sim.py must pass. PRODSIM_ORDERS (200) sets the size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def _redis_up() -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the simulation runs on PostgreSQL")
@pytest.mark.skipif(not _redis_up(), reason="the simulation needs Redis on 127.0.0.1:6379")
def test_prod_sim_survives_a_killed_server_and_worker():
    settings = connection.settings_dict
    pg = f"postgres://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_", "DATABASE_URL"))}
    env.update({"PRODSIM_PG": pg, "PRODSIM_ORDERS": os.environ.get("PRODSIM_ORDERS", "200")})
    result = subprocess.run(
        [sys.executable, "bench/prod_sim.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    figures = json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}
    print(json.dumps(figures, indent=2))
    assert result.returncode == 0, f"{figures.get('failures')}\n{result.stderr[-3000:]}"
    assert figures["orders_completed"] == figures["orders"]
    assert figures["reconcile_exit"] == 0
    assert figures["register_statuses_across_servers"].count(429) == 3
