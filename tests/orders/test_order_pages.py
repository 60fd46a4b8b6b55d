"""The buyer's pages over HTTP, without a browser: hire, my orders, the order page and its one POST
view, with and without HTMX. Refusals show their sentence in place; buttons follow the table."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from orders.core.transitions import transition
from orders.models import Deliverable, Message, Order, OrderEvent, Review, Status
from tests.conftest import AgentPersona, WalletBuyer, make_order, make_payment, make_service

HTMX = {"HX-Request": "true"}


def browser_of(buyer: WalletBuyer) -> Client:
    """A browser signed in as this wallet (the keys wallet sign-in stores in the session)."""
    client = Client()
    session = client.session
    session["buyer_wallet"] = buyer.wallet
    session["buyer_chain"] = buyer.chain
    session.save()
    return client


def page(client: Client, order: Order) -> str:
    response = client.get(f"/orders/{order.id}/")
    assert response.status_code == 200
    return response.content.decode()


def act(client: Client, order: Order, action: str, htmx: bool = False, **fields: str) -> Any:
    return client.post(f"/orders/{order.id}/act", {"action": action, **fields}, headers=HTMX if htmx else {})


# --- hire ---------------------------------------------------------------------------------------


def test_hiring_a_fixed_price_service_creates_a_quoted_order_and_opens_its_page(buyer, agent):
    service = make_service(agent.agent, price_type="fixed", price="25.00")
    client = browser_of(buyer)

    response = client.post(
        f"/services/{service.id}/hire",
        {
            "brief": "A fox in a lab coat, flat colours.",
            "reference_urls": "https://example.com/a.png\n",
            "payment_chain": "solana",
        },
    )

    order = Order.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/orders/{order.id}/"
    assert (order.status, order.buyer_wallet, order.reference_urls) == (
        Status.QUOTED,
        buyer.wallet,
        ["https://example.com/a.png"],
    )
    body = page(client, order)
    assert "25.00" in body
    assert order.payment_reference in body


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"brief": "too short"}, "at least 10 characters"),
        ({"brief": "x" * 3001}, "at most 3000 characters"),
        ({"reference_urls": "javascript:alert(1)"}, "Not an http(s) link"),
        ({"reference_urls": "\n".join(f"https://example.com/{n}" for n in range(6))}, "At most 5 reference links"),
    ],
)
def test_a_bad_brief_is_shown_on_the_service_page_and_nothing_is_created(buyer, agent, fields, message):
    service = make_service(agent.agent)
    data = {"brief": "A fox in a lab coat, flat colours.", "payment_chain": "solana", **fields}

    response = browser_of(buyer).post(f"/services/{service.id}/hire", data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Order.objects.exists()


def test_a_visitor_is_sent_to_sign_in_before_hiring(agent):
    service = make_service(agent.agent)

    response = Client().post(f"/services/{service.id}/hire", {"brief": "A fox in a lab coat."})

    assert response.status_code == 302
    assert response["Location"].startswith("/signin/?next=")
    assert not Order.objects.exists()


def test_the_service_page_shows_the_hire_form_with_the_brief_limits(buyer, agent):
    service = make_service(agent.agent)

    body = browser_of(buyer).get(f"/services/{service.id}/").content.decode()

    assert 'minlength="10"' in body
    assert 'maxlength="3000"' in body
    assert f'action="/services/{service.id}/hire"' in body


# --- my orders ----------------------------------------------------------------------------------


def test_my_orders_lists_only_mine_newest_first_with_status_badges(buyer, other_buyer, agent):
    first = make_order(buyer, agent, Status.QUOTED)
    second = make_order(buyer, agent, Status.PAID)
    theirs = make_order(other_buyer, agent, Status.QUOTED)

    body = browser_of(buyer).get("/orders/").content.decode()

    assert body.index(second.id) < body.index(first.id)
    assert theirs.id not in body
    assert 'class="status status-paid"' in body
    assert 'class="status status-quoted"' in body


def test_another_buyers_order_is_a_404(buyer, other_buyer, agent):
    order = make_order(other_buyer, agent, Status.PAID)

    assert browser_of(buyer).get(f"/orders/{order.id}/").status_code == 404
    assert act(browser_of(buyer), order, "cancel").status_code == 404
    assert Order.objects.get(pk=order.pk).status == Status.PAID


def test_a_visitor_is_sent_to_sign_in(agent, buyer):
    order = make_order(buyer, agent, Status.PAID)

    response = Client().get(f"/orders/{order.id}/")

    assert response.status_code == 302
    assert response["Location"].startswith("/signin/")


# --- buttons follow the transition table --------------------------------------------------------

BUTTONS = {
    "accept": 'value="accept"',
    "pay": 'value="pay"',
    "approve": 'value="approve"',
    "revision": 'value="revision"',
    "dispute": 'value="dispute"',
    "cancel": 'value="cancel"',
}


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        (Status.PENDING_QUOTE, {"cancel"}),
        (Status.QUOTED, {"pay", "cancel"}),  # paying accepts: no separate accept button
        (Status.ACCEPTED, {"pay", "cancel"}),
        (Status.PAID, {"cancel"}),
        (Status.IN_PROGRESS, set()),
        (Status.DELIVERED, {"approve", "revision", "dispute"}),
        (Status.REVISION_REQUESTED, set()),
        (Status.DISPUTED, set()),
        (Status.COMPLETED, set()),
        (Status.CANCELLED, set()),
    ],
)
def test_the_buyer_sees_only_the_buttons_the_table_allows_now(buyer, agent, status, shown):
    order = make_order(buyer, agent, status)

    body = page(browser_of(buyer), order)

    assert {action for action, marker in BUTTONS.items() if marker in body} == shown


def test_the_revision_button_goes_once_the_revisions_are_used(buyer, agent):
    service = make_service(agent.agent, price_type="quote", price="0.00", max_revisions=0)
    order = make_order(buyer, agent, Status.DELIVERED, service=service)

    body = page(browser_of(buyer), order)

    assert 'value="revision"' not in body
    assert "revisions are used" in body


# --- the one POST view --------------------------------------------------------------------------


def test_approve_without_htmx_redirects_back_to_the_order(buyer, agent):
    order = make_order(buyer, agent, Status.DELIVERED)

    response = act(browser_of(buyer), order, "approve")

    assert response.status_code == 302
    assert response["Location"] == f"/orders/{order.id}/"
    assert Order.objects.get(pk=order.pk).status == Status.COMPLETED


def test_approve_with_htmx_returns_the_panel_with_the_review_form(buyer, agent):
    order = make_order(buyer, agent, Status.DELIVERED)

    response = act(browser_of(buyer), order, "approve", htmx=True)

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="order-panel"')
    assert 'value="review"' in body
    assert 'id="poller"' in body
    assert 'hx-swap-oob="true"' in body


def test_a_refused_action_shows_its_sentence_in_place_with_409(buyer, agent):
    order = make_order(buyer, agent, Status.DELIVERED)
    client = browser_of(buyer)
    transition(order.id, "approve", buyer.principal)  # approved elsewhere (another tab)

    response = act(client, order, "dispute", htmx=True, reason="Not what I asked for.")

    body = response.content.decode()
    assert response.status_code == 409
    assert 'id="panel-error"' in body
    assert "Cannot dispute an order that is completed." in body
    assert body.lstrip().startswith('<section id="order-panel"')


def test_a_refusal_without_htmx_re_renders_the_page_with_the_message(buyer, agent):
    order = make_order(buyer, agent, Status.PAID)
    transition(order.id, "start", agent.principal)

    response = act(browser_of(buyer), order, "cancel")

    assert response.status_code == 409
    assert "Cannot cancel an order that is in_progress." in response.content.decode()
    assert "<html" in response.content.decode()


def test_revision_needs_feedback_and_keeps_nothing_half_done(buyer, agent):
    order = make_order(buyer, agent, Status.DELIVERED)

    response = act(browser_of(buyer), order, "revision", htmx=True, feedback="   ")

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert Order.objects.get(pk=order.pk).status == Status.DELIVERED


def test_revision_and_dispute_carry_their_text(buyer, agent):
    order = make_order(buyer, agent, Status.DELIVERED)
    client = browser_of(buyer)

    act(client, order, "revision", feedback="Darker background, please.")
    transition(
        order.id,
        "deliver",
        agent.principal,
        deliverables=[{"url": "https://cdn.example.com/2.png", "media_type": "link"}],
    )
    act(client, order, "dispute", reason="Still too light.")

    order.refresh_from_db()
    assert (order.status, order.revision_feedback, order.dispute_reason) == (
        Status.DISPUTED,
        "Darker background, please.",
        "Still too light.",
    )


def test_an_unknown_action_is_refused(buyer, agent):
    order = make_order(buyer, agent, Status.DELIVERED)

    response = act(browser_of(buyer), order, "release", htmx=True)

    assert response.status_code == 403
    assert Order.objects.get(pk=order.pk).status == Status.DELIVERED


def test_posting_needs_the_csrf_token(buyer, agent):
    order = make_order(buyer, agent, Status.DELIVERED)
    client = browser_of(buyer)
    client.handler.enforce_csrf_checks = True

    response = act(client, order, "approve")

    assert response.status_code == 403
    assert Order.objects.get(pk=order.pk).status == Status.DELIVERED


def test_paying_with_a_malformed_hash_says_so_and_stays_quoted(buyer, agent):
    order = make_order(buyer, agent, Status.QUOTED)

    response = act(browser_of(buyer), order, "pay", htmx=True, escrow_tx_hash="nope", payment_chain="solana")

    assert response.status_code in (400, 503)
    assert 'id="panel-error"' in response.content.decode()
    assert Order.objects.get(pk=order.pk).status == Status.QUOTED


# --- messages -----------------------------------------------------------------------------------


def test_a_message_sent_with_htmx_comes_back_in_the_message_box(buyer, agent):
    order = make_order(buyer, agent, Status.PAID)

    response = act(browser_of(buyer), order, "message", htmx=True, content="  Hello there!  ")

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="messages"')
    assert "Hello there!" in body
    assert Message.objects.get().content == "Hello there!"


def test_a_message_without_htmx_redirects_to_the_messages(buyer, agent):
    order = make_order(buyer, agent, Status.PAID)

    response = act(browser_of(buyer), order, "message", content="Hello there!")

    assert response["Location"] == f"/orders/{order.id}/#messages"


def test_messages_before_payment_are_refused_in_the_message_box(buyer, agent):
    order = make_order(buyer, agent, Status.QUOTED)

    response = act(browser_of(buyer), order, "message", htmx=True, content="Hello?")

    assert response.status_code == 409
    assert 'id="message-error"' in response.content.decode()
    assert not Message.objects.exists()


def test_an_empty_message_is_refused(buyer, agent):
    order = make_order(buyer, agent, Status.PAID)

    response = act(browser_of(buyer), order, "message", htmx=True, content="   ")

    assert response.status_code == 400
    assert not Message.objects.exists()


def test_the_poll_appends_new_messages_and_moves_its_cursor(buyer, agent):
    order = make_order(buyer, agent, Status.PAID)
    client = browser_of(buyer)
    event = OrderEvent.objects.filter(order=order).exclude(action="message").latest("id").id
    agent.api.post(f"/api/orders/{order.id}/messages", {"content": "Started on your fox."})
    message = Message.objects.get()

    response = client.get(f"/orders/{order.id}/poll", {"after": "", "event": event, "m": "1"}, headers=HTMX)

    body = response.content.decode()
    assert 'hx-swap-oob="beforeend:#message-list"' in body
    assert "Started on your fox." in body
    assert f"after={message.id}" in body
    assert 'id="order-panel"' not in body  # nothing else happened

    again = client.get(f"/orders/{order.id}/poll", {"after": message.id, "event": event, "m": "1"}, headers=HTMX)
    assert "Started on your fox." not in again.content.decode()


def test_the_poll_redraws_the_panel_when_the_order_moved(buyer, agent):
    order = make_order(buyer, agent, Status.PAID)
    client = browser_of(buyer)
    event = OrderEvent.objects.filter(order=order).exclude(action="message").latest("id").id
    transition(
        order.id, "deliver", agent.principal, deliverables=[{"url": "https://example.com/r", "media_type": "link"}]
    )

    body = client.get(
        f"/orders/{order.id}/poll", {"after": "", "event": event, "m": "1"}, headers=HTMX
    ).content.decode()

    assert '<section id="order-panel" class="panel" hx-swap-oob="true">' in body
    assert 'value="approve"' in body


def test_the_poll_replaces_the_message_box_when_messaging_opens(buyer, agent):
    order = make_order(buyer, agent, Status.ACCEPTED)
    client = browser_of(buyer)
    event = OrderEvent.objects.filter(order=order).latest("id").id
    transition(order.id, "pay", buyer.principal, payment=make_payment(order))  # verified elsewhere

    response = client.get(f"/orders/{order.id}/poll", {"after": "", "event": event, "m": "0"}, headers=HTMX)

    body = response.content.decode()
    assert (response["HX-Retarget"], response["HX-Reswap"]) == ("#messages", "outerHTML")
    assert body.lstrip().startswith('<section id="messages"')
    assert 'id="message-form"' in body
    assert '<section id="order-panel" class="panel" hx-swap-oob="true">' in body


def test_the_page_shows_the_latest_messages_and_links_to_earlier_ones(buyer, agent):
    order = make_order(buyer, agent, Status.PAID)
    Message.objects.bulk_create(
        [Message(order=order, sender_role="agent", sender_id=agent.id, content=f"note {n:03}") for n in range(60)]
    )
    ids = list(Message.objects.order_by("id").values_list("id", flat=True))
    client = browser_of(buyer)

    body = page(client, order)

    assert "note 059" in body
    assert "note 010" in body
    assert "note 009" not in body
    assert f"?before={ids[10]}" in body
    earlier = client.get(f"/orders/{order.id}/", {"before": ids[10]}).content.decode()
    assert "note 000" in earlier
    assert "note 009" in earlier
    assert "note 010" not in earlier


# --- review, timeline, deliverables -------------------------------------------------------------


def test_the_review_form_appears_once_completed_and_posts_once(buyer, agent):
    order = make_order(buyer, agent, Status.COMPLETED)
    client = browser_of(buyer)
    assert 'value="review"' in page(client, order)

    act(client, order, "review", rating="4", comment="Lovely fox.")
    again = act(client, order, "review", htmx=True, rating="5", comment="Again")

    review = Review.objects.get()
    assert (review.rating, review.comment) == (4, "Lovely fox.")
    assert again.status_code == 409
    assert 'value="review"' not in page(client, order)


def test_the_timeline_tells_the_story_from_the_events(buyer, agent):
    order = make_order(buyer, agent, Status.REVISION_REQUESTED)

    body = page(browser_of(buyer), order)

    for text in (
        "Order placed",
        "Quoted $45.00",
        "Quote accepted",
        "Paid into escrow",
        "Delivered 1 item",
        "Revision requested: Make the background darker.",
    ):
        assert text in body


def test_deliverables_show_inline_by_media_type(buyer, agent):
    order = make_order(buyer, agent, Status.PAID)
    items = [
        {"url": "https://cdn.example.com/clip.mp4", "media_type": "video"},
        {"url": "https://example.com/site", "media_type": "link"},
        {"url": "https://cdn.example.com/spec.pdf", "media_type": "document"},
        {"url": "https://cdn.example.com/main.py", "media_type": "code"},
    ]
    transition(order.id, "deliver", agent.principal, deliverables=items)

    body = page(browser_of(buyer), order)

    assert '<video controls preload="metadata" src="https://cdn.example.com/clip.mp4">' in body
    assert 'href="https://example.com/site"' in body
    assert ">spec.pdf</a>" in body
    assert "main.py" in body


def test_code_stored_with_the_order_is_highlighted_inline(buyer, agent, settings, tmp_path):
    from django.core.files.base import ContentFile

    from lib.privatestorage import private_storage
    from orders.models import FetchStatus

    settings.STORAGES = {
        **settings.STORAGES,
        "private": {"BACKEND": "lib.privatestorage.PrivateStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    order = make_order(buyer, agent, Status.PAID)
    transition(
        order.id,
        "deliver",
        agent.principal,
        deliverables=[{"url": "https://cdn.example.com/fox.py", "media_type": "code"}],
    )
    name = private_storage().save("code/fox.py", ContentFile(b"def fox():\n    return '<fox>'\n"))
    Deliverable.objects.filter(order=order).update(file_path=name, fetch_status=FetchStatus.READY)

    body = page(browser_of(buyer), order)

    assert '<span class="k">def</span>' in body
    assert "&#x27;&lt;fox&gt;&#x27;" in body or "&lt;fox&gt;" in body
    assert "<fox>" not in body


def test_a_human_buyer_never_gets_the_image_url_before_completion(buyer, agent):
    order = make_order(buyer, agent, Status.PAID)
    secret = "https://cdn.example.com/secret-original.png"
    transition(order.id, "deliver", agent.principal, deliverables=[{"url": secret, "media_type": "image"}])
    client = browser_of(buyer)

    assert secret not in page(client, order)
    event = OrderEvent.objects.filter(order=order).exclude(action="message").first()
    assert event is not None
    poll = client.get(f"/orders/{order.id}/poll", {"after": "", "event": event.id, "m": "1"}, headers=HTMX)
    assert secret not in poll.content.decode()
    assert secret not in client.get("/orders/").content.decode()


# --- read-only views for the agent's owner ------------------------------------------------------


def agent_browser(agent: AgentPersona) -> Client:
    client = Client()
    response = client.post("/signin/agent", {"api_key": agent.key})
    assert response.status_code == 302
    return client


def test_an_agent_owner_signs_in_with_the_key_and_sees_its_orders_read_only(buyer, agent, other_agent):
    order = make_order(buyer, agent, Status.DELIVERED)
    other = make_order(buyer, other_agent, Status.PAID)
    client = agent_browser(agent)

    listing = client.get("/orders/").content.decode()
    body = page(client, order)

    assert order.id in listing
    assert other.id not in listing
    assert "Read-only view for the agent" in body
    assert 'value="approve"' not in body
    assert 'id="message-form"' not in body
    assert client.get(f"/orders/{other.id}/").status_code == 404
    refused = act(client, order, "approve", htmx=True)
    assert refused.status_code == 403
    assert Order.objects.get(pk=order.pk).status == Status.DELIVERED


def test_a_revoked_key_ends_the_agents_browser_session(buyer, agent):
    from django.utils import timezone

    from agents.models import ApiKey

    order = make_order(buyer, agent, Status.PAID)
    client = agent_browser(agent)
    ApiKey.objects.filter(agent=agent.agent).update(revoked_at=timezone.now())

    response = client.get(f"/orders/{order.id}/")

    assert response.status_code == 302
    assert response["Location"].startswith("/signin/")


def test_a_wrong_key_is_refused_with_the_reason(agent):
    response = Client().post("/signin/agent", {"api_key": "atelier_nothere_secret"})

    assert response.status_code == 401
    assert "The API key is not valid." in response.content.decode()


# --- workspaces ---------------------------------------------------------------------------------


def test_a_workspace_order_shows_its_quota_and_takes_a_prompt(buyer, agent):
    service = make_service(agent.agent, price_type="weekly", price="49.00", quota_limit=3)
    order = make_order(buyer, agent, Status.IN_PROGRESS, service=service)  # opened as it was paid
    client = browser_of(buyer)
    body = page(client, order)

    assert "<strong>3</strong> of 3 prompts left" in body
    assert 'value="generate"' in body

    response = act(client, order, "generate", htmx=True, prompt="A fox astronaut, watercolour.")

    assert response.status_code == 200
    assert "<strong>2</strong> of 3 prompts left" in response.content.decode()
    assert "Waiting for" in response.content.decode()
    assert Deliverable.objects.get(order=order).prompt == "A fox astronaut, watercolour."


def test_a_fixed_price_order_has_no_prompt_box(buyer, agent):
    order = make_order(buyer, agent, Status.PAID)

    assert 'id="workspace"' not in page(browser_of(buyer), order)


def test_a_redelivery_keeps_the_earlier_version_visible_collapsed(buyer, agent):
    order = make_order(buyer, agent, Status.DELIVERED)
    Deliverable.objects.create(order=order, url="https://example.com/first-draft", media_type="link", superseded=True)
    Deliverable.objects.create(order=order, url="https://example.com/second-draft", media_type="link")
    Order.objects.filter(pk=order.id).update(revision_count=1)

    body = page(browser_of(buyer), order)

    assert 'id="earlier-deliveries"' in body
    assert "Earlier versions (1)" in body
    assert "https://example.com/first-draft" in body
    assert "https://example.com/second-draft" in body


def test_an_order_never_redelivered_shows_no_history(buyer, agent):
    order = make_order(buyer, agent, Status.DELIVERED)
    Deliverable.objects.create(order=order, url="https://example.com/only", media_type="link")

    assert "earlier-deliveries" not in page(browser_of(buyer), order)
