"""The product's per-request wallet signature: `wallet`, `wallet_sig`, `wallet_sig_ts` over
`atelier:{wallet}:{ts}`, valid for 5 minutes, in the JSON body (writes) or the query string (reads)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from eth_account import Account
from solders.keypair import Keypair

from agents.models import Service
from orders.models import BuyerKind, Order, Status
from payments.models import WalletSession
from tests.conftest import Api, WalletBuyer, make_agent, make_order, make_service

BRIEF = "Draw a fox in a lab coat, flat colours."


def new_wallet(chain: str) -> WalletBuyer:
    if chain == "solana":
        keypair = Keypair()
        return WalletBuyer("solana", str(keypair.pubkey()), keypair, Api(Client()))
    account = Account.create()
    return WalletBuyer("base", account.address, account, Api(Client()))


def signed(wallet: WalletBuyer, *, ts: int | str | None = None, address: str | None = None) -> dict[str, Any]:
    """The three credential fields, signed over `atelier:{address}:{ts}` by `wallet`'s key."""
    address = address or wallet.wallet
    ts = int(time.time()) if ts is None else ts
    return {"wallet": address, "wallet_sig": wallet.sign(f"atelier:{address}:{ts}"), "wallet_sig_ts": str(ts)}


@pytest.fixture
def service(db: None) -> Service:
    return make_service(make_agent().agent, price_type="fixed", price="25.00")


def now_s() -> int:
    return int(time.time())


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- POST /api/orders with the fields in the JSON body ----------------------------------------


@pytest.mark.parametrize("chain", ["solana", "base"])
@pytest.mark.parametrize("clock", [now_s, now_ms], ids=["seconds", "milliseconds"])
def test_signed_body_creates_an_order_owned_by_that_wallet(service, chain, clock):
    wallet = new_wallet(chain)

    response = Api(Client()).post(
        "/api/orders", {"service_id": service.id, "brief": BRIEF, **signed(wallet, ts=clock())}
    )

    assert response.status_code == 201, response.body
    data = response.body["data"]
    assert (data["buyer_wallet"], data["buyer_chain"], data["buyer_kind"]) == (wallet.wallet, chain, "human")
    assert data["viewer_role"] == "buyer"
    order = Order.objects.get(pk=data["id"])
    assert (order.buyer_wallet, order.buyer_chain, order.buyer_kind) == (wallet.wallet, chain, BuyerKind.HUMAN)
    assert order.buyer_agent_id is None
    assert order.payment_chain == chain  # defaults to the wallet's chain
    assert order.status == Status.QUOTED
    assert not WalletSession.objects.exists()  # the per-request form opens no session


def test_a_numeric_ts_in_the_json_body_is_signed_as_its_digits(service):
    wallet = new_wallet("solana")
    credentials = signed(wallet, ts=now_ms())
    credentials["wallet_sig_ts"] = int(credentials["wallet_sig_ts"])

    response = Api(Client()).post("/api/orders", {"service_id": service.id, "brief": BRIEF, **credentials})

    assert response.status_code == 201, response.body
    assert Order.objects.get().buyer_wallet == wallet.wallet


def test_a_lowercase_base_wallet_signs_its_own_spelling_and_the_order_stores_the_checksum(service):
    wallet = new_wallet("base")
    lower = wallet.wallet.lower()

    response = Api(Client()).post(
        "/api/orders", {"service_id": service.id, "brief": BRIEF, **signed(wallet, address=lower)}
    )

    assert response.status_code == 201, response.body
    assert response.body["data"]["buyer_wallet"] == wallet.wallet
    assert Order.objects.get().buyer_wallet == wallet.wallet


# --- GET /api/orders with the fields in the query string --------------------------------------


@pytest.mark.parametrize("chain", ["solana", "base"])
@pytest.mark.parametrize("clock", [now_s, now_ms], ids=["seconds", "milliseconds"])
def test_signed_query_string_lists_that_wallets_orders(db, chain, clock):
    wallet, stranger = new_wallet(chain), new_wallet(chain)
    agent = make_agent()
    mine = make_order(wallet, agent, Status.PENDING_QUOTE)
    make_order(stranger, agent, Status.PENDING_QUOTE)

    response = Api(Client()).get("/api/orders?" + urlencode(signed(wallet, ts=clock())))

    assert response.status_code == 200, response.body
    assert [order["id"] for order in response.body["data"]] == [mine.id]
    assert Order.objects.count() == 2


def test_signed_query_string_combines_with_the_status_filter(db):
    wallet = new_wallet("solana")
    agent = make_agent()
    make_order(wallet, agent, Status.PENDING_QUOTE)
    quoted = make_order(wallet, agent, Status.QUOTED)

    response = Api(Client()).get("/api/orders?" + urlencode({"status": "quoted", **signed(wallet)}))

    assert response.status_code == 200, response.body
    assert [order["id"] for order in response.body["data"]] == [quoted.id]


# --- the 5 minute window ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "offset_seconds",
    [-310, -3600, 310, 3600],  # 10 s past the window each way: whole-second ts and request time never blur it
    ids=["just_over_5_min_old", "an_hour_old", "just_over_5_min_ahead", "an_hour_ahead"],
)
@pytest.mark.parametrize("unit", ["seconds", "milliseconds"])
def test_a_timestamp_outside_5_minutes_is_401_signature_expired(service, offset_seconds, unit):
    wallet = new_wallet("solana")
    ts = now_s() + offset_seconds if unit == "seconds" else now_ms() + offset_seconds * 1000

    created = Api(Client()).post("/api/orders", {"service_id": service.id, "brief": BRIEF, **signed(wallet, ts=ts)})
    listed = Api(Client()).get("/api/orders?" + urlencode(signed(wallet, ts=ts)))

    for response in (created, listed):
        assert response.status_code == 401, response.body
        assert response.body["code"] == "signature_expired"
    assert not Order.objects.exists()


@pytest.mark.parametrize("offset_seconds", [-290, 290], ids=["almost_5_min_old", "almost_5_min_ahead"])
def test_a_timestamp_inside_5_minutes_is_accepted(service, offset_seconds):
    wallet = new_wallet("base")

    response = Api(Client()).post(
        "/api/orders", {"service_id": service.id, "brief": BRIEF, **signed(wallet, ts=now_s() + offset_seconds)}
    )

    assert response.status_code == 201, response.body
    assert Order.objects.get().buyer_wallet == wallet.wallet


def test_a_non_numeric_timestamp_is_401(service):
    wallet = new_wallet("solana")
    credentials = signed(wallet, ts="yesterday")

    response = Api(Client()).post("/api/orders", {"service_id": service.id, "brief": BRIEF, **credentials})

    assert response.status_code == 401
    assert response.body["code"] == "invalid_signature"
    assert not Order.objects.exists()


# --- signatures that do not match ---------------------------------------------------------------


@pytest.mark.parametrize("chain", ["solana", "base"])
def test_claiming_another_wallet_with_a_signature_over_its_message_is_401(service, chain):
    """The attacker signs `atelier:{victim}:{ts}` with its own key and claims to be the victim."""
    attacker, victim = new_wallet(chain), new_wallet(chain)
    credentials = signed(attacker, address=victim.wallet)

    created = Api(Client()).post("/api/orders", {"service_id": service.id, "brief": BRIEF, **credentials})
    listed = Api(Client()).get("/api/orders?" + urlencode(credentials))

    for response in (created, listed):
        assert response.status_code == 401
        assert response.body["code"] == "invalid_signature"
    assert not Order.objects.exists()


@pytest.mark.parametrize("chain", ["solana", "base"])
def test_a_signature_over_another_wallets_message_does_not_authenticate_the_signer(service, chain):
    """The key is right but the message names someone else, so it is not `atelier:{wallet}:{ts}`."""
    wallet, other = new_wallet(chain), new_wallet(chain)
    ts = now_s()
    credentials = {
        "wallet": wallet.wallet,
        "wallet_sig": wallet.sign(f"atelier:{other.wallet}:{ts}"),
        "wallet_sig_ts": str(ts),
    }

    response = Api(Client()).post("/api/orders", {"service_id": service.id, "brief": BRIEF, **credentials})

    assert response.status_code == 401
    assert response.body["code"] == "invalid_signature"
    assert not Order.objects.exists()


def test_a_signature_over_another_timestamp_is_401(service):
    wallet = new_wallet("solana")
    credentials = signed(wallet, ts=now_s())
    credentials["wallet_sig_ts"] = str(int(credentials["wallet_sig_ts"]) - 1)

    response = Api(Client()).post("/api/orders", {"service_id": service.id, "brief": BRIEF, **credentials})

    assert response.status_code == 401
    assert response.body["code"] == "invalid_signature"
    assert not Order.objects.exists()


def test_milliseconds_signed_as_seconds_do_not_match(service):
    """The message is built from the exact ts string sent: re-scaling it breaks the signature."""
    wallet = new_wallet("base")
    seconds = now_s()
    credentials = signed(wallet, ts=seconds)
    credentials["wallet_sig_ts"] = str(seconds * 1000)

    response = Api(Client()).post("/api/orders", {"service_id": service.id, "brief": BRIEF, **credentials})

    assert response.status_code == 401
    assert response.body["code"] == "invalid_signature"
    assert not Order.objects.exists()


@pytest.mark.parametrize("missing", ["wallet", "wallet_sig", "wallet_sig_ts"])
def test_missing_one_of_the_three_fields_is_401(service, missing):
    wallet = new_wallet("solana")
    credentials = signed(wallet)
    del credentials[missing]

    created = Api(Client()).post("/api/orders", {"service_id": service.id, "brief": BRIEF, **credentials})
    listed = Api(Client()).get("/api/orders?" + urlencode(credentials))

    for response in (created, listed):
        assert response.status_code == 401, response.body
        assert response.body["success"] is False
    assert not Order.objects.exists()


def test_a_wallet_without_signature_or_timestamp_is_not_a_credential(service):
    wallet = new_wallet("solana")

    created = Api(Client()).post("/api/orders", {"service_id": service.id, "brief": BRIEF, "wallet": wallet.wallet})
    listed = Api(Client()).get("/api/orders?" + urlencode({"wallet": wallet.wallet}))

    for response in (created, listed):
        assert response.status_code == 401, response.body
        assert response.body["code"] == "authentication_required"
    assert not Order.objects.exists()


@pytest.mark.parametrize("empty", ["wallet", "wallet_sig", "wallet_sig_ts"])
def test_an_empty_field_is_401(service, empty):
    wallet = new_wallet("base")
    credentials = {**signed(wallet), empty: ""}

    response = Api(Client()).post("/api/orders", {"service_id": service.id, "brief": BRIEF, **credentials})

    assert response.status_code == 401
    assert not Order.objects.exists()


def test_an_invalid_wallet_address_is_401_not_500(service):
    ts = now_s()
    credentials = {"wallet": "0xnot-an-address", "wallet_sig": "0x" + "11" * 65, "wallet_sig_ts": str(ts)}

    response = Api(Client()).post("/api/orders", {"service_id": service.id, "brief": BRIEF, **credentials})

    assert response.status_code == 401
    assert response.body["code"] == "invalid_wallet"
    assert not Order.objects.exists()
