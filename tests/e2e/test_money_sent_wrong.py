"""A clumsy buyer in the browser: the transfer it sends from its phone wallet is short. The order
page says what arrived, what is missing and that it goes back; the full payment then pays the order
with nothing pasted (its memo names the order; the escrow scan finds it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orders.checkout.escrow_scan import escrow_scan
from orders.models import Order, Status
from payments import chains
from payments.models import ScanCursor
from tests.conftest import make_service
from tests.e2e.test_buyer_flow import new_agent, order_id_of, shoot, wait_for_status
from tests.payments import solana_helpers

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def scan_from_now(url: str) -> None:
    """Decide only what this test sends: the session's devchain also holds other tests' transfers."""
    escrow_account = chains.client("solana").payment_instructions().token_account
    newest = solana_helpers.rpc(url, "getSignaturesForAddress", escrow_account, {"limit": 1})
    ScanCursor.objects.update_or_create(chain="solana", defaults={"position": newest[0]["signature"] if newest else ""})


def hire_with_the_demo_wallet(new_context: Any, title: str, brief: str) -> tuple[Any, str]:
    """A buyer without JavaScript hires the $30 service `title`: its page and the new order's id."""
    agent = new_agent()
    make_service(agent.agent, price_type="fixed", price="30.00", title=title)
    context = new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto("/")
    page.get_by_role("link", name=title).click()
    page.get_by_role("link", name="Sign in to hire").click()
    page.get_by_role("button", name="Sign in with the demo wallet").click()
    page.locator("#id_brief").fill(brief)
    page.get_by_role("button", name="Hire for $30.00").click()
    order_id = order_id_of(page.url)
    wait_for_status(page, "quoted")
    return page, order_id


def test_a_short_payment_is_shown_and_returned_and_the_full_one_pays_by_itself(
    new_context: Any, site: Any, solana_chain: Any, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    page, order_id = hire_with_the_demo_wallet(
        new_context, "Landing page copy", "Copy for a landing page about a fox-themed lab."
    )
    scan_from_now(solana_chain.url)

    phone_wallet = solana_helpers.new_wallet(solana_chain.url, usdc=100 * 10**6)
    instructions = chains.client("solana").payment_instructions()
    reference = Order.objects.get(pk=order_id).payment_reference
    solana_helpers.pay_order(solana_chain.url, phone_wallet, instructions, 25 * 10**6, reference)
    assert escrow_scan("solana") == []
    page.reload()
    notice = page.locator("#unapplied")
    expect(notice).to_contain_text("25.00 USDC arrived, 5.00 USDC short of the 30.00 due")
    expect(notice).to_contain_text("on its way")
    wait_for_status(page, "quoted")
    shoot(page, screenshots / "order-underpaid.png")
    page.set_viewport_size({"width": 390, "height": 844})
    shoot(page, screenshots / "order-underpaid-phone.png")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    solana_helpers.pay_order(solana_chain.url, phone_wallet, instructions, 30 * 10**6, reference)
    escrow_scan("solana")
    page.reload()
    wait_for_status(page, "paid")
    expect(page.locator("#unapplied")).to_contain_text("25.00 USDC")  # the short one stays on record
    assert Order.objects.get(pk=order_id).status == Status.PAID
    page.context.close()


def test_a_short_payment_routed_through_a_pool_is_held_and_the_page_says_so(
    new_context: Any, site: Any, solana_chain: Any, screenshots: Path
) -> None:
    """A swap route pays out of a pool's account (the pool never signed): the short payment is not
    sent back to the pool; the page says it waits for staff, and the books still balance."""
    from playwright.sync_api import expect

    page, order_id = hire_with_the_demo_wallet(new_context, "Pitch deck outline", "An outline for a ten-slide deck.")
    scan_from_now(solana_chain.url)
    pool = solana_helpers.new_wallet(solana_chain.url, usdc=100 * 10**6)
    router = solana_helpers.new_wallet(solana_chain.url, usdc=0)
    instructions = chains.client("solana").payment_instructions()
    reference = Order.objects.get(pk=order_id).payment_reference
    solana_helpers.pay_through_pool(solana_chain.url, router, pool, instructions, 25 * 10**6, reference)
    assert escrow_scan("solana") == []
    page.reload()
    notice = page.locator("#unapplied")
    expect(notice).to_contain_text("25.00 USDC arrived, 5.00 USDC short of the 30.00 due")
    expect(notice).to_contain_text("did not sign")
    expect(notice).to_contain_text("held, not sent back yet")
    expect(notice).not_to_contain_text("goes back")
    shoot(page, screenshots / "order-underpaid-held.png")
    page.set_viewport_size({"width": 390, "height": 844})
    shoot(page, screenshots / "order-underpaid-held-phone.png")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert chains.client("solana").token_balance(str(pool.pubkey())) == 75 * 10**6
    page.context.close()
