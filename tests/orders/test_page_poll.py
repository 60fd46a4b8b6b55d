"""The order page's 3-second poll, as a browser tab left open drives it: the poller's URL carries the
page's change stamp (the id of the order's latest event), and while nothing changed the answer is
204 (htmx swaps nothing) from one query beside the session. Whatever changes shows on the next poll,
whichever app server answers; strangers learn nothing from a stamp."""

from __future__ import annotations

import html
import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from orders.models import Status
from tests.conftest import AgentPersona, WalletBuyer, make_order
from tests.orders.test_order_pages import HTMX, browser_of

pytestmark = pytest.mark.django_db
POLLER = re.compile(r'id="poller" hx-get="([^"]+)"')


def poller_url(body: str) -> str:
    found = POLLER.search(body)
    assert found, "no poller on the page"
    return html.unescape(found.group(1))


def open_page(client: Client, order_id: str) -> str:
    response = client.get(f"/orders/{order_id}/")
    assert response.status_code == 200
    return poller_url(response.content.decode())


def test_an_unchanged_order_answers_204_from_one_query_beside_the_session(buyer: WalletBuyer, agent: AgentPersona):
    order = make_order(buyer, agent, Status.IN_PROGRESS)
    client = browser_of(buyer)
    url = open_page(client, order.id)
    assert "v=evt_" in url

    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, headers=HTMX)

    assert response.status_code == 204
    assert response.content == b""
    session = ("django_session", "sessions.cache")  # the session: the cache (Redis in production), then the table
    reads = [q["sql"] for q in queries.captured_queries if not any(name in q["sql"] for name in session)]
    assert len(reads) == 1, reads  # the order's parties, status and latest event, together


def test_a_message_then_a_transition_each_show_on_the_next_poll(buyer: WalletBuyer, agent: AgentPersona):
    order = make_order(buyer, agent, Status.IN_PROGRESS)
    client = browser_of(buyer)
    url = open_page(client, order.id)

    agent.api.post(f"/api/orders/{order.id}/messages", {"content": "Started on your fox."})
    after_message = client.get(url, headers=HTMX)
    assert after_message.status_code == 200
    body = after_message.content.decode()
    assert "Started on your fox." in body
    url = poller_url(body)  # the new stamp, out of band with the message
    assert client.get(url, headers=HTMX).status_code == 204

    delivered = agent.api.post(
        f"/api/orders/{order.id}/deliver",
        {"deliverable_url": "https://example.com/fox", "deliverable_media_type": "link"},
    )
    assert delivered.status_code == 200, delivered.body
    after_delivery = client.get(url, headers=HTMX)
    assert after_delivery.status_code == 200
    assert 'id="order-panel"' in after_delivery.content.decode()  # the panel, redrawn: delivered
    assert client.get(poller_url(after_delivery.content.decode()), headers=HTMX).status_code == 204


def test_a_change_made_through_another_app_server_shows_at_once(buyer: WalletBuyer, agent: AgentPersona):
    """Nothing is cached per process: the stamp is read from the database on every poll, so a
    transition made through any server is on the next poll of every other (here: another client,
    and the local cache emptied as a second server's would be)."""
    order = make_order(buyer, agent, Status.DELIVERED)
    client = browser_of(buyer)
    url = open_page(client, order.id)
    assert client.get(url, headers=HTMX).status_code == 204

    approved = buyer.api.patch(f"/api/orders/{order.id}", {"action": "approve"})
    assert approved.status_code == 200, approved.body
    cache.clear()

    response = client.get(url, headers=HTMX)
    assert response.status_code == 200
    assert "status-completed" in response.content.decode()


def test_a_stranger_with_the_stamp_gets_a_404_not_a_204(
    buyer: WalletBuyer, other_buyer: WalletBuyer, agent: AgentPersona
):
    order = make_order(buyer, agent, Status.IN_PROGRESS)
    url = open_page(browser_of(buyer), order.id)

    assert browser_of(other_buyer).get(url, headers=HTMX).status_code == 404
    signed_out = Client().get(url, headers=HTMX)  # signed out: the poll says so once and stops
    assert signed_out.status_code == 200
    assert "Your session ended" in signed_out.content.decode()


def test_a_payable_order_still_looks_for_its_payment_then_rests(buyer: WalletBuyer, agent: AgentPersona):
    """A quoted order's page waits for a Solana Pay transfer: a poll whose payment look is due takes the
    long way (which looks); the next, within the look's throttle, is a 204."""
    order = make_order(buyer, agent, Status.QUOTED)
    client = browser_of(buyer)
    url = open_page(client, order.id)  # the page looked just now
    assert client.get(url, headers=HTMX).status_code == 204

    cache.delete(f"payment-look:{order.id}")  # the look's throttle ran out
    looked = client.get(url, headers=HTMX)
    assert looked.status_code == 200
    assert cache.get(f"payment-look:{order.id}")
    assert client.get(url, headers=HTMX).status_code == 204


def test_the_decision_index_covers_exactly_what_a_resolution_reads() -> None:
    """orders.models cannot import orders.disputes.decisions (which imports it): the partial index's condition is
    written out there, and must stay the filter `resolution_to_dict` and `orders.reads.details` read with."""
    from orders.models import OrderEvent
    from orders.reads.resolution import DECIDING

    (index,) = [index for index in OrderEvent._meta.indexes if index.name == "event_decision_idx"]
    assert index.condition == DECIDING
