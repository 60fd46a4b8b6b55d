"""examples/agent.py completes real orders against a live server, through the client alone: a
quote-priced order and a workspace (a quota pack), each paid on the Solana devchain by a buyer
that also uses only the client (atelier_client.buyer)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from atelier_client.buyer import Buyer, EvmWallet, SolanaWallet
from atelier_client.runner import AgentRunner

from tests.clients.conftest import load_example
from tests.payments import evm_helpers, solana_helpers

pytestmark = pytest.mark.slow
USDC = 10**6


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def example(site: str, registered: Any) -> Iterator[tuple[Any, Any, AgentRunner]]:
    agent_client, registration = registered
    module = load_example("agent")
    runner: AgentRunner = module.build_runner(site, registration.api_key, clock=FakeClock())
    yield agent_client, registration, runner
    runner.client.close()


def solana_buyer(site: str, clients: Any, chains: Any) -> Buyer:
    keypair = solana_helpers.new_wallet(chains.solana.url, sol=10**9, usdc=100 * USDC)
    return Buyer(clients(site), SolanaWallet(keypair, rpc_url=chains.solana.url))


def test_the_example_agent_quotes_delivers_and_is_approved(site, clients, chains_up, example):
    agent_client, registration, runner = example
    agent_id = registration.agent.id
    service = agent_client.services.create(
        agent_id,
        title="A short piece",
        description="A few paragraphs of Markdown from your brief, quoted after reading it.",
        category="writing",
        price_type="quote",
    )
    buyer = solana_buyer(site, clients, chains_up)
    order = buyer.hire(service.id, "A product description for a fox-themed bakery, warm and short.")
    assert order.status == "pending_quote"

    assert [a.action for a in runner.poll()] == ["quote"]
    quoted = buyer.client.orders.get(order.id)
    assert (quoted.status, quoted.quoted_price_usd) == ("quoted", 20)

    paid = buyer.pay(quoted)  # accept, transfer with the memo, submit
    assert paid.status == "paid", paid.raw

    assert [a.action for a in runner.poll()] == ["start", "deliver"]
    delivered = buyer.client.orders.get(order.id)
    assert delivered.status == "delivered"
    assert delivered.deliverables[0].deliverable_media_type == "text"
    assert [m.content for m in buyer.client.orders.list_messages(order.id)] == ["Thanks! Working on it now."]

    # A restarted runner asks the server: nothing is left to do, nothing is done twice.
    restarted = load_example("agent").build_runner(site, registration.api_key, clock=FakeClock())
    assert restarted.poll() == []
    restarted.client.close()

    revised = buyer.client.orders.request_revision(order.id, "Mention the sourdough.")
    assert revised.status == "revision_requested"
    assert [a.action for a in runner.poll()] == ["deliver"]
    again = buyer.client.orders.get(order.id)
    assert again.status == "delivered"
    assert sum(not d.superseded for d in again.deliverables) == 1

    assert buyer.approve(order.id).status == "completed"
    review = buyer.review(order.id, 5, "Exactly right.")
    assert review.rating == 5
    assert runner.poll() == []


def test_the_example_agent_answers_a_workspace_until_its_quota_is_used(site, clients, chains_up, example):
    agent_client, registration, runner = example
    service = agent_client.services.create(
        registration.agent.id,
        title="Three short pieces",
        description="A quota pack: three prompts, each answered with a Markdown piece.",
        category="writing",
        price_type="fixed",
        price_usd="15.00",
        quota_limit=2,
    )
    buyer = solana_buyer(site, clients, chains_up)
    buyer.sign_in()  # a session this time (the first test signs every request)
    order = buyer.hire(service.id, "Short pieces for a bakery's menu board, one per prompt.")
    assert order.status == "quoted"
    opened = buyer.pay(order)
    assert (opened.status, opened.quota_left) == ("in_progress", 2)

    first = buyer.client.orders.generate(order.id, "Sourdough loaf")
    assert [(a.action, a.detail) for a in runner.poll()] == [("answer", first.id)]
    second = buyer.client.orders.generate(order.id, "Cinnamon roll")
    assert [(a.action, a.detail) for a in runner.poll()] == [("answer", second.id)]

    done = buyer.client.orders.get(order.id)
    assert (done.status, done.quota_left) == ("delivered", 0)
    assert [p.status for p in done.prompts] == ["delivered", "delivered"]
    assert buyer.approve(order.id).status == "completed"


def test_an_agent_hires_another_agent_and_pays_on_base_with_its_proof(site, clients, chains_up, registered):
    """The buyer side as an agent: its key orders, its own Base wallet pays, and the payer_signature
    binds the transfer (an agent's payout address is never proof it paid)."""
    seller_client, seller = registered
    service = seller_client.services.create(
        seller.agent.id,
        title="A logo",
        description="One logo, delivered as a link, fixed price.",
        category="design",
        price_type="fixed",
        price_usd="12.00",
    )
    account = evm_helpers.new_wallet(chains_up.evm.url, usdc=50 * USDC)
    hirer = clients(site).agents.register(
        "Hiring Agent", "Hires other agents.", payout_chain="base", payout_address_base=account.address
    )
    buyer = Buyer(clients(site, api_key=hirer.api_key), EvmWallet(account, rpc_url=chains_up.evm.url))

    order = buyer.hire(service.id, "A fox logo for the bakery, flat colours, transparent background.")
    assert (order.buyer_kind, order.payment_chain) == ("agent", "base")
    order, tx = buyer.send_payment(order)
    evm_helpers.mine(chains_up.evm.url, 2)  # Base: final after two confirmations
    paid = buyer.submit_payment(order, tx)
    assert paid.status == "paid", paid.raw

    delivered = seller_client.orders.deliver(order.id, "https://cdn.example.com/fox.png", "link")
    assert delivered.status == "completed"  # an agent buyer: delivery completes and pays out


def test_two_runners_acting_on_the_same_stale_view_deliver_once(site, clients, chains_up, registered):
    """A runner that crashed after delivering, or a second one on the same order, sends the same
    request under the same Idempotency-Key: the server answers it again and delivers nothing new."""
    from atelier_client import Delivery, Handler

    class Linker(Handler):
        def work(self, ctx: Any, order: Any) -> Delivery:
            return Delivery.link(f"https://cdn.example.com/{order.id}.html", "link")

    agent_client, registration = registered
    service = agent_client.services.create(
        registration.agent.id,
        title="A page",
        description="One web page, delivered as a link, fixed price.",
        category="web",
        price_type="fixed",
        price_usd="9.00",
    )
    buyer = solana_buyer(site, clients, chains_up)
    order = buyer.pay(buyer.hire(service.id, "A one-page site for the bakery, warm colours."))
    assert order.status == "paid"
    stale = agent_client.orders.get(order.id)
    first = AgentRunner(clients(site, api_key=registration.api_key), Linker(), clock=FakeClock())
    second = AgentRunner(clients(site, api_key=registration.api_key), Linker(), clock=FakeClock())

    assert [a.action for a in first.process(stale)] == ["start", "deliver"]
    assert [a.action for a in second.process(stale)] == ["start", "deliver"]  # answered from the first

    delivered = buyer.client.orders.get(order.id)
    assert delivered.status == "delivered"
    assert len(delivered.deliverables) == 1
