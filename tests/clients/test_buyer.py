"""The buyer side of the client on Base: a human buyer signs in with an EVM key (or signs each
request), orders, pays USDC into escrow, approves and reviews, through the client alone."""

from __future__ import annotations

import pytest
from atelier_client import AuthenticationError, PaymentRequiredError
from atelier_client.buyer import Buyer, EvmWallet, SolanaWallet

from tests.payments import evm_helpers, solana_helpers

pytestmark = pytest.mark.slow
USDC = 10**6


@pytest.mark.parametrize("session", [True, False], ids=["signed-in", "per-request-signature"])
def test_a_base_buyer_hires_pays_approves_and_reviews(site, clients, chains_up, registered, session):
    agent_client, registration = registered
    service = agent_client.services.create(
        registration.agent.id,
        title="A logo",
        description="One logo, delivered as a link, fixed price.",
        category="design",
        price_type="fixed",
        price_usd="20.00",
    )
    account = evm_helpers.new_wallet(chains_up.evm.url, usdc=50 * USDC)
    buyer = Buyer(clients(site), EvmWallet(account, rpc_url=chains_up.evm.url))
    if session:
        signed_in = buyer.sign_in()
        assert signed_in.token.startswith("atws_")
        assert signed_in.wallet.lower() == account.address.lower()

    order = buyer.hire(service.id, "A fox logo for the bakery, flat colours, transparent background.")
    assert (order.status, order.payment_chain, order.viewer_role) == ("quoted", "base", "buyer")
    order, tx = buyer.send_payment(order)
    evm_helpers.mine(chains_up.evm.url, 2)
    paid = buyer.submit_payment(order, tx)
    assert paid.status == "paid", paid.raw

    agent_client.orders.deliver(order.id, "https://cdn.example.com/fox.png", "link")
    assert buyer.approve(order.id).status == "completed"
    assert buyer.review(order.id, 4, "Good fox.").rating == 4
    mine = list(buyer.client.orders.list(status="completed"))
    assert [o.id for o in mine] == [order.id]


def test_a_bad_api_key_is_an_authentication_error(site, clients):
    with pytest.raises(AuthenticationError) as caught:
        clients(site, api_key="atelier_nope_nope").agents.me()
    assert caught.value.status == 401


def test_x402_a_machine_without_an_account_buys_on_solana(site, clients, chains_up, registered):
    agent_client, registration = registered
    service = agent_client.services.create(
        registration.agent.id,
        title="A haiku",
        description="One haiku, delivered as text, fixed price.",
        category="writing",
        price_type="fixed",
        price_usd="3.00",
    )
    keypair = solana_helpers.new_wallet(chains_up.solana.url, sol=10**9, usdc=10 * USDC)
    wallet = SolanaWallet(keypair, rpc_url=chains_up.solana.url)
    buyer = Buyer(clients(site), wallet)

    order = buyer.buy_x402(service.id, "A haiku about a fox who bakes bread at dawn.")

    assert (order.status, order.buyer_kind, order.buyer_wallet) == ("paid", "x402", wallet.address)
    assert agent_client.orders.deliver(order.id, "https://cdn.example.com/haiku.txt", "link").status == "completed"


def test_without_credentials_a_fixed_price_order_is_a_payment_required_error(site, clients, registered):
    agent_client, registration = registered
    service = agent_client.services.create(
        registration.agent.id,
        title="A haiku",
        description="One haiku, delivered as text, fixed price.",
        category="writing",
        price_type="fixed",
        price_usd="3.00",
    )
    with pytest.raises(PaymentRequiredError) as caught:
        clients(site).orders.create(service.id, "A haiku about a fox who bakes bread at dawn.")
    assert caught.value.requirements["x402Version"] == 2
    assert {entry["network"].split(":")[0] for entry in caught.value.accepts} == {"solana", "eip155"}
    assert caught.value.reference == caught.value.accepts[0]["extra"]["reference"]
