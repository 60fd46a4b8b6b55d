"""Solana Pay: the transfer request URL and its QR code, the transaction request endpoint, and
the order paid by what its reference finds on chain, with nobody pasting a signature."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from orders.checkout.solana_pay_watch import solana_pay_check
from orders.models import Order, Status
from payments import checkout
from payments.chains.base import PaymentInstructions
from payments.models import Payment
from tests.conftest import make_order
from tests.orders.test_order_pages import browser_of
from tests.payments import solana_helpers

PRICE_UNITS = 25 * 10**6


def test_the_transfer_request_names_escrow_amount_mint_reference_and_memo() -> None:
    instructions = PaymentInstructions("solana", "Esc1", "Esc1Ata", "Mint1", 6)
    url = checkout.solana_pay_url(instructions, amount=1_500_000, payment_reference="atl-abc", message="Order ord_1")

    parsed = urlsplit(url)
    fields = parse_qs(parsed.query)
    assert (parsed.scheme, parsed.path) == ("solana", "Esc1")
    assert fields == {
        "amount": ["1.5"],
        "spl-token": ["Mint1"],
        "reference": [checkout.reference_key("atl-abc")],
        "label": ["Atelier"],
        "message": ["Order ord_1"],
        "memo": ["atl-abc"],
    }
    assert "%20" in url  # spaces percent-encoded, never "+"


def test_each_order_has_its_own_reference_key() -> None:
    assert checkout.reference_key("atl-a") != checkout.reference_key("atl-b")
    assert checkout.reference_key("atl-a") == checkout.reference_key("atl-a")


def test_amounts_are_plain_decimals() -> None:
    assert [checkout.usdc_amount(n) for n in (25_000_000, 1, 10, 1_234_567)] == [
        "25",
        "0.000001",
        "0.00001",
        "1.234567",
    ]


def test_the_eip681_link_is_an_erc20_transfer_on_the_chain() -> None:
    instructions = PaymentInstructions("base", "0xEscrow", "0xEscrow", "0xUsdc", 6, chain_id=8453)
    assert checkout.eip681_url(instructions, amount=25_000_000) == (
        "ethereum:0xUsdc@8453/transfer?address=0xEscrow&uint256=25000000"
    )


def test_the_qr_code_is_inline_svg() -> None:
    svg = checkout.qr_svg("solana:abc", title="Solana Pay QR code")
    assert svg.startswith("<svg")
    assert "<title>Solana Pay QR code</title>" in svg


@pytest.fixture
def funded(chains_up: Any, buyer: Any) -> Any:
    solana_helpers.fund_wallet(chains_up.solana.url, buyer.wallet, sol=10**9, usdc=100 * 10**6)
    return buyer


def quoted(buyer: Any, agent: Any) -> Order:
    order = make_order(buyer, agent, Status.QUOTED)
    assert order.payment_chain == "solana"
    return order


def test_a_wallet_paying_the_transfer_request_pays_the_order_found_by_its_reference(
    chains_up: Any, reconciled: None, funded: Any, agent: Any
) -> None:
    order = quoted(funded, agent)
    page = browser_of(funded).get(f"/orders/{order.id}/").content.decode()
    assert 'id="solana-pay-link"' in page
    assert "<svg" in page
    instructions = checkout.payment_instructions(order)
    assert instructions is not None

    signature = solana_helpers.pay_transfer_request(
        chains_up.solana.url, funded.secret, str(instructions["solana_pay_url"])
    )

    assert solana_pay_check(order, throttle=False) == "paid"
    order.refresh_from_db()
    assert (order.status, order.escrow_tx_hash) == (Status.PAID, signature)


def test_the_order_page_itself_finds_the_payment(chains_up: Any, reconciled: None, funded: Any, agent: Any) -> None:
    order = quoted(funded, agent)
    instructions = checkout.payment_instructions(order)
    assert instructions is not None
    solana_helpers.pay_transfer_request(chains_up.solana.url, funded.secret, str(instructions["solana_pay_url"]))

    page = browser_of(funded).get(f"/orders/{order.id}/").content.decode()

    assert 'class="status status-paid"' in page or ">paid<" in page
    assert Order.objects.get(pk=order.id).status == Status.PAID


def test_the_transaction_request_endpoint_builds_a_transaction_that_pays_the_order(
    chains_up: Any, reconciled: None, funded: Any, agent: Any
) -> None:
    order = quoted(funded, agent)
    wallet = Client()  # a wallet app: no session, no CSRF token

    label = wallet.get(f"/solana-pay/orders/{order.id}")
    answer = wallet.post(
        f"/solana-pay/orders/{order.id}", json.dumps({"account": funded.wallet}), content_type="application/json"
    )

    assert label.status_code == 200
    assert label.json()["label"] == "Atelier"
    assert label.json()["icon"].endswith(".svg")
    assert answer.status_code == 200, answer.content
    assert answer["Access-Control-Allow-Origin"] == "*"
    signature = solana_helpers.sign_and_send(chains_up.solana.url, funded.secret, answer.json()["transaction"])
    assert solana_pay_check(order, throttle=False) == "paid"
    order.refresh_from_db()
    assert (order.status, order.escrow_tx_hash) == (Status.PAID, signature)
    assert Payment.objects.filter(order=order, tx_hash=signature).exists()


def test_a_transfer_naming_the_reference_with_another_memo_pays_nothing(
    chains_up: Any, reconciled: None, funded: Any, agent: Any
) -> None:
    order = quoted(funded, agent)
    instructions = checkout.payment_instructions(order)
    assert instructions is not None
    forged = str(instructions["solana_pay_url"]).replace(order.payment_reference, "atl-someone-else")
    solana_helpers.pay_transfer_request(chains_up.solana.url, funded.secret, forged)

    assert solana_pay_check(order, throttle=False) == "nothing found"
    assert Order.objects.get(pk=order.id).status == Status.QUOTED


@pytest.mark.parametrize(("body", "status"), [({"account": "not-a-key"}, 400), ({}, 400)])
def test_the_transaction_request_refuses_a_bad_account(
    chains_up: Any, buyer: Any, agent: Any, body: Any, status: int
) -> None:
    order = quoted(buyer, agent)
    answer = Client().post(f"/solana-pay/orders/{order.id}", json.dumps(body), content_type="application/json")
    assert answer.status_code == status
    assert "error" in answer.json()


def test_the_transaction_request_refuses_an_order_that_is_not_payable(chains_up: Any, buyer: Any, agent: Any) -> None:
    order = make_order(buyer, agent, Status.PAID)
    answer = Client().post(
        f"/solana-pay/orders/{order.id}", json.dumps({"account": buyer.wallet}), content_type="application/json"
    )
    assert answer.status_code == 409
    assert Client().post("/solana-pay/orders/ord_nope", "{}", content_type="application/json").status_code == 404
