"""A buyer's whole order in a real browser: sign in with a wallet, hire, pay on the devchain, talk
to the agent, see only the watermarked preview, ask for a revision, approve, review. Once with a
browser wallet (the test holds the key; the page talks to it as `window.solana`), once with
JavaScript off and the demo wallet. The agent's side goes through the JSON API with its key."""

from __future__ import annotations

import io
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.management import call_command
from django.test import Client
from PIL import Image, ImageDraw
from solders.keypair import Keypair

from agents.models import Agent, Service
from agents.services import agent_update, api_key_create
from orders.core.services import review_create
from orders.core.transitions import Role
from orders.models import Order, Review, Status
from payments import chains
from tests.conftest import AgentPersona, Api, make_agent, make_buyer, make_order, make_service
from tests.e2e.conftest import TIMEOUT_MS
from tests.payments import solana_helpers

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BRIEF = "A fox in a lab coat, flat colours, on a warm background."

# Phantom's provider, as far as sign-in uses it: connect() and signMessage(bytes). The signing
# runs in the test (page.expose_function), with the test's keypair.
WALLET_PROVIDER = """
(() => {
  const publicKey = { toString: () => "%(address)s", toBase58: () => "%(address)s" };
  window.solana = {
    isPhantom: true,
    publicKey,
    connect: async () => ({ publicKey }),
    signMessage: async (bytes, display) => {
      const signature = await window.__testWalletSign(Array.from(bytes));
      return { signature: Uint8Array.from(signature), publicKey };
    },
  };
})();
"""


def image_png(colour: tuple[int, int, int], size: tuple[int, int] = (1600, 1000)) -> bytes:
    image = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(image)
    draw.ellipse([size[0] // 4, size[1] // 5, size[0] * 3 // 4, size[1] * 4 // 5], fill=(250, 200, 40))
    draw.rectangle([60, 60, 360, 200], fill=(30, 30, 90))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


class AgentClient:
    """The agent's side, over HTTP with its API key."""

    def __init__(self, base: str, persona: AgentPersona) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {persona.key}"}

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, self.base + path, headers=self.headers, timeout=30, **kwargs)
        body = response.json()
        assert body["success"], (method, path, response.status_code, body)
        return body["data"]

    def say(self, order_id: str, content: str) -> None:
        self.call("POST", f"/api/orders/{order_id}/messages", json={"content": content})

    def messages(self, order_id: str) -> list[str]:
        return [item["content"] for item in self.call("GET", f"/api/orders/{order_id}/messages")]

    def deliver_image(self, order_id: str, png: bytes, name: str) -> dict[str, Any]:
        upload = self.call("POST", "/api/upload", files={"file": (name, png, "image/png")})
        return self.call(
            "POST",
            f"/api/orders/{order_id}/deliver",
            json={
                "deliverables": [
                    {"deliverable_url": upload["url"], "deliverable_media_type": "image"},
                    {"deliverable_url": "https://example.com/brand-guide", "deliverable_media_type": "link"},
                ]
            },
        )


def seeded_marketplace() -> AgentPersona:
    """`make run`'s demo agents and services, a few reviewed orders for ratings; Pixel Forge's persona."""
    call_command("seed_demo", stdout=io.StringIO())
    reviewer = make_buyer("solana")
    for slug, title, rating in (
        ("codewright", "Pull request review", 5),
        ("codewright", "Pull request review", 4),
        ("wordsmith", "Landing page copy", 5),
        ("pixel-forge", "Custom illustration", 4),
    ):
        seller = Agent.objects.get(slug=slug)
        persona = AgentPersona(seller, "", Api(Client()))
        order = make_order(reviewer, persona, Status.COMPLETED, service=Service.objects.get(agent=seller, title=title))
        review_create(order=order, role=Role.BUYER, actor=reviewer.principal, rating=rating, comment="Good work.")
    agent = Agent.objects.get(slug="pixel-forge")
    key = api_key_create(agent=agent, label="e2e")
    return AgentPersona(agent, key, Api(Client(), {"Authorization": f"Bearer {key}"}))


def new_agent() -> AgentPersona:
    persona = make_agent("Pixel Forge")
    payout = Keypair()
    agent_update(agent=persona.agent, payout_wallet=str(payout.pubkey()))
    return persona


def order_id_of(url: str) -> str:
    match = re.search(r"/orders/(ord_[0-9a-z_]+)/", url)
    assert match, url
    return match.group(1)


def shoot(page: Any, path: Path) -> None:
    """A full-page screenshot from the top (the message box is sticky: it follows the scroll)."""
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=True)


def wait_for_status(page: Any, label: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#order-panel .status-line .status").first).to_have_text(label, timeout=TIMEOUT_MS)


def test_a_buyer_with_a_browser_wallet_hires_pays_talks_revises_approves_and_reviews(
    new_context: Any, site: Any, solana_chain: Any, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    agent = seeded_marketplace()
    service = Service.objects.get(agent=agent.agent, title="Logo in three styles")
    buyer = solana_helpers.new_wallet(solana_chain.url, usdc=100 * solana_helpers.USDC)
    address = str(buyer.pubkey())
    signed: list[str] = []
    agent_api = AgentClient(site.url, agent)

    context = new_context()
    errors: list[str] = []
    page = context.new_page()
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))

    def sign(message: list[int]) -> list[int]:
        signed.append(bytes(message).decode())
        return list(bytes(buyer.sign_message(bytes(message))))

    page.expose_function("__testWalletSign", sign)
    page.add_init_script(WALLET_PROVIDER % {"address": address})

    # The catalogue, then the service, then sign in with the wallet.
    page.goto("/")
    expect(page.get_by_role("link", name="Logo in three styles")).to_be_visible()
    shoot(page, screenshots / "catalogue.png")
    page.get_by_role("link", name="Logo in three styles").click()
    page.get_by_role("link", name="Sign in to hire").click()
    page.get_by_role("button", name="Sign in with Phantom").click()
    page.wait_for_url(f"{site.url}/services/{service.id}/")  # the exact URL: next= holds it too
    assert len(signed) == 1
    assert address in signed[0]
    assert "Nonce:" in signed[0]
    expect(page.locator(".nav .who")).to_contain_text("Solana")

    # Hire: the brief form, then the order page with what to pay.
    page.locator("#id_brief").fill(BRIEF)
    page.get_by_role("button", name="Hire for $25.00").click()
    page.wait_for_url(re.compile(rf"^{re.escape(site.url)}/orders/ord_"))
    order_id = order_id_of(page.url)
    wait_for_status(page, "quoted")
    expect(page.locator("#payment")).to_contain_text("25.00 USDC")
    page.get_by_text("Pay by hand instead").click()
    reference = page.locator("#payment-reference").inner_text()
    assert reference.startswith("atl-")

    # Pay from the wallet (the test signs the USDC transfer with the memo) and submit the signature.
    instructions = chains.client("solana").payment_instructions()
    escrow_shown = page.locator("#escrow-address").inner_text()
    assert escrow_shown == instructions.escrow_address
    signature = solana_helpers.pay_order(solana_chain.url, buyer, instructions, 25 * solana_helpers.USDC, reference)
    page.locator("#escrow_tx_hash").fill(signature)
    page.get_by_role("button", name="Submit payment").click()
    wait_for_status(page, "paid")
    expect(page.locator("#timeline")).to_contain_text("Paid into escrow")

    # Messages: the agent writes through the API and the page shows it without a reload (polling);
    # the buyer answers from the page without a reload.
    agent_api.say(order_id, "Thanks! Starting on your fox now.")
    expect(page.locator("#message-list")).to_contain_text("Starting on your fox now.", timeout=TIMEOUT_MS)
    page.evaluate("window.__samePage = true")  # survives only if nothing below reloads the page
    url_before = page.url
    page.locator("#message-content").fill("Great, make the coat bright white please.")
    page.locator("#message-form button").click()
    expect(page.locator("#message-list")).to_contain_text("bright white")
    expect(page.locator("#message-content")).to_have_value("")
    assert page.url == url_before
    assert "Great, make the coat bright white please." in agent_api.messages(order_id)

    # The agent delivers an image: the buyer sees the watermarked preview, never the original.
    delivered = agent_api.deliver_image(order_id, image_png((40, 110, 160)), "fox.png")
    wait_for_status(page, "delivered")
    image = delivered["deliverables"][0]
    preview = page.locator("#deliverables img.preview")
    expect(preview).to_have_count(1)
    src = preview.get_attribute("src") or ""
    assert src.endswith("/preview")
    assert image["id"] in src
    expect(preview).to_have_js_property("complete", True)
    assert preview.evaluate("img => img.naturalWidth") == 720  # the preview's long edge
    html = page.content()
    assert "/original" not in html
    assert "atelier://upload" not in html
    assert page.request.get(f"/api/deliverables/{image['id']}/original").status == 403
    assert page.request.get(src).headers["content-type"] == "image/webp"
    expect(page.locator("#deliverables")).to_contain_text("Watermarked preview")
    shoot(page, screenshots / "order-delivered.png")

    # A revision with feedback; the agent delivers again.
    page.get_by_text("Ask for a revision").click()
    page.locator("#feedback").fill("Warmer background, please.")
    page.get_by_role("button", name="Request revision").click()
    wait_for_status(page, "revision requested")
    expect(page.locator("#timeline")).to_contain_text("Revision requested: Warmer background, please.")
    agent_api.deliver_image(order_id, image_png((200, 90, 40)), "fox-warm.png")
    wait_for_status(page, "delivered")

    # Approve: completed, the original unlocks, and the review form appears.
    page.get_by_role("button", name=re.compile(r"^Approve and pay Pixel Forge \$22\.50")).click()
    wait_for_status(page, "completed")
    assert page.evaluate("window.__samePage") is True  # HTMX swapped every part in place
    expect(page.locator("#deliverables")).to_contain_text("Download the original")
    original = page.locator("#deliverables img.preview").get_attribute("src") or ""
    assert original.endswith("/original")
    assert page.request.get(original).status == 200
    page.get_by_label("5 ★").check()  # no rating is chosen for the buyer
    page.locator("#comment").fill("Lovely fox, quick revision.")
    page.locator("#review button").click()
    expect(page.locator("#review")).to_contain_text("Lovely fox, quick revision.")
    shoot(page, screenshots / "order-completed.png")

    # My orders lists it with its badge.
    page.get_by_role("link", name="My orders").first.click()
    expect(page.locator("table.orders")).to_contain_text(order_id)
    expect(page.locator("table.orders .status-completed")).to_be_visible()
    assert not [error for error in errors if "Content Security Policy" in error], errors
    page.close()
    context.close()

    order = Order.objects.get(pk=order_id)
    assert (order.status, order.buyer_wallet, order.revision_count) == (Status.COMPLETED, address, 1)
    assert order.quoted_price_usd == Decimal("25.00")
    assert Review.objects.get(order=order).comment == "Lovely fox, quick revision."


def test_without_javascript_the_demo_wallet_buyer_gets_through_the_same_order(new_context: Any, site: Any) -> None:
    from playwright.sync_api import expect

    agent = new_agent()
    make_service(agent.agent, price_type="fixed", price="30.00", title="Landing page copy")
    agent_api = AgentClient(site.url, agent)
    context = new_context(java_script_enabled=False)
    page = context.new_page()

    page.goto("/")
    page.get_by_role("link", name="Landing page copy").click()
    page.get_by_role("link", name="Sign in to hire").click()
    expect(page.locator(".demo-box")).to_contain_text("DEMO WALLET")
    page.get_by_role("button", name="Sign in with the demo wallet").click()
    expect(page.locator(".nav .who")).to_contain_text("DEMO WALLET")

    page.locator("#id_brief").fill("Copy for a landing page about a fox-themed lab.")
    page.get_by_role("button", name="Hire for $30.00").click()
    order_id = order_id_of(page.url)
    wait_for_status(page, "quoted")
    page.locator("#pay-demo").click()
    wait_for_status(page, "paid")

    page.locator("#message-content").fill("Hello from a browser without JavaScript.")
    page.locator("#message-form button").click()
    expect(page.locator("#message-list")).to_contain_text("without JavaScript")
    agent_api.say(order_id, "Got it, drafting now.")
    page.reload()
    expect(page.locator("#message-list")).to_contain_text("drafting now")

    agent_api.deliver_image(order_id, image_png((90, 140, 60)), "hero.png")
    page.reload()
    wait_for_status(page, "delivered")
    expect(page.locator("#deliverables img.preview")).to_have_count(1)
    assert "/original" not in page.content()
    page.get_by_text("Ask for a revision").click()  # <details> opens without JavaScript
    page.locator("#feedback").fill("Shorter headline.")
    page.get_by_role("button", name="Request revision").click()
    wait_for_status(page, "revision requested")
    agent_api.deliver_image(order_id, image_png((140, 60, 90)), "hero-2.png")
    page.reload()
    page.locator("#approve").click()
    wait_for_status(page, "completed")
    page.get_by_label("5 ★").check()
    page.locator("#comment").fill("Worked without JavaScript.")
    page.locator("#review button").click()
    expect(page.locator("#review")).to_contain_text("Worked without JavaScript.")
    context.close()

    order = Order.objects.get(pk=order_id)
    assert order.status == Status.COMPLETED
    assert Review.objects.get(order=order).rating == 5


def test_a_refused_action_shows_its_message_in_place(new_context: Any, site: Any) -> None:
    """The buyer's tab is stale (the order was cancelled elsewhere); its button gets a clear 409."""
    from playwright.sync_api import expect

    agent = new_agent()
    make_service(agent.agent, price_type="fixed", price="12.00", title="Pull request review")
    context = new_context()
    page = context.new_page()
    page.goto("/signin/")
    page.get_by_role("button", name="Sign in with the demo wallet").click()
    page.goto("/")
    page.get_by_role("link", name="Pull request review").click()
    page.locator("#id_brief").fill("Review my pull request about foxes.")
    page.get_by_role("button", name="Hire for $12.00").click()
    order_id = order_id_of(page.url)
    wait_for_status(page, "quoted")
    # Stop the page's polling from noticing: cancel through the API as the same buyer would elsewhere.
    page.route("**/poll*", lambda route: route.abort())
    from orders.core.transitions import transition

    order = Order.objects.get(pk=order_id)
    from lib.principal import Principal

    transition(order_id, "cancel", Principal(wallet=order.buyer_wallet, chain=order.buyer_chain))
    page.get_by_text("Pay by hand instead").click()
    page.locator("#escrow_tx_hash").fill(str(Keypair().sign_message(b"not on chain")))
    page.get_by_role("button", name="Submit payment").click()
    expect(page.locator("#panel-error")).to_contain_text("Cannot pay an order that is cancelled.")
    wait_for_status(page, "cancelled")
    context.close()
