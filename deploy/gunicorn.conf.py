"""gunicorn settings for an Atelier app server: `gunicorn -c deploy/gunicorn.conf.py atelier.wsgi`.

Environment: GUNICORN_BIND (default 127.0.0.1:8000), WEB_CONCURRENCY (worker processes, default 2
per core), GUNICORN_TIMEOUT, and PROMETHEUS_MULTIPROC_DIR (docs/deploy.md).
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

from prometheus_client import multiprocess

# An app server: it runs on the escrow's public addresses and refuses a hot-wallet key (settings).
os.environ.setdefault("ATELIER_ROLE", "app")

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", str(2 * multiprocessing.cpu_count())))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
# A worker is recycled now and then, so a slow leak never takes a server down.
max_requests = 2000
max_requests_jitter = 200
# Our RequestLogMiddleware writes one JSON line per request (no query strings); gunicorn's access
# log would add the query string, where a per-request wallet signature may travel.
accesslog = None
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def child_exit(server: Any, worker: Any) -> None:
    """A worker's metric files stop counting as live once it exits (prometheus_client multiprocess)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
