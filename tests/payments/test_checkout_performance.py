"""The checkout page's cost with Solana Pay: the link, the QR code and the look for a transfer by the
order's reference (`pytest tests/payments/test_checkout_performance.py -s` prints the times)."""

from __future__ import annotations

import statistics
import time

import pytest
from django.test import Client

from orders.models import OrderEvent, Status
from tests.conftest import make_order
from tests.orders.test_order_page_performance import browser_of


def _timed(client: Client, path: str, *, fresh: bool, n: int = 15, **kwargs) -> list[float]:
    from django.core.cache import cache

    timings = []
    for _ in range(n):
        if fresh:
            cache.clear()  # the throttle forgotten: every render asks the chain for the reference
        started = time.perf_counter()
        client.get(path, **kwargs)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def _line(label: str, timings: list[float]) -> str:
    return (
        f"{label}: median {statistics.median(timings):.1f} ms, min {min(timings):.1f} ms, "
        f"max {max(timings):.1f} ms over {len(timings)}"
    )


@pytest.mark.slow
def test_the_checkout_page_and_its_poll_cost_with_solana_pay(chains_up, buyer, agent, django_assert_max_num_queries):
    """A quoted Solana order: the page builds the Solana Pay link and QR code and asks the chain for
    transfers naming the order's reference (getSignaturesForAddress) at most every 2 s per order."""
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    order = make_order(buyer, agent, Status.QUOTED)
    client = browser_of(buyer)
    client.get(f"/orders/{order.id}/")
    poll = f"/orders/{order.id}/poll"
    event = OrderEvent.objects.filter(order=order).latest("id").id
    params = {"event": event, "m": "0"}
    cache.clear()

    # session, order + service + agent, its deliverables, payments (pending claims, once for the
    # look and once for the page), transfers, the timeline's events, the latest messages, the
    # watch's task row.
    with CaptureQueriesContext(connection) as asked:
        response = client.get(f"/orders/{order.id}/")
    with django_assert_max_num_queries(9):
        client.get(f"/orders/{order.id}/")  # throttled: no chain call

    body = response.content.decode()
    assert "<svg" in body
    assert 'id="solana-pay-link"' in body
    print(f"\ncheckout page (quoted, Solana): {len(asked)} queries with the chain asked")
    print(_line("checkout page, chain asked each time", _timed(client, f"/orders/{order.id}/", fresh=True)))
    print(_line("checkout page, throttled", _timed(client, f"/orders/{order.id}/", fresh=False)))
    htmx = {"HX-Request": "true"}
    print(_line("poll, chain asked each time", _timed(client, poll, fresh=True, data=params, headers=htmx)))
    print(_line("poll, throttled", _timed(client, poll, fresh=False, data=params, headers=htmx)))
    with CaptureQueriesContext(connection) as polled:
        cache.clear()
        client.get(poll, params, headers=htmx)
    print(f"poll (quoted): {len(polled)} queries with the chain asked")
