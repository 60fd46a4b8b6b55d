"""`GET /metrics`: Prometheus text with the request metrics and the business gauges; not public."""

from __future__ import annotations

import re

from django.test import Client

from atelier.models import ScheduledJob
from orders.models import Status
from tests.conftest import make_order


def value(text: str, metric: str) -> float:
    found = re.search(rf"^{re.escape(metric)} (\S+)$", text, re.MULTILINE)
    assert found, f"{metric} not in the output"
    return float(found.group(1))


def test_metrics_has_the_business_gauges(buyer, agent):
    make_order(buyer, agent, Status.PAID)
    make_order(buyer, agent, Status.PAID)
    make_order(buyer, agent, Status.DELIVERED)
    ScheduledJob.objects.create(name="reconcile", last_ok=False)
    Client().get("/healthz")

    response = Client().get("/metrics")

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
