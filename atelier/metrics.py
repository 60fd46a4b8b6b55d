"""`GET /metrics` for Prometheus: request and task counts and latencies (lib.requestlog, on
prometheus_client), and the business gauges below, read from the database when scraped.

Under gunicorn, each worker process counts its own requests; with PROMETHEUS_MULTIPROC_DIR set (an
empty folder per host, emptied at start; docs/deploy.md) the counters are written there and any
worker answers for all of them (prometheus_client's multiprocess mode; gunicorn.conf.py marks a
worker dead when it exits). The business gauges come from the shared database, so every app server
reports the same values: aggregate them with max(), not sum().

Not public: with METRICS_TOKEN set, only `Authorization: Bearer <token>`. Without it, nobody when
DEBUG is off: behind a reverse proxy on the same host every caller arrives from loopback, so the
address proves nothing (docs/deploy.md). In development (DEBUG) loopback callers are let in.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import Count, Min, Q
from django.http import HttpRequest, HttpResponse
from django.tasks import TaskResultStatus
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from django_tasks_db.models import DBTaskResult
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from atelier.models import ScheduledJob
from orders.models import Order, Status
from payments.models import OutgoingTransfer, Payment, PaymentStatus, Reconciliation, TransferStatus
from webhooks.models import DeliveryStatus, WebhookDelivery

LOOPBACK = ("127.0.0.1", "::1")


class BusinessCollector(Collector):
    """Counts read when Prometheus scrapes: a handful of indexed aggregate queries."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = timezone.now()

        orders = GaugeMetricFamily("atelier_orders", "Orders by status.", labels=["status"])
        counted = dict(Order.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
        for status in Status.values:
            orders.add_metric([status], counted.get(status, 0))
        yield orders

        yield GaugeMetricFamily(
            "atelier_payments_pending",
            "Payment claims waiting for finality.",
            value=Payment.objects.filter(status=PaymentStatus.PENDING).count(),
        )

        transfers = GaugeMetricFamily(
            "atelier_transfers", "Outgoing transfers (payouts, refunds, returns) by status.", labels=["status"]
        )
        counted = dict(
            OutgoingTransfer.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n")
        )
        for status in TransferStatus.values:
            transfers.add_metric([status], counted.get(status, 0))
        yield transfers

        webhooks = WebhookDelivery.objects.aggregate(
            failed=Count("pk", filter=Q(status=DeliveryStatus.FAILED)),
            retrying=Count("pk", filter=Q(status=DeliveryStatus.PENDING, attempts__gt=0)),
        )
        failing = GaugeMetricFamily(
            "atelier_webhook_deliveries_failing",
            "Webhook deliveries out of retries (failed) or retrying after a failed attempt.",
            labels=["state"],
        )
        failing.add_metric(["failed"], webhooks["failed"])
        failing.add_metric(["retrying"], webhooks["retrying"])
        yield failing

        ready = DBTaskResult.objects.filter(status=TaskResultStatus.READY).filter(
            Q(run_after__isnull=True) | Q(run_after__lte=now)
        )
        backlog = ready.aggregate(n=Count("pk"), oldest=Min("enqueued_at"))
        yield GaugeMetricFamily("atelier_task_backlog", "Tasks ready to run and not yet claimed.", value=backlog["n"])
        oldest = backlog["oldest"]
        yield GaugeMetricFamily(
            "atelier_task_backlog_oldest_age_seconds",
            "Age of the oldest task ready to run (0 when none).",
            value=(now - oldest).total_seconds() if oldest else 0.0,
        )
        yield GaugeMetricFamily(
            "atelier_tasks_running",
            "Tasks claimed by a worker and not finished.",
            value=DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING).count(),
        )

        clean = GaugeMetricFamily(
            "atelier_reconciliation_clean",
            "1 when the last reconciliation of the chain found escrow equal to the ledger, else 0.",
            labels=["chain"],
        )
        age = GaugeMetricFamily(
            "atelier_reconciliation_age_seconds", "Seconds since the chain was last reconciled.", labels=["chain"]
        )
        unexplained = GaugeMetricFamily(
            "atelier_reconciliation_unexplained_base_units",
            "The unexplained difference (USDC base units) the last reconciliation found.",
            labels=["chain"],
        )
        fee = GaugeMetricFamily(
            "atelier_hot_wallet_fee_balance",
            "The escrow hot wallet's own coin (Solana: lamports; Base: wei), which pays every outgoing "
            "transfer's fee, as the last reconciliation read it.",
            labels=["chain"],
        )
        for chain in ("solana", "base"):
            last = Reconciliation.objects.filter(chain=chain).order_by("-ran_at").first()
            if last is None:
                continue
            clean.add_metric([chain], 1 if last.is_clean else 0)
            age.add_metric([chain], (now - last.ran_at).total_seconds())
            unexplained.add_metric([chain], last.unexplained)
            if last.fee_balance is not None:
                fee.add_metric([chain], float(last.fee_balance))
        yield clean
        yield age
        yield unexplained
        yield fee

        job_ok = GaugeMetricFamily(
            "atelier_scheduled_job_ok", "1 when the job's last run succeeded, else 0.", labels=["job"]
        )
        job_age = GaugeMetricFamily(
            "atelier_scheduled_job_age_seconds", "Seconds since the job last started.", labels=["job"]
        )
        for job in ScheduledJob.objects.all():
            if job.last_ok is not None:
                job_ok.add_metric([job.name], 1 if job.last_ok else 0)
            if job.last_started_at is not None:
                job_age.add_metric([job.name], (now - job.last_started_at).total_seconds())
        yield job_ok
        yield job_age


def _allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return hmac.compare_digest(given.encode(), token.encode())
    return settings.DEBUG and request.META.get("REMOTE_ADDR") in LOOPBACK


def registry() -> Any:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shared = CollectorRegistry()
        multiprocess.MultiProcessCollector(shared)
    else:
        shared = CollectorRegistry()
        shared.register(_ProcessLocal())
    shared.register(BusinessCollector())
    return shared


class _ProcessLocal(Collector):
    """This process's metrics (one process: runserver, the tests)."""

    def collect(self) -> Iterator[Any]:
        yield from REGISTRY.collect()


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
