"""`GET /metrics`: Prometheus text with the request metrics and the business gauges; not public."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from django.test import Client

from atelier.models import ScheduledJob
from orders.models import Status
from tests.conftest import make_order


def value(text: str, metric: str) -> float:
    found = re.search(rf"^{re.escape(metric)} (\S+)$", text, re.MULTILINE)
    assert found, f"{metric} not in the output"
    return float(found.group(1))


def test_metrics_has_the_business_gauges(buyer, agent, settings):
    settings.METRICS_TOKEN = "metrics-token-for-tests"
    make_order(buyer, agent, Status.PAID)
    make_order(buyer, agent, Status.PAID)
    make_order(buyer, agent, Status.DELIVERED)
    ScheduledJob.objects.create(name="reconcile", last_ok=False)
    Client().get("/healthz")

    response = Client().get("/metrics", headers={"Authorization": "Bearer metrics-token-for-tests"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert value(text, 'atelier_orders{status="paid"}') == 2
    assert value(text, 'atelier_orders{status="delivered"}') == 1
    assert value(text, 'atelier_orders{status="completed"}') == 0
    assert value(text, "atelier_payments_pending") == 0
    assert value(text, 'atelier_transfers{status="failed"}') == 0
    assert value(text, 'atelier_webhook_deliveries_failing{state="failed"}') == 0
    assert value(text, "atelier_task_backlog") >= 0
    assert value(text, "atelier_task_backlog_oldest_age_seconds") >= 0
    assert value(text, 'atelier_scheduled_job_ok{job="reconcile"}') == 0
    assert 'atelier_http_requests_total{method="GET",status="200",view="healthz"}' in text
    assert "atelier_http_request_duration_seconds_bucket" in text


def test_metrics_is_refused_off_loopback_and_without_the_token(db, settings):
    assert Client(REMOTE_ADDR="203.0.113.9").get("/metrics").status_code == 403
    settings.METRICS_TOKEN = "metrics-token-for-tests"
    assert Client().get("/metrics").status_code == 403
    assert Client().get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    allowed = Client(REMOTE_ADDR="203.0.113.9").get(
        "/metrics", headers={"Authorization": "Bearer metrics-token-for-tests"}
    )
    assert allowed.status_code == 200


def test_without_a_token_metrics_is_served_to_loopback_in_development_only(db, settings):
    settings.METRICS_TOKEN = ""
    settings.DEBUG = False
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403
    settings.DEBUG = True
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="203.0.113.9").get("/metrics").status_code == 403


@pytest.fixture
def same_host_proxy(live_server: Any) -> Iterator[str]:
    """A reverse proxy on 127.0.0.1 in front of the app, as nginx on the same host would be: every
    request reaches the app from loopback, with the caller's address in X-Forwarded-For."""

    class Forward(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            headers = {key: value for key, value in self.headers.items() if key.lower() != "host"}
            headers["X-Forwarded-For"] = "203.0.113.9"  # the caller on the internet
            answer = requests.get(live_server.url + self.path, headers=headers, timeout=30)
            status, body = answer.status_code, answer.content
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{proxy.server_address[1]}"
    proxy.shutdown()
    proxy.server_close()


def test_metrics_through_a_same_host_reverse_proxy_is_refused_without_the_token(
    transactional_db: None, settings: Any, same_host_proxy: str
) -> None:
    settings.DEBUG = False
    settings.TRUSTED_PROXY_COUNT = 1
    settings.METRICS_TOKEN = ""

    assert requests.get(f"{same_host_proxy}/metrics", timeout=30).status_code == 403

    settings.METRICS_TOKEN = "metrics-token-for-tests"
    assert requests.get(f"{same_host_proxy}/metrics", timeout=30).status_code == 403
    scrape = requests.get(
        f"{same_host_proxy}/metrics", headers={"Authorization": "Bearer metrics-token-for-tests"}, timeout=30
    )
    assert scrape.status_code == 200
    assert "atelier_orders" in scrape.text
