"""`python -m tests.fault_worker [db_worker options]`: the real `manage.py db_worker`, with a fault
switched on by environment variables. Only tests/test_faults.py starts it, as a subprocess it then
kills with SIGKILL; nothing here is reachable from the app.

- FAULT_PAUSE=before_send | after_send: when the payout task reaches the chain, write FAULT_MARKER
  and sleep (before or after the signed bytes are sent), so the test kills the worker right there.
- FAULT_WEBHOOK_TIMEOUT, FAULT_WEBHOOK_RETRY_BASE, FAULT_WEBHOOK_LEASE (seconds): shorter webhook
  timings, so a test need not wait the production minutes.
- FAULT_ALLOW_LOOPBACK=1: webhooks may go to a receiver on loopback (what the webhook tests set).
"""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any


def _pause_at_send(where: str, marker: Path) -> None:
    from payments.chains.evm import EvmClient
    from payments.chains.solana import SolanaClient

    for client_class in (SolanaClient, EvmClient):
        real_send = client_class.send_raw

        def send_raw(self: Any, raw: bytes, real_send: Any = real_send) -> None:
            if where == "after_send":
                real_send(self, raw)
            marker.write_text(where)
            time.sleep(3600)  # the test kills the process here

        client_class.send_raw = send_raw  # type: ignore[method-assign]


def _webhook_timings() -> None:
    from webhooks import services

    if value := os.environ.get("FAULT_WEBHOOK_TIMEOUT"):
        services.TIMEOUT_SECONDS = float(value)
    if value := os.environ.get("FAULT_WEBHOOK_RETRY_BASE"):
        services.RETRY_BASE = timedelta(seconds=float(value))
    if value := os.environ.get("FAULT_WEBHOOK_LEASE"):
        services.LEASE = timedelta(seconds=float(value))


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atelier.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import execute_from_command_line

    if where := os.environ.get("FAULT_PAUSE"):
        _pause_at_send(where, Path(os.environ["FAULT_MARKER"]))
    if any(name.startswith("FAULT_WEBHOOK_") for name in os.environ):
        _webhook_timings()
    if os.environ.get("FAULT_ALLOW_LOOPBACK"):
        settings.SAFEHTTP_ALLOW_LOOPBACK = True
    execute_from_command_line(["manage.py", "db_worker", *sys.argv[1:]])


if __name__ == "__main__":
    main()
