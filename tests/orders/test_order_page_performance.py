"""The order page's cost with a long history: 200 messages and 20 deliverables render in a fixed,
small number of queries (the latest 50 messages shown, earlier ones a link away), and the server
time is printed (`pytest tests/orders/test_order_page_performance.py -s`)."""

from __future__ import annotations

import statistics
import time

import pytest
from django.test import Client

from orders.models import Deliverable, FetchStatus, MediaType, Message, OrderEvent, Status
from tests.conftest import make_order

MESSAGES = 200
DELIVERABLES = 20
# session, order + service + agent, its current deliverables, pending payments, transfers,
# the timeline's events, the latest messages, (completed only) the review.
QUERIES = 8


def busy_order(buyer, agent, status=Status.DELIVERED):
    order = make_order(buyer, agent, status)
    Deliverable.objects.filter(order=order).update(superseded=True)
    kinds = [MediaType.IMAGE, MediaType.VIDEO, MediaType.LINK, MediaType.DOCUMENT, MediaType.CODE]
    Deliverable.objects.bulk_create(
        [
            Deliverable(
                order=order,
                url=f"https://cdn.example.com/item-{n}",
                media_type=kinds[n % len(kinds)],
                fetch_status=FetchStatus.READY if n % len(kinds) == 0 else "",
                file_path=f"deliverables/{n}.png" if n % len(kinds) == 0 else "",
                preview_path=f"previews/{n}.webp" if n % len(kinds) == 0 else "",
            )
            for n in range(DELIVERABLES)
        ]
    )
    Message.objects.bulk_create(
        [
            Message(
                order=order,
                sender_role="agent" if n % 2 else "buyer",
                sender_id=agent.id if n % 2 else buyer.wallet,
                content=f"message number {n:03} " + "lorem ipsum " * 10,
            )
            for n in range(MESSAGES)
        ]
    )
    OrderEvent.objects.bulk_create(
        [OrderEvent(order=order, action="message", actor_kind="buyer", actor_id=buyer.wallet) for _ in range(MESSAGES)]
    )
    return order


def browser_of(buyer) -> Client:
    client = Client()
    session = client.session
    session["buyer_wallet"], session["buyer_chain"] = buyer.wallet, buyer.chain
    session.save()
    return client


@pytest.mark.slow
@pytest.mark.parametrize("status", [Status.DELIVERED, Status.COMPLETED])
def test_the_order_page_with_200_messages_and_20_deliverables_runs_a_fixed_number_of_queries(
    buyer, agent, status, django_assert_max_num_queries
):
    order = busy_order(buyer, agent, status)
    client = browser_of(buyer)
    client.get(f"/orders/{order.id}/")  # warm: templates compiled, session cached

    with django_assert_max_num_queries(QUERIES + (status == Status.COMPLETED)):
        response = client.get(f"/orders/{order.id}/")

    body = response.content.decode()
    assert response.status_code == 200
    assert body.count('class="msg ') == 50  # the latest 50, oldest of them first
    assert "message number 199" in body
    assert "message number 150" in body
    assert "message number 149" not in body
    assert body.count('class="deliverable ') == DELIVERABLES

    timings = []
    for _ in range(15):
        started = time.perf_counter()
        client.get(f"/orders/{order.id}/")
        timings.append((time.perf_counter() - started) * 1000)
    print(
        f"\norder page ({status}, {MESSAGES} messages, {DELIVERABLES} deliverables): "
        f"median {statistics.median(timings):.1f} ms, min {min(timings):.1f} ms, "
        f"max {max(timings):.1f} ms over {len(timings)} renders; {len(body) // 1024} KiB"
    )


@pytest.mark.slow
def test_the_poll_runs_a_fixed_number_of_queries(buyer, agent, django_assert_max_num_queries):
    order = busy_order(buyer, agent)
    client = browser_of(buyer)
    event = OrderEvent.objects.filter(order=order).exclude(action="message").latest("id").id
    after = Message.objects.filter(order=order).order_by("-id").values_list("id", flat=True)[5]

    # session, order + service, the change stamp, new messages, the latest event, the agent (its
    # name on its messages). A poll carrying the page's stamp when nothing changed: tests/orders/test_page_poll.py
    with django_assert_max_num_queries(6):
        response = client.get(
            f"/orders/{order.id}/poll", {"after": after, "event": event, "m": "1"}, headers={"HX-Request": "true"}
        )

    assert response.content.decode().count('class="msg ') == 5
