"""Staff resolve a dispute in a real browser: sign in to admin, open the queue, open the dispute,
read the evidence, preview a split and confirm it with a note; the buyer's order page then shows the
resolution, the note and the two transfers. Screenshots of the queue and the resolve page at 1440 px
and of the resolve page at 390 px go to artifacts/screenshots/."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.contrib.sessions.backends.db import SessionStore
from django.db.models import F
from django.utils import timezone

from orders.core.services import message_post
from orders.core.transitions import Role, transition
from orders.models import Order, OrderEvent, Status
from payments.models import OutgoingTransfer
from tests.conftest import make_agent, make_buyer, make_order, make_service
from tests.e2e.test_buyer_flow import new_agent

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "a staff password 4 tests"
NOTE = "Half the brief was met: the fox is right, the lab coat is missing. Split 20/25."


def disputes_waiting() -> tuple[Order, Any]:
    """A few disputes of different ages, amounts and agents (one overdue); returns the one to
    resolve and its buyer."""
    agent = new_agent()
    buyer = make_buyer("solana")
    order = make_order(buyer, agent, Status.REVISION_REQUESTED)
    Order.objects.filter(pk=order.pk).update(reference_urls=["https://example.com/moodboard/fox-in-a-lab"])
    message_post(order=order, role=Role.AGENT, actor=agent.principal, content="Second pass coming up, with the coat.")
    again = [
        {"url": "https://cdn.example.com/fox-second-pass.png", "media_type": "image"},
        {"url": "https://example.com/brand-guide", "media_type": "link"},
    ]
    transition(order.id, "deliver", agent.principal, deliverables=again)
    message_post(order=order, role=Role.BUYER, actor=buyer.principal, content="Still no lab coat, see the brief.")
    transition(
        order.id,
        "dispute",
        buyer.principal,
        reason="The fox has no lab coat in either version; the brief asked for one.",
    )

    other_agent = make_agent("Codewright")
    late = make_service(other_agent.agent, price_type="fixed", price="120.00", turnaround_hours=24)
    late_buyer = make_buyer("solana")
    overdue = make_order(late_buyer, other_agent, Status.IN_PROGRESS, service=late)
    Order.objects.filter(pk=overdue.pk).update(paid_at=F("paid_at") - timedelta(hours=60))
    transition(overdue.id, "dispute", late_buyer.principal, reason="Nothing was delivered within the 24 h turnaround.")
    OrderEvent.objects.filter(order=overdue, action="dispute").update(
        created_at=timezone.now() - timedelta(days=1, hours=12)
    )
    third = make_order(make_buyer("solana"), other_agent, Status.DISPUTED)
    OrderEvent.objects.filter(order=third, action="dispute").update(created_at=timezone.now() - timedelta(hours=5))
    return order, buyer


def staff_user() -> User:
    user = User.objects.create_user("dana", password=PASSWORD, is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["resolve_dispute", "view_dispute", "view_order", "view_outgoingtransfer", "view_payment"]
        )
    )
    return user


def buyer_session(buyer: Any) -> str:
    session = SessionStore()
    session["buyer_wallet"] = buyer.wallet
    session["buyer_chain"] = buyer.chain
    session.create()
    return str(session.session_key)


def shoot(page: Any, path: Path) -> None:
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=True)


def test_staff_split_a_dispute_and_the_buyer_sees_the_resolution_and_the_transfers(
    new_context: Any, site: Any, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    order, buyer = disputes_waiting()
    staff_user()
    page = new_context().new_page()
    page.set_viewport_size({"width": 1440, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto("/admin/")
    page.locator("#id_username").fill("dana")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit]").click()
    page.wait_for_url(f"{site.url}/admin/")

    # Click 1: the queue, oldest dispute first; every column readable at 1440 px.
    page.get_by_role("link", name="Disputes").first.click()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("overdue: nothing delivered")
    expect(rows.first).to_contain_text("$120.00")
    table_right = page.locator("#result_list").bounding_box()
    assert table_right is not None
    assert table_right["x"] + table_right["width"] <= 1440
    shoot(page, screenshots / "admin-dispute-queue-1440.png")

    # Click 2: the dispute opens on its resolve page, with the evidence.
    rows.filter(has_text=order.id).get_by_role("link", name=order.id).click()
    page.wait_for_url(re.compile(r".*/admin/orders/dispute/.+/resolve/$"))
    expect(page.locator("#reason")).to_contain_text("no lab coat in either version")
    expect(page.locator("#brief")).to_contain_text("Draw a fox in a lab coat")
    expect(page.locator("#brief")).to_contain_text("https://example.com/moodboard/fox-in-a-lab")
    expect(page.locator("#terms")).to_contain_text("$45.00 (quote)")
    expect(page.locator("#terms")).to_contain_text("1 of 3 used")
    expect(page.locator("#deliverables")).to_contain_text("Version 2")
    expect(page.locator("#deliverables")).to_contain_text("Version 1")
    expect(page.locator("#thread")).to_contain_text("Still no lab coat")
    expect(page.locator("#timeline")).to_contain_text("Disputed")
    expect(page.locator("#decision-release")).to_contain_text(
        "Agent gets 40.50 · buyer gets 0.00 · platform keeps 4.50"
    )
    expect(page.locator("#decision-refund")).to_contain_text("buyer gets 45.00")
    shoot(page, screenshots / "admin-dispute-resolve-1440.png")
    page.set_viewport_size({"width": 390, "height": 844})
    shoot(page, screenshots / "admin-dispute-resolve-390.png")
    page.set_viewport_size({"width": 1440, "height": 900})

    # Click 3: preview the split (nothing moves yet).
    page.locator("#id_agent_amount_usd").fill("20")
    page.locator("#id_note").fill(NOTE)
    page.get_by_role("button", name="Preview split").click()
    expect(page.locator("#split-preview")).to_contain_text(
        "agent gets 18.00 net · buyer gets 25.00 · platform keeps 2.00"
    )
    assert not OutgoingTransfer.objects.filter(order=order).exists()
    shoot(page, screenshots / "admin-dispute-split-preview-1440.png")

    # Click 4: confirm. The page says what was decided; money follows the decision.
    resolve_url = page.url
    fields = {
        "csrfmiddlewaretoken": page.locator("input[name=csrfmiddlewaretoken]").first.input_value(),
        "note": NOTE,
        "agent_amount_usd": "20",
        "previewed_amount": "20.00",
        "decision": "split",
    }
    page.get_by_role("button", name="Confirm the split").click()
    expect(page.locator(".messagelist")).to_contain_text("Split: recorded with your note; the order is completed.")
    expect(page.locator("#resolution")).to_contain_text(NOTE)
    expect(page.get_by_role("button", name="Confirm the split")).to_have_count(0)
    shoot(page, screenshots / "admin-dispute-resolved-1440.png")
    # The same form submitted again (a double click, a resubmitted page) is refused and moves nothing.
    again = page.request.post(resolve_url, form=fields, headers={"Referer": resolve_url})
    assert again.status == 409
    assert "already decided (split" in again.text()
    assert dict(OutgoingTransfer.objects.filter(order=order).values_list("kind", "amount_base_units")) == {
        "payout": 18_000_000,
        "refund": 25_000_000,
    }

    # The buyer's page: the resolution with the staff note, and the two transfers.
    buyer_context = new_context()
    buyer_context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": buyer_session(buyer), "url": site.url}])
    buyer_page = buyer_context.new_page()
    buyer_page.goto(f"/orders/{order.id}/")
    expect(buyer_page.locator("#resolution")).to_contain_text("Dispute resolved: split")
    expect(buyer_page.locator("#resolution-note")).to_contain_text(NOTE)
    expect(buyer_page.locator("#resolution")).to_contain_text("18.00 USDC")
    expect(buyer_page.locator("#resolution")).to_contain_text("25.00 USDC")
    transfers = buyer_page.locator("#transfers li")
    expect(transfers).to_have_count(2)
    expect(transfers.nth(0)).to_contain_text("Payout of 18.00 USDC")
    expect(transfers.nth(1)).to_contain_text("Refund of 25.00 USDC")
    shoot(buyer_page, screenshots / "order-dispute-resolved.png")
    assert errors == []


def sign_in(page: Any, site: Any) -> None:
    page.goto("/admin/")
    page.locator("#id_username").fill("dana")
    page.locator("#id_password").fill(PASSWORD)
    page.locator("input[type=submit]").click()
    page.wait_for_url(f"{site.url}/admin/")


def test_the_transfers_queue_shows_status_and_amount_without_scrolling_at_1440(
    new_context: Any, site: Any, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    agent = new_agent()
    for n in range(3):
        order = make_order(make_buyer("solana"), agent, Status.COMPLETED)
        transfer = OutgoingTransfer.objects.get(order=order, kind="payout")
        OutgoingTransfer.objects.filter(pk=transfer.pk).update(
            status="failed" if n == 0 else "confirmed",
            attempts=3 - n,
            tx_hash="5" * 88,
            to_address="7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU",
            last_error="RPC error: blockhash not found" if n == 0 else "",
        )
    staff_user()
    page = new_context().new_page()
    page.set_viewport_size({"width": 1440, "height": 900})
    sign_in(page, site)

    page.goto("/admin/payments/outgoingtransfer/")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("Failed")
    expect(rows.first).to_contain_text("40.50 USDC")
    for column in ("status", "amount", "attempts", "order_ref", "age"):
        box = page.locator(f"#result_list thead th.column-{column}").bounding_box()
        assert box is not None, column
        assert box["x"] + box["width"] <= 1440, column
    table = page.locator("#result_list").bounding_box()
    assert table is not None
    assert table["x"] + table["width"] <= 1440
    assert page.evaluate("document.documentElement.scrollWidth") <= 1440
    shoot(page, screenshots / "admin-transfers-1440.png")

    # The detail: the whole address and hash, each with a copy button.
    rows.first.locator("th a, td a").first.click()
    expect(page.locator("button.copy-button").first).to_be_visible()
    expect(page.locator(".field-recipient")).to_contain_text("7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU")
    shoot(page, screenshots / "admin-transfer-detail-1440.png")
