"""The order page under real use (issue 24): a refresh never touches a form being filled in, a pasted
signature the chain does not know leaves every way to pay on the page, and a session that ended
sends the buyer to sign in and back with what they typed. Each at 390 and 1440 px, axe-checked,
with the sign-in and agent pages too. The buyer signs in through the real sign-in view (nonce and
signature); the browser gets that session's cookie."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from solders.keypair import Keypair

from identity.wallet_signin import signin_challenge_create
from lib.principal import SYSTEM
from orders.core import events
from orders.core.transitions import Role
from orders.models import Message, Order, Review, Status
from tests.conftest import WalletBuyer, make_agent, make_buyer, make_order
from tests.e2e.conftest import axe_check
from tests.e2e.test_buyer_flow import shoot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}


def session_cookie(site: Any, buyer: WalletBuyer) -> dict[str, str]:
    """Sign in as `buyer` through the sign-in page's view; the session cookie it set, for a browser."""
    client = Client()
    challenge = signin_challenge_create(chain=buyer.chain, wallet=buyer.wallet)
    response = client.post("/signin/wallet", {"nonce": challenge.nonce, "signature": buyer.sign(challenge.message)})
    assert response.status_code == 302, response.content[:300]
    return {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": site.url}


def buyer_page(new_context: Any, site: Any, buyer: WalletBuyer, viewport: dict[str, int]) -> tuple[Any, list[str]]:
    context = new_context()
    context.add_cookies([session_cookie(site, buyer)])
    page = context.new_page()
    page.set_viewport_size(viewport)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page, errors


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390", "1440"])
def test_a_refresh_while_the_buyer_writes_a_review_keeps_the_rating_and_the_comment(
    new_context: Any, site: Any, screenshots: Path, viewport: dict[str, int]
) -> None:
    from playwright.sync_api import expect

    buyer, agent = make_buyer(), make_agent()
    order = make_order(buyer, agent, Status.COMPLETED)
    page, errors = buyer_page(new_context, site, buyer, viewport)
    page.goto(f"/orders/{order.id}/")
    expect(page.locator("#review-form")).to_be_visible()
    assert page.locator("#review-form input[name=rating]:checked").count() == 0  # nothing chosen for the buyer
    page.get_by_label("3 ★").check()
    page.locator("#comment").fill("Good, but the colours were off")
    page.locator("#comment").focus()

    # The payout moves on (what redrew the panel in the issue): the next poll redraws the order.
    with transaction.atomic():
        events.record(order, "payout_sent", actor_kind=Role.SYSTEM, actor_id=SYSTEM.id, data={})
    expect(page.locator("#timeline")).to_contain_text("Payout sent", timeout=10_000)
    expect(page.locator("#comment")).to_have_value("Good, but the colours were off")
    expect(page.get_by_label("3 ★")).to_be_checked()
    expect(page.locator("#comment")).to_be_focused()
    page.keyboard.type(".")  # the buyer keeps typing where they were
    shoot(page, screenshots / f"review-after-refresh-{viewport['width']}.png")
    axe_check(page)

    page.get_by_role("button", name="Post review").click()
    expect(page.locator("#review")).to_contain_text("Good, but the colours were off.")
    review = Review.objects.get(order=order)
    assert (review.rating, review.comment) == (3, "Good, but the colours were off.")
    assert not errors, errors  # no CSP violation on a swap either


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390", "1440"])
def test_a_pasted_signature_the_chain_does_not_know_leaves_every_way_to_pay(
    new_context: Any, site: Any, screenshots: Path, viewport: dict[str, int]
) -> None:
    from playwright.sync_api import expect

    buyer, agent = make_buyer(), make_agent()
    order = make_order(buyer, agent, Status.QUOTED)
    page, _errors = buyer_page(new_context, site, buyer, viewport)
    page.goto(f"/orders/{order.id}/")
    expect(page.locator("#payment-state")).to_contain_text("Pay with one of the ways below")
    page.get_by_text("Pay by hand instead").click()
    page.locator("#escrow_tx_hash").fill(str(Keypair().sign_message(b"a typo, or another network")))
    page.get_by_role("button", name="Submit payment").click()

    expect(page.locator("#payment-state")).to_contain_text("not found yet")
    expect(page.locator("#payment-state")).to_contain_text("10 minutes")
    expect(page.locator("#payment-pending")).to_have_count(0)  # no "payment pending" badge for a hash nobody saw
    expect(page.locator("#checkout .qr svg")).to_be_visible()
    expect(page.locator("#solana-pay-link")).to_be_visible()
    expect(page.locator("#escrow-address")).to_have_count(1)
    assert Order.objects.get(pk=order.id).status == Status.QUOTED
    shoot(page, screenshots / f"unknown-signature-{viewport['width']}.png")
    axe_check(page)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390", "1440"])
def test_signed_out_in_another_tab_a_message_sends_to_sign_in_and_back_with_the_text_kept(
    new_context: Any, site: Any, screenshots: Path, viewport: dict[str, int]
) -> None:
    from playwright.sync_api import expect

    buyer, agent = make_buyer(), make_agent()
    order = make_order(buyer, agent, Status.PAID)
    page, _errors = buyer_page(new_context, site, buyer, viewport)
    page.goto(f"/orders/{order.id}/")
    expect(page.locator("#message-content")).to_be_visible()

    other = page.context.new_page()
    other.goto("/")
    other.get_by_role("button", name="Sign out").click()
    expect(other.get_by_role("link", name="Sign in")).to_be_visible()

    page.locator("#message-content").fill("Can you make the fox orange?")
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(f"{site.url}/signin/?next=%2Forders%2F{order.id}%2F")
    expect(page.locator("header.top")).to_have_count(1)  # a whole page, not one inside another
    assert not Message.objects.filter(order=order).exists()
    shoot(page, screenshots / f"session-ended-signin-{viewport['width']}.png")
    axe_check(page)

    page.context.add_cookies([session_cookie(site, buyer)])
    page.goto(f"/orders/{order.id}/")
    expect(page.locator("#message-content")).to_have_value("Can you make the fox orange?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#message-list")).to_contain_text("Can you make the fox orange?")
    assert Message.objects.get(order=order).content == "Can you make the fox orange?"


def test_the_poll_of_a_page_whose_session_ended_says_so_and_keeps_the_text(new_context: Any, site: Any) -> None:
    from playwright.sync_api import expect

    buyer, agent = make_buyer(), make_agent()
    order = make_order(buyer, agent, Status.PAID)
    page, _errors = buyer_page(new_context, site, buyer, DESKTOP)
    page.goto(f"/orders/{order.id}/")
    page.locator("#message-content").fill("Half a thought")
    page.context.clear_cookies()
    expect(page.locator("#flash")).to_contain_text("Your session ended", timeout=10_000)
    expect(page.locator("#flash a")).to_have_attribute("href", f"/signin/?next=%2Forders%2F{order.id}%2F")
    expect(page.locator("#message-content")).to_have_value("Half a thought")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390", "1440"])
def test_the_sign_in_and_agent_pages_pass_axe(new_context: Any, site: Any, viewport: dict[str, int]) -> None:
    agent = make_agent()
    page = new_context().new_page()
    page.set_viewport_size(viewport)
    for path in ("/signin/", "/signin/agent", f"/agents/{agent.agent.slug}/"):
        page.goto(path)
        axe_check(page)
