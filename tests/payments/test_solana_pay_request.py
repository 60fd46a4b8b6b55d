"""The public Solana Pay transaction request endpoint, hardened: a per-IP rate limit (429 with
Retry-After), a 400 in the API's error envelope for any malformed body (the checkout script reads
`error`; with the sentence again as `message`, which Solana Pay 1.1 wallets show), a sentence and a code when the payer's USDC or SOL is short, one
getLatestBlockhash for many quick requests, and the `solana:` link on the order page."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.test import Client
from solders.keypair import Keypair

from lib import jsonbody
from orders.models import Order, Status
from payments import checkout
from payments.chains import solana as solana_chain
from payments.chains.solana import SolanaClient
from tests.conftest import make_order
from tests.orders.test_order_pages import browser_of
from tests.payments import solana_helpers
from tests.payments.solana_helpers import receiving_wallet
from tests.payments.test_solana_chain import closed_port_url

USDC = 10**6


def quoted(buyer: Any, agent: Any) -> Order:
    order = make_order(buyer, agent, Status.QUOTED)
    assert order.payment_chain == "solana"
    return order


def post(order: Order, body: Any, client: Client | None = None, **extra: Any) -> Any:
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return (client or Client()).post(f"/solana-pay/orders/{order.id}", raw, content_type="application/json", **extra)


def refused(response: Any, status: int) -> dict[str, Any]:
    """The API's error envelope, and its sentence again as `message` (Solana Pay 1.1 error handling)."""
    assert response.status_code == status, response.content
    assert response["Access-Control-Allow-Origin"] == "*"
    body: dict[str, Any] = response.json()
    assert isinstance(body["error"], str)
    assert body["error"].strip()
    assert set(body) == {"success", "error", "code", "details", "message"}
    assert body["success"] is False
    assert body["message"] == body["error"]
    return {"error": body["error"], "code": body["code"]}


def payer(url: str, *, sol: int = 10**9, usdc: int = 100 * USDC) -> Keypair:
    wallet = Keypair()
    if sol or usdc:
        solana_helpers.fund_wallet(url, wallet.pubkey(), sol=sol, usdc=usdc)
    return wallet


@pytest.fixture
def rpc_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The JSON-RPC methods the app asks the Solana node for, in order."""
    calls: list[str] = []
    original = SolanaClient._rpc

    def counting(self: SolanaClient, method: str, params: list[Any]) -> Any:
        calls.append(method)
        return original(self, method, params)

    monkeypatch.setattr(SolanaClient, "_rpc", counting)
    return calls


# --- rate limit ---------------------------------------------------------------------------------


def test_150_quick_posts_from_one_ip_are_cut_off_with_429_and_retry_after(
    settings: Any, chains_up: Any, buyer: Any, agent: Any, rpc_calls: list[str]
) -> None:
    settings.SOLANA_PAY_RATE_LIMIT = 20
    order = quoted(buyer, agent)
    account = str(payer(chains_up.solana.url).pubkey())

    answers = [post(order, {"account": account}) for _ in range(150)]

    assert [a.status_code for a in answers] == [200] * 20 + [429] * 130
    body = refused(answers[-1], 429)
    assert "Too many requests" in body["error"]
    assert int(answers[-1]["Retry-After"]) >= 1
    assert answers[0]["X-RateLimit-Limit"] == "20"
    # The refused ones cost the node nothing; the admitted ones shared one blockhash.
    assert rpc_calls.count("getLatestBlockhash") == 1
    assert len(rpc_calls) == 21


def test_each_client_behind_the_trusted_proxy_has_its_own_budget(
    settings: Any, chains_up: Any, buyer: Any, agent: Any
) -> None:
    settings.SOLANA_PAY_RATE_LIMIT = 2
    settings.TRUSTED_PROXY_COUNT = 1
    order = quoted(buyer, agent)

    def from_ip(ip: str) -> int:
        return post(order, {}, HTTP_X_FORWARDED_FOR=ip).status_code

    assert [from_ip("198.51.100.7") for _ in range(3)] == [400, 400, 429]
    assert from_ip("198.51.100.8") == 400


def test_a_forged_forwarded_for_does_not_dodge_the_limit_without_a_trusted_proxy(
    settings: Any, chains_up: Any, buyer: Any, agent: Any
) -> None:
    settings.SOLANA_PAY_RATE_LIMIT = 2
    settings.TRUSTED_PROXY_COUNT = 0
    order = quoted(buyer, agent)
    codes = [post(order, {}, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code for n in range(3)]
    assert codes == [400, 400, 429]


def test_the_label_request_is_not_counted(settings: Any, chains_up: Any, buyer: Any, agent: Any) -> None:
    settings.SOLANA_PAY_RATE_LIMIT = 1
    order = quoted(buyer, agent)
    assert all(Client().get(f"/solana-pay/orders/{order.id}").status_code == 200 for _ in range(3))
    assert post(order, {}).status_code == 400


# --- malformed bodies ---------------------------------------------------------------------------

DEEP = jsonbody.MAX_DEPTH + 1


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("", id="empty"),
        pytest.param("account=abc", id="not-json"),
        pytest.param('{"account":', id="truncated"),
        pytest.param("[]", id="array"),
        pytest.param('"abc"', id="string"),
        pytest.param("null", id="null"),
        pytest.param("{}", id="account-missing"),
        pytest.param('{"account": null}', id="account-null"),
        pytest.param('{"account": 5}', id="account-number"),
        pytest.param('{"account": ["x"]}', id="account-list"),
        pytest.param('{"account": {"key": "x"}}', id="account-object"),
        pytest.param("[" * 100_000, id="unclosed-100k-deep"),
        pytest.param('{"account": ' + "[" * 100_000 + "]" * 100_000 + "}", id="account-100k-deep"),
        pytest.param('{"account": ' + "[" * DEEP + "]" * DEEP + "}", id="account-just-past-the-limit"),
        pytest.param(b'{"account": "\xff\xfe"}', id="not-utf8"),
        pytest.param('{"account": "abc"}'.encode("utf-16"), id="utf-16"),
        pytest.param('{"account": "\\ud800"}', id="lone-surrogate"),
    ],
)
def test_a_malformed_body_is_400_with_an_error_sentence(
    chains_up: Any, buyer: Any, agent: Any, raw: str | bytes, rpc_calls: list[str]
) -> None:
    order = quoted(buyer, agent)
    refused(post(order, raw), 400)
    assert rpc_calls == []  # refused before anything reaches the node


def test_an_order_id_with_a_nul_is_no_such_order(chains_up: Any) -> None:
    """PostgreSQL refuses NUL in a query: without the check this was a 500 there."""
    answer = Client().post("/solana-pay/orders/ord_x%00", '{"account": "x"}', content_type="application/json")
    assert refused(answer, 404)["code"] == "order_not_found"


# --- short balances -----------------------------------------------------------------------------


def test_a_wallet_short_of_usdc_is_told_how_much_it_holds_and_owes(
    chains_up: Any, buyer: Any, agent: Any, rpc_calls: list[str]
) -> None:
    order = quoted(buyer, agent)
    wallet = payer(chains_up.solana.url, usdc=3 * USDC)

    body = refused(post(order, {"account": str(wallet.pubkey())}), 400)

    assert body == {"error": "This wallet holds 3.00 USDC; 45.00 USDC is due.", "code": "insufficient_usdc"}
    assert "getLatestBlockhash" not in rpc_calls


def test_a_wallet_without_a_usdc_account_holds_zero(chains_up: Any, buyer: Any, agent: Any) -> None:
    order = quoted(buyer, agent)
    wallet = payer(chains_up.solana.url, usdc=0)
    body = refused(post(order, {"account": str(wallet.pubkey())}), 400)
    assert body == {"error": "This wallet holds 0.00 USDC; 45.00 USDC is due.", "code": "insufficient_usdc"}


def test_a_wallet_without_sol_for_the_fee_is_told_so(chains_up: Any, buyer: Any, agent: Any) -> None:
    order = quoted(buyer, agent)
    wallet = payer(chains_up.solana.url, sol=0, usdc=100 * USDC)
    body = refused(post(order, {"account": str(wallet.pubkey())}), 400)
    assert body == {
        "error": "This wallet holds no SOL for the network fee (about 0.000005 SOL).",
        "code": "insufficient_sol",
    }


def test_a_wallet_that_would_drop_below_the_balance_an_account_keeps_is_told_so(
    chains_up: Any, buyer: Any, agent: Any
) -> None:
    order = quoted(buyer, agent)
    wallet = payer(chains_up.solana.url, sol=solana_chain.RENT_EXEMPT_WALLET_LAMPORTS, usdc=100 * USDC)
    body = refused(post(order, {"account": str(wallet.pubkey())}), 400)
    assert body == {
        "error": "This wallet holds 0.00089088 SOL: too little for the network fee (about 0.000005 SOL) "
        "and the 0.00089088 SOL a Solana account must keep.",
        "code": "insufficient_sol",
    }


def test_the_sol_threshold_is_the_chain_s_own(chains_up: Any) -> None:
    """Built anyway, the transaction of a wallet just under the threshold fails on chain (rent), and
    one at the threshold lands: the refusal says what the wallet would otherwise show raw."""
    client = SolanaClient.from_settings()
    escrow = client.payment_instructions()
    threshold = solana_chain.LAMPORTS_PER_SIGNATURE + solana_chain.RENT_EXEMPT_WALLET_LAMPORTS
    for lamports, lands in ((threshold - 1, False), (threshold, True)):
        account = payer(chains_up.solana.url, sol=lamports, usdc=USDC)
        raw = client.payment_transaction(
            payer=str(account.pubkey()), amount=USDC, memo="atl-threshold", reference=escrow.escrow_address
        )
        signed = base64.b64encode(raw).decode()
        if lands:
            checkout.check_payer(client, account=str(account.pubkey()), amount=USDC)
            solana_helpers.sign_and_send(chains_up.solana.url, account, signed)
        else:
            with pytest.raises(checkout.InsufficientFunds):
                checkout.check_payer(client, account=str(account.pubkey()), amount=USDC)
            with pytest.raises(solana_helpers.RpcFailure):
                solana_helpers.sign_and_send(chains_up.solana.url, account, signed)


# --- the blockhash, reused for a couple of seconds ------------------------------------------------


def test_quick_requests_share_one_blockhash(
    chains_up: Any, buyer: Any, agent: Any, rpc_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1_000_000.0]
    monkeypatch.setattr(solana_chain, "clock", lambda: now[0])
    order = quoted(buyer, agent)
    account = str(payer(chains_up.solana.url).pubkey())

    answers = [post(order, {"account": account}) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert rpc_calls.count("getLatestBlockhash") == 1

    now[0] += solana_chain.BLOCKHASH_REUSE_SECONDS + 0.1
    assert post(order, {"account": account}).status_code == 200
    assert rpc_calls.count("getLatestBlockhash") == 2


def test_a_payout_never_reuses_a_cached_blockhash(chains_up: Any, rpc_calls: list[str]) -> None:
    client = SolanaClient.from_settings()
    client.payment_transaction(payer=str(Keypair().pubkey()), amount=1, memo="m", reference=str(Keypair().pubkey()))
    client.sign_transfer(to=receiving_wallet(chains_up.solana.url), amount=1, memo="m")
    assert rpc_calls.count("getLatestBlockhash") == 2


# --- the link on the order page -----------------------------------------------------------------


def test_the_transaction_request_url_is_solana_and_the_encoded_https_url() -> None:
    url = checkout.transaction_request_url("https://atelier.example/solana-pay/orders/ord_1")
    assert url == "solana:https%3A%2F%2Fatelier.example%2Fsolana-pay%2Forders%2Ford_1"


def test_the_order_page_offers_the_transaction_request_to_phone_wallets(
    settings: Any, chains_up: Any, buyer: Any, agent: Any
) -> None:
    settings.PUBLIC_URL = "https://atelier.example"
    order = quoted(buyer, agent)
    page = browser_of(buyer).get(f"/orders/{order.id}/").content.decode()
    link = f"solana:https%3A%2F%2Fatelier.example%2Fsolana-pay%2Forders%2F{order.id}"
    assert f'id="solana-pay-request-link" href="{link}"' in page
    assert 'id="solana-pay-link"' in page  # the transfer request stays


# --- refusals the wallet's call can meet --------------------------------------------------------


def test_an_account_that_is_not_a_public_key_is_400_naming_the_field(
    chains_up: Any, buyer: Any, agent: Any, rpc_calls: list[str]
) -> None:
    order = quoted(buyer, agent)
    answer = post(order, {"account": "not-a-key"})
    assert refused(answer, 400) == {"error": "account must be a Solana public key.", "code": "invalid_wallet"}
    assert answer.json()["details"] == {"account": "not a public key"}
    assert rpc_calls == []


def test_solana_out_of_reach_is_503_in_the_same_shape(settings: Any, chains_up: Any, buyer: Any, agent: Any) -> None:
    order = quoted(buyer, agent)
    settings.SOLANA_RPC_URL = closed_port_url()
    body = refused(post(order, {"account": str(Keypair().pubkey())}), 503)
    assert body == {"error": "Solana cannot be reached right now; try again.", "code": "chain_unavailable"}
