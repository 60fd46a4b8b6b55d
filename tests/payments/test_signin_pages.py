"""Browser sign-in: a wallet signs the server's nonce message and the page stores the wallet in the
session; in local chain mode the demo wallet signs in and pays through the devchain."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.test import Client
from solders.keypair import Keypair

from orders.models import Order, Status
from payments.models import SignInChallenge, WalletSession
from tests.conftest import WalletBuyer, make_buyer, make_service


def nonce_for(client: Client, wallet: str, chain: str) -> dict[str, Any]:
    response = client.post(
        "/api/auth/nonce", json.dumps({"wallet": wallet, "chain": chain}), content_type="application/json"
    )
    assert response.status_code == 201, response.content
    data: dict[str, Any] = response.json()["data"]
    return data


@pytest.mark.parametrize("chain", ["solana", "base"])
def test_a_wallet_signs_the_nonce_message_and_the_session_holds_the_wallet(db, chain):
    signer = make_buyer(chain)
    client = Client()
    challenge = nonce_for(client, signer.wallet, chain)

    response = client.post(
        "/signin/wallet",
        {"nonce": challenge["nonce"], "signature": signer.sign(challenge["message"]), "next": "/orders/"},
    )

    assert response.status_code == 302
    assert response["Location"] == "/orders/"
    assert (client.session["buyer_wallet"], client.session["buyer_chain"]) == (signer.wallet, chain)
    assert SignInChallenge.objects.get(nonce=challenge["nonce"]).used_at is not None
    # The page session is the browser's only credential: the bearer token made on the way is revoked.
    assert WalletSession.objects.filter(wallet=signer.wallet, revoked_at__isnull=False).count() == 1


def test_a_hex_or_base64_signature_from_a_browser_wallet_is_accepted(db):
    keypair = Keypair()
    client = Client()
    challenge = nonce_for(client, str(keypair.pubkey()), "solana")
    raw = bytes(keypair.sign_message(challenge["message"].encode()))

    response = client.post("/signin/wallet", {"nonce": challenge["nonce"], "signature": base64.b64encode(raw).decode()})

    assert response.status_code == 302
    assert client.session["buyer_wallet"] == str(keypair.pubkey())


def test_a_signature_by_another_wallet_is_refused_and_burns_the_nonce(db):
    victim, attacker = Keypair(), Keypair()
    client = Client()
    challenge = nonce_for(client, str(victim.pubkey()), "solana")

    response = client.post(
        "/signin/wallet",
        {"nonce": challenge["nonce"], "signature": str(attacker.sign_message(challenge["message"].encode()))},
    )
    again = client.post(
        "/signin/wallet",
        {"nonce": challenge["nonce"], "signature": str(victim.sign_message(challenge["message"].encode()))},
    )

    assert response.status_code == 401
    assert "does not match" in response.content.decode()
    assert again.status_code == 401
    assert "expired or was already used" in again.content.decode()
    assert "buyer_wallet" not in client.session


def test_sign_in_changes_the_session_key_and_sign_out_forgets_the_wallet(buyer: WalletBuyer):
    client = Client()
    client.get("/signin/")
    before = client.cookies.get("sessionid")
    challenge = nonce_for(client, buyer.wallet, "solana")
    client.post("/signin/wallet", {"nonce": challenge["nonce"], "signature": buyer.sign(challenge["message"])})
    after = client.cookies["sessionid"].value

    assert before is None or before.value != after
    assert client.post("/signout").status_code == 302
    assert "buyer_wallet" not in client.session
    assert client.get("/orders/").status_code == 302


def test_next_never_leaves_the_site(buyer: WalletBuyer):
    client = Client()
    challenge = nonce_for(client, buyer.wallet, "solana")

    response = client.post(
        "/signin/wallet",
        {"nonce": challenge["nonce"], "signature": buyer.sign(challenge["message"]), "next": "https://evil.example/"},
    )

    assert response["Location"] == "/orders/"


def test_the_signin_page_has_a_place_for_each_chains_wallets_and_the_demo_wallet_in_local_mode(db, settings):
    settings.CHAIN_MODE = "local"
    body = Client().get("/signin/").content.decode()

    # wallets.js fills each list with the wallets this browser announces (tests/e2e/test_wallets.py).
    assert 'id="solana-wallets" data-wallet-chain="solana"' in body
    assert 'id="base-wallets" data-wallet-chain="base"' in body
    assert "DEMO WALLET" in body


def test_there_is_no_demo_wallet_outside_local_mode(db, settings):
    settings.CHAIN_MODE = "rpc"
    client = Client()

    assert "DEMO WALLET" not in client.get("/signin/").content.decode()
    response = client.post("/signin/demo")
    assert response.status_code == 403
    assert "buyer_wallet" not in client.session


# --- the demo wallet on a devchain --------------------------------------------------------------


@pytest.mark.slow
def test_the_demo_wallet_signs_in_hires_and_pays_on_the_devchain(agent, chains_up, settings):
    settings.CHAIN_MODE = "local"
    service = make_service(agent.agent, price_type="fixed", price="25.00")
    client = Client()

    signin = client.post("/signin/demo", {"next": f"/services/{service.id}/"})
    wallet = client.session["buyer_wallet"]
    client.post(
        f"/services/{service.id}/hire", {"brief": "A fox in a lab coat, flat colours.", "payment_chain": "solana"}
    )
    order = Order.objects.get()
    page = client.get(f"/orders/{order.id}/").content.decode()
    paid = client.post(f"/orders/{order.id}/act", {"action": "pay_demo"})

    assert signin.status_code == 302
    assert signin["Location"] == f"/services/{service.id}/"
    assert order.buyer_wallet == wallet
    assert 'value="pay_demo"' in page
    assert paid.status_code == 302
    order.refresh_from_db()
    assert order.status == Status.PAID
    assert order.payments.get().payer == wallet
    # A second sign-in in the same browser keeps the same demo wallet (funded once).
    client.post("/signin/demo")
    assert client.session["buyer_wallet"] == wallet


def test_the_demo_pay_button_is_refused_for_an_order_of_another_wallet(buyer, agent, settings):
    settings.CHAIN_MODE = "local"
    from tests.conftest import make_order

    order = make_order(buyer, agent, Status.QUOTED)
    client = Client()
    session = client.session
    session["buyer_wallet"], session["buyer_chain"] = buyer.wallet, "solana"
    session["demo_wallet_secret"] = str(Keypair())
    session.save()

    response = client.post(f"/orders/{order.id}/act", {"action": "pay_demo"}, headers={"HX-Request": "true"})

    assert response.status_code == 403
    assert "not placed with the demo wallet" in response.content.decode()
    assert Order.objects.get(pk=order.pk).status == Status.QUOTED
