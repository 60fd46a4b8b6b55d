"""Checkout in a real browser: the buyer pays by clicking (a browser wallet signs the transaction the
server built), and a Solana Pay payment made outside the page (a phone wallet scanning the QR code;
here a script) turns the open page to paid by itself. Both on the Solana devchain with real keys and
real signed transactions; the wallet is a shim whose signing runs in the test (expose_function).
Also: no horizontal overflow at phone width (390 px) on the pages of the journey."""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path
from typing import Any

import pytest
from eth_account.messages import encode_defunct
from solders.keypair import Keypair
from solders.message import Message
from solders.transaction import Transaction

from agents.models import Service
from devchain.solana_rendering import b58decode
from orders.models import Order, Status
from tests.e2e.conftest import TIMEOUT_MS, axe_check
from tests.e2e.test_buyer_flow import BRIEF, order_id_of, seeded_marketplace, shoot, wait_for_status
from tests.payments import evm_helpers, solana_helpers

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Phantom's provider as the order page uses it: connect(), signMessage() for sign-in and
# request({method: "signAndSendTransaction", params: {message}}) with the base58 message.
WALLET_PROVIDER = """
(() => {
  const publicKey = { toString: () => "%(address)s", toBase58: () => "%(address)s" };
  window.solana = {
    isPhantom: true,
    publicKey,
    connect: async () => ({ publicKey }),
    signMessage: async (bytes) => ({ signature: Uint8Array.from(await window.__testWalletSign(Array.from(bytes))), publicKey }),
    request: async ({ method, params }) => {
      if (method !== "signAndSendTransaction") throw new Error("unsupported: " + method);
      return { signature: await window.__testWalletSend(params.message), publicKey: "%(address)s" };
    },
  };
})();
"""


def wallet_page(new_context: Any, chain_url: str, buyer: Keypair) -> tuple[Any, list[str]]:
    """A page whose `window.solana` is the buyer's wallet: it signs with the buyer's key and sends to the devchain."""
    page = new_context().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: errors.append(f"{message.text} at {message.location}") if message.type == "error" else None,
    )

    def sign(message: list[int]) -> list[int]:
        return list(bytes(buyer.sign_message(bytes(message))))

    def send(message_b58: str) -> str:
        message = Message.from_bytes(b58decode(message_b58))
        assert message.account_keys[0] == buyer.pubkey()
        signed = Transaction.populate(message, [buyer.sign_message(bytes(message))])
        raw = base64.b64encode(bytes(signed)).decode()
        return str(solana_helpers.rpc(chain_url, "sendTransaction", raw, {"encoding": "base64"}))

    page.expose_function("__testWalletSign", sign)
    page.expose_function("__testWalletSend", send)
    page.add_init_script(WALLET_PROVIDER % {"address": str(buyer.pubkey())})
    return page, errors


def no_overflow(page: Any) -> None:
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth)"
        ".slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id)"
    )
    assert width[0] <= width[1], f"{page.url}: scrollWidth {width[0]} > innerWidth {width[1]}: {wide}"


def hire(page: Any, site: Any, service: Service) -> str:
    page.goto(f"/services/{service.id}/")
    page.get_by_role("link", name="Sign in to hire").click()
    page.get_by_role("button", name="Sign in with Phantom").click()
    page.wait_for_url(f"{site.url}/services/{service.id}/")
    page.locator("#id_brief").fill(BRIEF)
    page.get_by_role("button", name="Hire for $25.00").click()
    page.wait_for_url(re.compile(rf"^{re.escape(site.url)}/orders/ord_"))
    wait_for_status(page, "quoted")
    return order_id_of(page.url)


def test_a_buyer_pays_by_clicking_pay_with_phantom(
    new_context: Any, site: Any, solana_chain: Any, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    agent = seeded_marketplace()
    service = Service.objects.get(agent=agent.agent, title="Logo in three styles")
    buyer = solana_helpers.new_wallet(solana_chain.url, usdc=100 * solana_helpers.USDC)
    page, errors = wallet_page(new_context, solana_chain.url, buyer)
    order_id = hire(page, site, service)

    expect(page.locator("#payment-state")).to_contain_text("Pay with one of the ways below")  # no error before anything
    expect(page.locator("#checkout")).to_contain_text("25.00 USDC")
    expect(page.locator("#checkout .qr svg")).to_be_visible()
    link = page.locator("#solana-pay-link").get_attribute("href") or ""
    assert link.startswith("solana:")
    shoot(page, screenshots / "checkout-solana-quoted.png")
    axe_check(page)

    page.get_by_role("button", name="Pay with Phantom").click()
    wait_for_status(page, "paid")
    expect(page.locator("#order-announcer")).to_have_text("Order status: paid")  # said aloud once
    expect(page.locator("#paid-state")).to_be_focused()  # focus follows the buyer's action
    expect(page.locator("#payment-pending")).to_have_count(0)  # never paid and pending together
    shoot(page, screenshots / "checkout-solana-paid.png")
    axe_check(page)
    order = Order.objects.get(pk=order_id)
    assert order.status == Status.PAID
    assert order.payment_chain == "solana"
    # htmx 2 sets one inline style during the wallet's form submission, which the strict CSP blocks
    # (harmless: nothing is left unstyled); every other console error fails the test.
    assert not [error for error in errors if "htmx-2.min.js" not in error and "no-such-page" not in error], "\n".join(
        errors
    )


def test_a_solana_pay_payment_made_outside_the_page_turns_it_paid_by_itself(
    new_context: Any, site: Any, solana_chain: Any, screenshots: Path
) -> None:
    agent = seeded_marketplace()
    service = Service.objects.get(agent=agent.agent, title="Logo in three styles")
    buyer = solana_helpers.new_wallet(solana_chain.url, usdc=100 * solana_helpers.USDC)
    page, errors = wallet_page(new_context, solana_chain.url, buyer)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/")
    no_overflow(page)
    axe_check(page)
    shoot(page, screenshots / "phone-catalogue.png")
    order_id = hire(page, site, service)
    no_overflow(page)
    shoot(page, screenshots / "phone-checkout-quoted.png")
    link = page.locator("#solana-pay-link").get_attribute("href") or ""

    # A phone wallet scans the QR code: a separate key pays, the memo binds it.
    phone = solana_helpers.new_wallet(solana_chain.url, usdc=100 * solana_helpers.USDC)
    signature = solana_helpers.pay_transfer_request(solana_chain.url, phone, link)
    landed = time.monotonic()
    wait_for_status(page, "paid")
    seconds = time.monotonic() - landed
    from playwright.sync_api import expect

    expect(page.locator("#order-announcer")).to_have_text("Order status: paid")
    print(f"\nSolana Pay transfer landed -> page shows paid: {seconds:.2f} s")
    assert seconds * 1000 < TIMEOUT_MS
    no_overflow(page)
    shoot(page, screenshots / "phone-checkout-paid.png")
    assert Order.objects.get(pk=order_id).escrow_tx_hash == signature

    page.get_by_role("link", name="My orders").first.click()
    page.wait_for_url(f"{site.url}/orders/")
    page.wait_for_load_state("load")
    no_overflow(page)
    axe_check(page)
    shoot(page, screenshots / "phone-my-orders.png")
    for path in (f"/services/{service.id}/", "/no-such-page/", f"/orders/{order_id}/"):
        page.goto(path)
        no_overflow(page)
        axe_check(page)
    shoot(page, screenshots / "phone-order-paid-reload.png")
    page.goto("/no-such-page/")
    shoot(page, screenshots / "phone-404.png")
    # htmx 2 sets one inline style during the wallet's form submission, which the strict CSP blocks
    # (harmless: nothing is left unstyled); every other console error fails the test.
    assert not [error for error in errors if "htmx-2.min.js" not in error and "no-such-page" not in error], "\n".join(
        errors
    )


# MetaMask's provider as sign-in and the order page use it; every request runs in the test.
ETHEREUM_PROVIDER = """
(() => {
  window.ethereum = {
    isMetaMask: true,
    request: async ({ method, params }) => window.__testEthereum(method, params || []),
  };
})();
"""


def test_a_base_buyer_pays_by_clicking_pay_with_metamask(
    new_context: Any, site: Any, settings: Any, base_chain: Any, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    evm_helpers.point_settings(settings, base_chain, confirmations=2)
    agent = seeded_marketplace()
    service = Service.objects.get(agent=agent.agent, title="Logo in three styles")
    buyer = evm_helpers.new_wallet(base_chain.url, usdc=100 * 10**6)
    chain_id = hex(base_chain.chain.chain_id)
    sent: list[str] = []

    def ethereum(method: str, params: list[Any]) -> Any:
        if method == "eth_requestAccounts":
            return [buyer.address]
        if method == "eth_chainId":
            return chain_id
        if method == "personal_sign":
            message = bytes.fromhex(params[0].removeprefix("0x"))
            return "0x" + buyer.sign_message(encode_defunct(primitive=message)).signature.hex()
        if method == "eth_sendTransaction":
            call = params[0]
            assert call["from"].lower() == buyer.address.lower()
            data = bytes.fromhex(call["data"].removeprefix("0x"))
            raw, tx_hash = evm_helpers.sign_tx(base_chain.url, buyer, to=call["to"], data=data)
            evm_helpers.send_raw(base_chain.url, raw)
            sent.append(tx_hash)
            return tx_hash
        raise ValueError(f"unsupported: {method}")

    page = new_context().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.expose_function("__testEthereum", ethereum)
    page.add_init_script(ETHEREUM_PROVIDER)

    page.goto(f"/services/{service.id}/")
    page.get_by_role("link", name="Sign in to hire").click()
    page.get_by_role("button", name="Sign in with MetaMask").click()
    page.wait_for_url(f"{site.url}/services/{service.id}/")
    page.locator("#id_brief").fill(BRIEF)
    page.get_by_role("button", name="Hire for $25.00").click()
    page.wait_for_url(re.compile(rf"^{re.escape(site.url)}/orders/ord_"))
    wait_for_status(page, "quoted")
    order_id = order_id_of(page.url)
    link = page.locator("#eip681-link").get_attribute("href") or ""
    assert link.startswith("ethereum:")
    assert f"@{base_chain.chain.chain_id}/transfer?address=" in link
    assert link.endswith("&uint256=25000000")
    shoot(page, screenshots / "checkout-base-quoted.png")

    page.get_by_role("button", name="Pay with MetaMask").click()
    expect(page.locator("#payment-pending")).to_be_visible()  # seen, 2 confirmations awaited
    expect(page.locator("#payment-state")).to_contain_text("waiting to be final")
    shoot(page, screenshots / "checkout-base-pending.png")
    axe_check(page)
    evm_helpers.mine(base_chain.url, 2)
    wait_for_status(page, "paid")
    expect(page.locator("#payment-pending")).to_have_count(0)
    shoot(page, screenshots / "checkout-base-paid.png")
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.payment_chain, order.escrow_tx_hash) == (Status.PAID, "base", sent[0])
    assert not errors, errors
