"""The order page under real use (issue 24), the parts a test client can hold: what needs the buyer,
a session that ended, approve and cancel naming the money, numbered versions, no preselected rating."""

from __future__ import annotations

from typing import Any

import pytest

from lib.principal import Principal
from orders.core import services
from orders.core.transitions import Role, transition
from orders.models import Deliverable, Order, Status, Upload
from tests.conftest import AgentPersona, WalletBuyer, make_order, make_service
from tests.orders.test_order_pages import HTMX, act, browser_of, page


@pytest.mark.django_db
def test_the_header_counts_the_orders_waiting_on_the_buyer_and_my_orders_says_why(
    buyer: WalletBuyer, agent: AgentPersona
) -> None:
    make_order(buyer, agent, Status.QUOTED)
    make_order(buyer, agent, Status.DELIVERED)
    paid = make_order(buyer, agent, Status.PAID)
    make_order(buyer, agent, Status.PENDING_QUOTE)  # waits on the agent
    services.message_post(order=paid, role=Role.AGENT, actor=agent.principal, content="Which colours?")
    client = browser_of(buyer)

    listing = client.get("/orders/").content.decode()

    assert 'class="needs-you"' in listing
    assert '>3<span class="sr-only"> need you</span>' in listing
    assert listing.count("Needs you:") == 3
    assert "Needs you: accept the quote" in listing
    assert "Needs you: review the delivery" in listing
    assert "Needs you: reply to the agent" in listing
    services.message_post(order=paid, role=Role.BUYER, actor=buyer.principal, content="Orange and teal.")
    assert client.get("/orders/").content.decode().count("Needs you:") == 2


@pytest.mark.django_db
def test_an_action_after_the_session_ended_redirects_htmx_to_sign_in_and_back_to_the_order(
    buyer: WalletBuyer, agent: AgentPersona
) -> None:
    order = make_order(buyer, agent, Status.PAID)
    client = browser_of(buyer)
    client.post("/signout")

    htmx = act(client, order, "message", htmx=True, content="Still there?")
    plain = act(client, order, "message", content="Still there?")
    poll = client.get(f"/orders/{order.id}/poll?v=1", headers=HTMX)

    target = f"/signin/?next=%2Forders%2F{order.id}%2F"
    assert (htmx.status_code, htmx["HX-Redirect"]) == (204, target)
    assert (plain.status_code, plain["Location"]) == (302, target)
    assert poll.status_code == 200
    assert "Your session ended" in poll.content.decode()
    assert 'id="poller"></div>' in poll.content.decode()  # no trigger left: the polling stops


@pytest.mark.django_db
def test_approve_and_cancel_name_the_money_and_say_they_are_final(buyer: WalletBuyer, agent: AgentPersona) -> None:
    delivered = make_order(buyer, agent, Status.DELIVERED)
    paid = make_order(buyer, agent, Status.PAID)
    client = browser_of(buyer)

    approve = page(client, delivered)
    cancel = page(client, paid)

    assert f"Approve and pay {agent.agent.name} $40.50<" in approve
    assert "This is final: $40.50 leaves escrow" in approve
    assert "Cancel and refund $45.00 to me" in cancel
    assert "This is final: the order ends and $45.00" in cancel


@pytest.mark.django_db
def test_versions_are_numbered_current_first_with_image_thumbnails(buyer: WalletBuyer, agent: AgentPersona) -> None:
    order = make_order(buyer, agent, Status.REVISION_REQUESTED)
    transition(
        order.id,
        "deliver",
        agent.principal,
        deliverables=[{"url": "https://cdn.example.com/second.png", "media_type": "link"}],
    )

    body = page(browser_of(buyer), order)

    assert body.index("Version 2 · current") < body.index("Version 1 · superseded")
    assert "Earlier versions (1)" in body


@pytest.mark.django_db
def test_the_review_form_chooses_no_rating_for_the_buyer(buyer: WalletBuyer, agent: AgentPersona) -> None:
    order = make_order(buyer, agent, Status.COMPLETED)

    body = page(browser_of(buyer), order)

    assert 'name="rating"' in body
    assert " checked" not in body.split('id="review-form"')[1].split("</form>")[0]
    refused = act(browser_of(buyer), order, "review", htmx=True, comment="No stars picked")
    assert refused.status_code == 400


@pytest.mark.django_db
def test_a_csrf_failure_is_the_styled_page_or_a_notice_in_place_never_djangos_bare_page(
    buyer: WalletBuyer, agent: AgentPersona
) -> None:
    order = make_order(buyer, agent, Status.PAID)
    client = browser_of(buyer)
    client.handler.enforce_csrf_checks = True
    current = {"HX-Current-URL": f"http://testserver/orders/{order.id}/"}

    plain = client.post(f"/orders/{order.id}/act", {"action": "message", "content": "Hi"})
    htmx = client.post(f"/orders/{order.id}/act", {"action": "message", "content": "Hi"}, headers={**HTMX, **current})

    assert plain.status_code == 403
    assert "security token has expired" in plain.content.decode()
    assert 'class="top"' in plain.content.decode()  # the site's page, header and all
    assert (htmx.status_code, htmx["HX-Retarget"], htmx["HX-Reswap"]) == (403, "#flash", "outerHTML")
    assert f'href="/orders/{order.id}/"' in htmx.content.decode()


@pytest.mark.django_db
def test_with_debug_on_no_helper_replaces_the_page_with_a_refusal(
    buyer: WalletBuyer, agent: AgentPersona, settings: Any
) -> None:
    settings.DEBUG = True
    order = make_order(buyer, agent, Status.PAID)

    body = page(browser_of(buyer), order)

    assert "htmx-2.min.js" in body
    assert "django-htmx.js" not in body


@pytest.mark.django_db
def test_the_hire_form_offers_no_select_of_one_chain(buyer: WalletBuyer, agent: AgentPersona) -> None:
    service = make_service(agent.agent)

    body = browser_of(buyer).get(f"/services/{service.id}/").content.decode()

    assert "You pay in USDC on Solana." in body
    assert '<select name="payment_chain"' not in body
    assert '<input type="hidden" name="payment_chain" value="solana">' in body


@pytest.mark.django_db
def test_my_orders_says_how_a_dispute_was_resolved(buyer: WalletBuyer, agent: AgentPersona, staff: Principal) -> None:
    order = make_order(buyer, agent, Status.DISPUTED)
    transition(order.id, "refund", staff, note="The agent never answered.")

    listing = browser_of(buyer).get("/orders/").content.decode()

    assert "dispute resolved: refunded" in listing


@pytest.mark.django_db
def test_an_earlier_uploaded_file_is_named_as_uploaded_not_by_its_id(buyer: WalletBuyer, agent: AgentPersona) -> None:
    order = make_order(buyer, agent, Status.DELIVERED)
    upload = Upload.objects.create(
        agent=agent.agent, filename="fox-draft.pdf", content_type="application/pdf", media_type="document", size=1
    )
    Deliverable.objects.create(order=order, url=upload.url, media_type="document", superseded=True)
    Order.objects.filter(pk=order.id).update(revision_count=1)

    body = page(browser_of(buyer), Order.objects.get(pk=order.id))

    assert "fox-draft.pdf" in body
    assert f">{upload.id}<" not in body
