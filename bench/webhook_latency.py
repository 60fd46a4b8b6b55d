"""Webhook latency from commit to receiver, with a real `manage.py db_worker` process.

    .venv/bin/python bench/webhook_latency.py                       # a file SQLite database
    .venv/bin/python bench/webhook_latency.py --interval 0.1        # the worker polls faster
    .venv/bin/python bench/webhook_latency.py --database-url postgres://postgres@127.0.0.1:5432/webhook_bench

It migrates a fresh database (SQLite in a temporary folder; PostgreSQL: the named database,
created if missing and emptied first), starts a receiver on loopback that verifies both signatures,
starts `db_worker`, and creates orders one at a time at random intervals. Each order's
`order.created` webhook is timed from the moment its transaction committed to the moment the
receiver had the request (each is also checked for both signatures). Prints the median, p90, p99 and max.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = "bench.latency_settings"


def _prepare_environment(database_url: str | None, data_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = SETTINGS
    env["ATELIER_DATA_DIR"] = data_dir
    env["DATABASE_URL"] = database_url or f"sqlite:///{data_dir}/bench.sqlite3"
    env.setdefault("LOG_LEVEL", "WARNING")
    # Benchmarks run with DEBUG off and the local chains: their own throwaway key, the chains asked for.
    env.setdefault("SECRET_KEY", "bench-only-" + secrets.token_hex(24))
    env.setdefault("CHAIN_MODE", "local")
    env.setdefault("ALLOW_LOCAL_CHAIN", "true")
    os.environ.update(env)
    return env


def _create_postgres_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--interval", type=float, default=1.0, help="db_worker --interval (make run uses 1)")
    parser.add_argument("--gap", type=float, default=0.25, help="mean seconds between orders (uniform 0..2x)")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="atelier-webhook-bench-")
    env = _prepare_environment(args.database_url, data_dir)
    if args.database_url and args.database_url.startswith("postgres"):
        _create_postgres_database(args.database_url)
    sys.path.insert(0, str(ROOT))

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)

    from agents.models import Agent
    from agents.services import agent_register, service_create
    from lib.principal import Principal
    from orders.core.transitions import order_open
    from tests.webhooks.receiver import Receiver, receiving

    arrivals: dict[str, float] = {}
    lock = threading.Lock()

    class TimingReceiver(Receiver):
        def answer(self) -> int | str:
            with lock:
                arrivals[f"#{len(self.received)}"] = time.perf_counter()
            return 200

    worker: subprocess.Popen[bytes] | None = None
    with receiving(TimingReceiver()) as receiver:
        agent, _key = agent_register(name="Latency Agent", description="Answers fast.", payout_chain="solana")
        Agent.objects.filter(pk=agent.pk).update(endpoint_url=receiver.url)
        receiver.secret = agent.webhook_secret
        buyer, _ = agent_register(name="Buying Agent", description="Buys things.", payout_chain="solana")
        service = service_create(
            agent=Agent.objects.get(pk=agent.pk),
            title="Instant haiku",
            description="A haiku about your brief, written the moment you order it.",
            category="writing",
            price_usd=10,
            price_type="fixed",
        )
        worker = subprocess.Popen(  # noqa: S603 - our own manage.py, fixed arguments
            [
                sys.executable,
                "manage.py",
                "db_worker",
                "--queue-name",
                "*",
                "--interval",
                str(args.interval),
                "--no-startup-delay",
                "--no-reload",
                "--verbosity",
                "0",
            ],
            cwd=ROOT,
            env=env,
        )
        try:
            time.sleep(2)  # the worker's start-up (Django, the first poll)
            commits: list[float] = []
            for _ in range(args.events):
                order_open(
                    service=service,
                    actor=Principal(agent=buyer),
                    brief="Autumn leaves.",
                    reference_urls=[],
                    payment_chain="solana",
                )
                commits.append(time.perf_counter())  # order_open has committed when it returns
                time.sleep(random.uniform(0, 2 * args.gap))  # noqa: S311 - spacing, not security
            deadline = time.monotonic() + 30
            while len(receiver.received) < args.events and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            worker.terminate()
            worker.wait(timeout=10)

    received = receiver.received
    if not all(r.verified for r in received):
        raise SystemExit("a webhook failed signature verification")
    # One order at a time, one worker: webhooks arrive in commit order; match each by order id.
    order_ids = [r.json["order_id"] for r in received]
    if len(set(order_ids)) != len(order_ids):
        raise SystemExit("a webhook arrived twice")
    from orders.models import Order

    by_order = {order_id: arrivals[f"#{i}"] for i, order_id in enumerate(order_ids)}
    created = list(Order.objects.order_by("id").values_list("id", flat=True))
    latencies = [
        (by_order[order_id] - commit) * 1000
        for order_id, commit in zip(created, commits, strict=True)
        if order_id in by_order
    ]
    vendor = "PostgreSQL" if env["DATABASE_URL"].startswith("postgres") else "SQLite (file)"
    print(f"{vendor}, db_worker --interval {args.interval}: {len(latencies)}/{args.events} webhooks delivered")
    if latencies:
        print(
            "commit -> receiver, ms: "
            f"median {statistics.median(latencies):.0f}, p90 {_percentile(latencies, 0.9):.0f}, "
            f"p99 {_percentile(latencies, 0.99):.0f}, max {max(latencies):.0f}, min {min(latencies):.0f}"
        )


if __name__ == "__main__":
    main()
