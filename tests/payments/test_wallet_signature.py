"""The per-request wallet signature.

The product's form: `wallet`, `wallet_sig`, `wallet_sig_ts` over `atelier:{wallet}:{ts}`, in the
JSON body (writes) or the query string (GET only). Ours, bound to the request: the headers
`X-Atelier-Wallet`, `X-Atelier-Wallet-Signature`, `X-Atelier-Wallet-Timestamp` and
`X-Atelier-Wallet-Signature-Version: 2` over `atelier-v2:{wallet}:{ts}:{METHOD}:{path}:{sha256(body)}`.
Both: ts at most 5 minutes old and 30 s ahead, and each signature is accepted once."""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.test import Client
from eth_account import Account
from solders.keypair import Keypair

from agents.models import Service
from identity import signed_requests
from lib.errors import AtelierError
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


# --- the 5 minute window, 30 s of clock skew ahead ----------------------------------------------


@pytest.mark.parametrize(
    "offset_seconds",
    [-310, -3600],  # 10 s past the window: whole-second ts and request time never blur it
    ids=["just_over_5_min_old", "an_hour_old"],
)
@pytest.mark.parametrize("unit", ["seconds", "milliseconds"])
def test_a_timestamp_over_5_minutes_old_is_401_signature_expired(service, offset_seconds, unit):
    wallet = new_wallet("solana")
    ts = now_s() + offset_seconds if unit == "seconds" else now_ms() + offset_seconds * 1000

    created = Api(Client()).post("/api/orders", {"service_id": service.id, "brief": BRIEF, **signed(wallet, ts=ts)})
    listed = Api(Client()).get("/api/orders?" + urlencode(signed(wallet, ts=ts)))

    for response in (created, listed):
        assert response.status_code == 401, response.body
        assert response.body["code"] == "signature_expired"
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    "offset_seconds",
    [40, 290, 310, 3600],  # a signature for later would be a credential kept in reserve
    ids=["40_s_ahead", "almost_5_min_ahead", "just_over_5_min_ahead", "an_hour_ahead"],
)
@pytest.mark.parametrize("unit", ["seconds", "milliseconds"])
def test_a_timestamp_more_than_30_s_ahead_is_401_signature_in_future(service, offset_seconds, unit):
    wallet = new_wallet("solana")
    ts = now_s() + offset_seconds if unit == "seconds" else now_ms() + offset_seconds * 1000

    created = Api(Client()).post("/api/orders", {"service_id": service.id, "brief": BRIEF, **signed(wallet, ts=ts)})
    listed = Api(Client()).get("/api/orders?" + urlencode(signed(wallet, ts=ts)))

    for response in (created, listed):
        assert response.status_code == 401, response.body
        assert response.body["code"] == "signature_in_future"
    assert not Order.objects.exists()


@pytest.mark.parametrize("offset_seconds", [-290, 20], ids=["almost_5_min_old", "20_s_ahead"])
def test_a_timestamp_inside_the_window_is_accepted(service, offset_seconds):
    wallet = new_wallet("base")

    response = Api(Client()).post(
        "/api/orders", {"service_id": service.id, "brief": BRIEF, **signed(wallet, ts=now_s() + offset_seconds)}
    )

    assert response.status_code == 201, response.body
    assert Order.objects.get().buyer_wallet == wallet.wallet


# --- one signature, one request -----------------------------------------------------------------


@pytest.mark.parametrize("chain", ["solana", "base"])
def test_a_replayed_body_signature_is_401_signature_replayed(service, chain):
    wallet = new_wallet(chain)
    body = {"service_id": service.id, "brief": BRIEF, **signed(wallet, ts=now_ms())}

    first = Api(Client()).post("/api/orders", body)
    again = Api(Client()).post("/api/orders", body)

    assert first.status_code == 201, first.body
    assert again.status_code == 401, again.body
    assert again.body["code"] == "signature_replayed"
    assert Order.objects.count() == 1


@pytest.mark.parametrize("chain", ["solana", "base"])
def test_a_replayed_query_signature_is_401_even_on_another_path(db, chain):
    wallet = new_wallet(chain)
    order = make_order(wallet, make_agent(), Status.PENDING_QUOTE)
    query = urlencode(signed(wallet, ts=now_ms()))

    first = Api(Client()).get(f"/api/orders?{query}")
    again = Api(Client()).get(f"/api/orders?{query}")
    elsewhere = Api(Client()).get(f"/api/orders/{order.id}?{query}")

    assert first.status_code == 200, first.body
    for response in (again, elsewhere):
        assert response.status_code == 401, response.body
        assert response.body["code"] == "signature_replayed"


def test_a_signature_used_in_a_query_cannot_then_write_in_a_body(service):
    wallet = new_wallet("solana")
    credentials = signed(wallet, ts=now_ms())

    assert Api(Client()).get("/api/orders?" + urlencode(credentials)).status_code == 200
    created = Api(Client()).post("/api/orders", {"service_id": service.id, "brief": BRIEF, **credentials})

    assert created.status_code == 401, created.body
    assert created.body["code"] == "signature_replayed"
    assert not Order.objects.exists()


def test_the_same_wallet_signs_each_request_afresh_with_milliseconds(service):
    wallet = new_wallet("base")

    responses = [
        Api(Client()).post("/api/orders", {"service_id": service.id, "brief": BRIEF, **signed(wallet, ts=now_ms() + i)})
        for i in range(3)
    ]

    assert [response.status_code for response in responses] == [201, 201, 201]
    assert Order.objects.count() == 3


def test_a_refused_signature_is_not_burned(service):
    """Burning happens only for a signature that verified: a forgery cannot use up a real one."""
    wallet = new_wallet("solana")
    credentials = signed(wallet, ts=now_ms())
    forged = {
        **credentials,
        "wallet_sig": new_wallet("solana").sign(f"atelier:{wallet.wallet}:{credentials['wallet_sig_ts']}"),
    }

    assert Api(Client()).post("/api/orders", {"service_id": service.id, "brief": BRIEF, **forged}).status_code == 401
    created = Api(Client()).post("/api/orders", {"service_id": service.id, "brief": BRIEF, **credentials})

    assert created.status_code == 201, created.body


@pytest.mark.parametrize(("offset_seconds", "at_least"), [(-290, 10), (0, 300), (20, 320)])
def test_a_used_signature_is_remembered_until_its_window_closes(service, monkeypatch, offset_seconds, at_least):
    timeouts: list[int] = []

    class Recording:
        def add(self, key: str, value: Any, timeout: int) -> bool:
            timeouts.append(timeout)
            return bool(cache.add(key, value, timeout))

    monkeypatch.setattr(signed_requests, "cache", Recording())
    credentials = signed(new_wallet("solana"), ts=now_s() + offset_seconds)

    response = Api(Client()).post("/api/orders", {"service_id": service.id, "brief": BRIEF, **credentials})

    assert response.status_code == 201, response.body
    (timeout,) = timeouts
    assert at_least <= timeout <= at_least + 60


def test_without_the_shared_cache_a_signature_is_refused_with_503(service, monkeypatch):
    """A replay check that could not run is no check: fail closed (a session token still works)."""

    class Down:
        def add(self, key: str, value: Any, timeout: int) -> bool:
            raise ConnectionError("cache down")

    monkeypatch.setattr(signed_requests, "cache", Down())
    credentials = signed(new_wallet("base"), ts=now_ms())

    response = Api(Client()).post("/api/orders", {"service_id": service.id, "brief": BRIEF, **credentials})

    assert response.status_code == 503, response.body
    assert response.body["code"] == "signature_check_unavailable"
    assert not Order.objects.exists()


# --- the query string carries a signature for GET only -------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_a_query_string_signature_on_a_write_is_401_signature_in_query(service, method):
    wallet = new_wallet("solana")
    order = make_order(wallet, make_agent(), Status.QUOTED)
    query = urlencode(signed(wallet, ts=now_ms()))
    path, body = {
        "POST": ("/api/orders", {"service_id": service.id, "brief": BRIEF}),
        "PATCH": (f"/api/orders/{order.id}", {"action": "cancel"}),
    }[method]

    response = Api(Client()).call(method, f"{path}?{query}", body)

    assert response.status_code == 401, response.body
    assert response.body["code"] == "signature_in_query"
    order.refresh_from_db()
    assert order.status == Status.QUOTED
    assert Order.objects.count() == 1


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


# --- v2: headers, bound to the method, path and body -------------------------------------------

V2 = {
    "wallet": "X-Atelier-Wallet",
    "signature": "X-Atelier-Wallet-Signature",
    "timestamp": "X-Atelier-Wallet-Timestamp",
    "version": "X-Atelier-Wallet-Signature-Version",
}


def v2_headers(
    wallet: WalletBuyer, method: str, path: str, body: bytes = b"", *, ts: int | None = None
) -> dict[str, str]:
    """The four headers, signed over `atelier-v2:{wallet}:{ts}:{METHOD}:{path}:{sha256hex(body)}`."""
    return wallet.request_headers(method, path, body, ts=ts)


def order_body(service: Service, brief: str = BRIEF) -> str:
    return json.dumps({"service_id": service.id, "brief": brief})


@pytest.mark.parametrize("chain", ["solana", "base"])
def test_v2_headers_create_an_order_and_a_replay_is_401(service, chain):
    wallet = new_wallet(chain)
    body = order_body(service)
    headers = v2_headers(wallet, "POST", "/api/orders", body.encode())

    first = Api(Client()).post("/api/orders", body, **headers)
    again = Api(Client()).post("/api/orders", body, **headers)

    assert first.status_code == 201, first.body
    assert (first.body["data"]["buyer_wallet"], first.body["data"]["buyer_chain"]) == (wallet.wallet, chain)
    assert again.status_code == 401, again.body
    assert again.body["code"] == "signature_replayed"
    assert Order.objects.count() == 1
    assert not WalletSession.objects.exists()


@pytest.mark.parametrize("chain", ["solana", "base"])
def test_v2_signs_the_path_with_its_query(db, chain):
    wallet = new_wallet(chain)
    agent = make_agent()
    make_order(wallet, agent, Status.PENDING_QUOTE)
    quoted = make_order(wallet, agent, Status.QUOTED)

    listed = Api(Client()).get("/api/orders?status=quoted", **v2_headers(wallet, "GET", "/api/orders?status=quoted"))
    widened = Api(Client()).get(
        "/api/orders?status=pending_quote", **v2_headers(wallet, "GET", "/api/orders?status=quoted")
    )

    assert listed.status_code == 200, listed.body
    assert [order["id"] for order in listed.body["data"]] == [quoted.id]
    assert widened.status_code == 401, widened.body
    assert widened.body["code"] == "invalid_signature"


@pytest.mark.parametrize("chain", ["solana", "base"])
def test_a_v2_signature_for_one_request_does_not_authenticate_another(service, chain):
    """Each is a fresh, never used signature: the refusal is the binding, not the replay check."""
    wallet = new_wallet(chain)
    order = make_order(wallet, make_agent(), Status.QUOTED)
    url = f"/api/orders/{order.id}"
    cancel = json.dumps({"action": "cancel"})
    accept = json.dumps({"action": "accept"})

    other_path = Api(Client()).patch(
        "/api/orders/ord_1_elsewhere", cancel, **v2_headers(wallet, "PATCH", url, cancel.encode())
    )
    other_body = Api(Client()).patch(url, cancel, **v2_headers(wallet, "PATCH", url, accept.encode()))
    other_method = Api(Client()).post(
        "/api/orders", order_body(service), **v2_headers(wallet, "PATCH", "/api/orders", order_body(service).encode())
    )
    same_json_other_bytes = Api(Client()).patch(
        url, json.dumps({"action": "cancel"}, indent=1), **v2_headers(wallet, "PATCH", url, cancel.encode())
    )

    for response in (other_path, other_body, other_method, same_json_other_bytes):
        assert response.status_code == 401, response.body
        assert response.body["code"] == "invalid_signature"
    order.refresh_from_db()
    assert order.status == Status.QUOTED
    assert Order.objects.count() == 1

    accepted = Api(Client()).patch(url, accept, **v2_headers(wallet, "PATCH", url, accept.encode()))
    assert accepted.status_code == 200, accepted.body
    assert accepted.body["data"]["status"] == Status.ACCEPTED


def test_the_v1_message_is_not_a_v2_signature(service):
    wallet = new_wallet("solana")
    ts = now_ms()
    headers = {**v2_headers(wallet, "POST", "/api/orders", order_body(service).encode(), ts=ts)}
    headers[V2["signature"]] = wallet.sign(f"atelier:{wallet.wallet}:{ts}")

    response = Api(Client()).post("/api/orders", order_body(service), **headers)

    assert response.status_code == 401, response.body
    assert response.body["code"] == "invalid_signature"
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("offset_seconds", "code"),
    [(-310, "signature_expired"), (60, "signature_in_future")],
    ids=["over_5_min_old", "60_s_ahead"],
)
def test_v2_has_the_same_window(service, offset_seconds, code):
    wallet = new_wallet("base")
    body = order_body(service)
    headers = v2_headers(wallet, "POST", "/api/orders", body.encode(), ts=now_ms() + offset_seconds * 1000)

    response = Api(Client()).post("/api/orders", body, **headers)

    assert response.status_code == 401, response.body
    assert response.body["code"] == code
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({V2["version"]: None}, id="no version"),
        pytest.param({V2["version"]: "1"}, id="version 1"),
        pytest.param({V2["version"]: "3"}, id="version 3"),
        pytest.param({V2["signature"]: None}, id="no signature"),
        pytest.param({V2["timestamp"]: None}, id="no timestamp"),
        pytest.param({V2["timestamp"]: "soon"}, id="timestamp not a number"),
        pytest.param({V2["wallet"]: None}, id="no wallet"),
        pytest.param({V2["wallet"]: "w" * 65}, id="wallet over 64"),
        pytest.param({V2["signature"]: "s" * 201}, id="signature over 200"),
    ],
)
def test_incomplete_or_malformed_v2_headers_are_401(service, change):
    wallet = new_wallet("solana")
    body = order_body(service)
    headers = {**v2_headers(wallet, "POST", "/api/orders", body.encode()), **change}
    headers = {name: value for name, value in headers.items() if value is not None}

    response = Api(Client()).post("/api/orders", body, **headers)

    assert response.status_code == 401, response.body
    assert response.body["code"] in ("invalid_signature", "invalid_wallet")
    assert not Order.objects.exists()


def test_v2_headers_and_body_fields_together_are_401(service):
    wallet = new_wallet("solana")
    body = json.dumps({"service_id": service.id, "brief": BRIEF, **signed(wallet, ts=now_ms())})

    response = Api(Client()).post("/api/orders", body, **v2_headers(wallet, "POST", "/api/orders", body.encode()))

    assert response.status_code == 401, response.body
    assert response.body["code"] == "invalid_signature"
    assert not Order.objects.exists()


def test_the_example_buyer_script_signs_each_call_with_v2(service, monkeypatch):
    """examples/solana_buyer.py's `api()`, with its HTTP sent to the test client instead."""
    spec = importlib.util.spec_from_file_location("solana_buyer", Path(settings.BASE_DIR) / "examples/solana_buyer.py")
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    client = Client()

    def request(method: str, url: str, *, data: bytes, headers: dict[str, str], timeout: float) -> Any:
        content_type = headers.pop("Content-Type", "application/octet-stream")
        response = client.generic(method, url.removeprefix(example.ATELIER), data, content_type, headers=headers)
        return SimpleNamespace(status_code=response.status_code, json=response.json)

    monkeypatch.setattr(example.requests, "request", request)
    keypair = Keypair()

    order = example.api("POST", "/api/orders", keypair, {"service_id": service.id, "brief": BRIEF})
    shown = example.api("GET", f"/api/orders/{order['id']}", keypair)
    listed = example.api("GET", "/api/orders?status=quoted", keypair)

    assert (order["buyer_wallet"], shown["id"], [o["id"] for o in listed]) == (
        str(keypair.pubkey()),
        order["id"],
        [order["id"]],
    )


# --- racing replays ---------------------------------------------------------------------------


def _authenticate_once(credentials: dict[str, Any], barrier: threading.Barrier, results: list[str]) -> None:
    try:
        barrier.wait(timeout=10)
        signed_requests.wallet_signature_authenticate(
            wallet=credentials["wallet"], signature=credentials["wallet_sig"], timestamp=credentials["wallet_sig_ts"]
        )
        results.append("ok")
    except AtelierError as exc:  # Unauthorized, or 503 if SQLite stays locked
        results.append(exc.code)
    finally:
        connection.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("chain", ["solana", "base"])
def test_two_requests_racing_with_one_signature_authenticate_at_most_once(chain):
    """The shared cache's add() decides; on PostgreSQL exactly one wins (SQLite may lock both out)."""
    wallet = new_wallet(chain)
    for _round in range(5):
        credentials = signed(wallet, ts=now_ms())
        barrier = threading.Barrier(2)
        results: list[str] = []

        threads = [threading.Thread(target=_authenticate_once, args=(credentials, barrier, results)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert len(results) == 2
        assert results.count("ok") <= 1
        assert set(results) <= {"ok", "signature_replayed", "signature_check_unavailable"}
        if connection.vendor == "postgresql":
            assert sorted(results) == ["ok", "signature_replayed"]
