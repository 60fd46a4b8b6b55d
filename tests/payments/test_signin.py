"""Wallet sign-in over HTTP: nonce, exact message, signature, bearer session token, sign-out.

Signatures are made with real keys: solders ed25519 for Solana, eth-account EIP-191 for Base.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.utils import timezone
from eth_account import Account
from eth_account.messages import encode_defunct
from solders.keypair import Keypair

from orders.models import Status
from payments.models import SignInChallenge, WalletSession
from tests.conftest import Api, WalletBuyer, make_agent, make_order

NONCE = "/api/auth/nonce"
VERIFY = "/api/auth/verify"
SIGNOUT = "/api/auth/signout"


def new_wallet(chain: str) -> WalletBuyer:
    """A wallet with its key, not signed in."""
    if chain == "solana":
        keypair = Keypair()
        return WalletBuyer("solana", str(keypair.pubkey()), keypair, Api(Client()))
    account = Account.create()
    return WalletBuyer("base", account.address, account, Api(Client()))


def ask_nonce(wallet: WalletBuyer, address: str | None = None) -> dict[str, Any]:
    response = wallet.api.post(NONCE, {"wallet": address or wallet.wallet, "chain": wallet.chain})
    assert response.status_code == 201, response.body
    return response.body["data"]


def wrong_checksum() -> str:
    """A checksummed address with the case of every letter swapped: mixed case, bad EIP-55."""
    address = Account.create().address
    while address[2:] in (address[2:].lower(), address[2:].upper()):
        address = Account.create().address
    return address[:2] + address[2:].swapcase()


def message_fields(message: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in message.splitlines() if ": " in line)


def sign_in(wallet: WalletBuyer) -> str:
    challenge = ask_nonce(wallet)
    response = wallet.api.post(VERIFY, {"nonce": challenge["nonce"], "signature": wallet.sign(challenge["message"])})
    assert response.status_code == 201, response.body
    return response.body["data"]["token"]


def bearer(token: str) -> Api:
    return Api(Client(), {"Authorization": f"Bearer {token}"})


# --- the challenge ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chain", "chain_id", "account"), [("solana", "devnet", "Solana"), ("base", "84532", "Ethereum")]
)
def test_nonce_message_names_domain_wallet_nonce_chain_and_times(db, settings, chain, chain_id, account):
    # From configuration, not from a local devchain's state file (CHAIN_MODE=rpc reads none).
    settings.CHAIN_MODE = "rpc"
    settings.PUBLIC_URL = "https://atelier.example/"
    settings.BASE_CHAIN_ID = 84532
    settings.SOLANA_CLUSTER = "devnet"
    wallet = new_wallet(chain)
    before = timezone.now().replace(microsecond=0)

    challenge = ask_nonce(wallet)

    message = challenge["message"]
    fields = message_fields(message)
    lines = message.splitlines()
    assert lines[0] == f"atelier.example wants you to sign in with your {account} account:"
    assert lines[1] == wallet.wallet
    assert fields["URI"] == "https://atelier.example"
    assert fields["Chain ID"] == chain_id
    assert fields["Nonce"] == challenge["nonce"]
    assert len(challenge["nonce"]) >= 8
    assert challenge["nonce"].isalnum()
    issued = datetime.strptime(fields["Issued At"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    expires = datetime.strptime(fields["Expiration Time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= issued <= timezone.now()
    assert expires - issued == timedelta(minutes=5)
    assert datetime.fromisoformat(challenge["expires_at"]) == expires

    stored = SignInChallenge.objects.get(pk=challenge["nonce"])
    assert (stored.wallet, stored.chain, stored.message, stored.used_at) == (wallet.wallet, chain, message, None)
    assert stored.expires_at == expires


def test_each_nonce_request_gets_a_fresh_nonce(db):
    wallet = new_wallet("solana")

    first, second = ask_nonce(wallet), ask_nonce(wallet)

    assert first["nonce"] != second["nonce"]
    assert SignInChallenge.objects.filter(wallet=wallet.wallet).count() == 2


def test_lowercase_base_address_is_normalized_to_checksum_in_the_challenge(db):
    wallet = new_wallet("base")
    lower = wallet.wallet.lower()
    assert lower != wallet.wallet  # eth-account addresses are checksummed (mixed case)

    challenge = ask_nonce(wallet, lower)

    assert challenge["wallet"] == wallet.wallet
    assert challenge["message"].splitlines()[1] == wallet.wallet
    assert SignInChallenge.objects.get(pk=challenge["nonce"]).wallet == wallet.wallet


@pytest.mark.parametrize(
    ("chain", "address"),
    [
        ("solana", "not-a-wallet"),
        ("solana", "0x" + "ab" * 20),
        ("base", "0x1234"),
        ("base", "0x" + "0" * 40),
        ("base", "11111111111111111111111111111111"),
    ],
)
def test_nonce_for_an_invalid_address_is_400_naming_wallet(anonymous, chain, address):
    response = anonymous.post(NONCE, {"wallet": address, "chain": chain})

    assert response.status_code == 400, response.body
    assert response.body["success"] is False
    assert "wallet" in response.body["details"]
    assert not SignInChallenge.objects.exists()


def test_base_address_with_a_wrong_checksum_is_refused(anonymous):
    flipped = wrong_checksum()

    response = anonymous.post(NONCE, {"wallet": flipped, "chain": "base"})

    assert response.status_code == 400
    assert "checksum" in response.body["details"]["wallet"]
    assert not SignInChallenge.objects.exists()


# --- completing the sign-in ------------------------------------------------------------------


def _solana_base58(keypair: Keypair, message: str) -> str:
    return str(keypair.sign_message(message.encode()))


def _solana_base64(keypair: Keypair, message: str) -> str:
    return base64.b64encode(bytes(keypair.sign_message(message.encode()))).decode()


def _solana_hex(keypair: Keypair, message: str) -> str:
    return bytes(keypair.sign_message(message.encode())).hex()


def _solana_0x_hex(keypair: Keypair, message: str) -> str:
    return "0x" + bytes(keypair.sign_message(message.encode())).hex()


@pytest.mark.parametrize("encode", [_solana_base58, _solana_base64, _solana_hex, _solana_0x_hex])
def test_solana_signin_accepts_base58_base64_and_hex_signatures(db, encode):
    wallet = new_wallet("solana")
    challenge = ask_nonce(wallet)

    response = wallet.api.post(
        VERIFY, {"nonce": challenge["nonce"], "signature": encode(wallet.secret, challenge["message"])}
    )

    assert response.status_code == 201, response.body
    data = response.body["data"]
    assert (data["wallet"], data["chain"]) == (wallet.wallet, "solana")
    token = data["token"]
    assert token.startswith("atws_")
    session = WalletSession.objects.get()
    assert session.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert (session.wallet, session.chain, session.revoked_at) == (wallet.wallet, "solana", None)
    assert datetime.fromisoformat(data["expires_at"]) == session.expires_at
    assert SignInChallenge.objects.get(pk=challenge["nonce"]).used_at is not None


@pytest.mark.parametrize("address_case", ["checksummed", "lowercase"])
def test_base_signin_with_eip191_signature_opens_a_checksummed_session(db, address_case):
    wallet = new_wallet("base")
    address = wallet.wallet if address_case == "checksummed" else wallet.wallet.lower()
    challenge = ask_nonce(wallet, address)
    signature = Account.sign_message(encode_defunct(text=challenge["message"]), wallet.secret.key).signature.hex()

    response = wallet.api.post(VERIFY, {"nonce": challenge["nonce"], "signature": "0x" + signature.removeprefix("0x")})

    assert response.status_code == 201, response.body
    assert response.body["data"]["wallet"] == wallet.wallet
    session = WalletSession.objects.get()
    assert (session.wallet, session.chain) == (wallet.wallet, "base")
    assert session.token_hash == hashlib.sha256(response.body["data"]["token"].encode()).hexdigest()


def test_the_token_is_never_stored_in_clear(db):
    wallet = new_wallet("solana")

    token = sign_in(wallet)

    stored = WalletSession.objects.values().get()
    assert token not in [str(value) for value in stored.values()]
    assert token.removeprefix("atws_") not in "".join(str(value) for value in stored.values())


@pytest.mark.parametrize("chain", ["solana", "base"])
def test_replaying_a_used_nonce_is_401_invalid_nonce(db, chain):
    wallet = new_wallet(chain)
    challenge = ask_nonce(wallet)
    body = {"nonce": challenge["nonce"], "signature": wallet.sign(challenge["message"])}
    assert wallet.api.post(VERIFY, body).status_code == 201

    replay = wallet.api.post(VERIFY, body)

    assert replay.status_code == 401
    assert replay.body["code"] == "invalid_nonce"
    assert WalletSession.objects.count() == 1


def test_an_expired_nonce_is_401_and_opens_no_session(db):
    wallet = new_wallet("solana")
    challenge = ask_nonce(wallet)
    SignInChallenge.objects.filter(pk=challenge["nonce"]).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = wallet.api.post(VERIFY, {"nonce": challenge["nonce"], "signature": wallet.sign(challenge["message"])})

    assert response.status_code == 401
    assert response.body["code"] == "invalid_nonce"
    assert not WalletSession.objects.exists()


def test_an_unknown_nonce_is_401_invalid_nonce(anonymous):
    response = anonymous.post(VERIFY, {"nonce": "0" * 32, "signature": "1" * 88})

    assert response.status_code == 401
    assert response.body["code"] == "invalid_nonce"
    assert not WalletSession.objects.exists()


@pytest.mark.parametrize("chain", ["solana", "base"])
def test_a_signature_by_another_key_fails_and_still_burns_the_nonce(db, chain):
    wallet, impostor = new_wallet(chain), new_wallet(chain)
    challenge = ask_nonce(wallet)

    forged = wallet.api.post(VERIFY, {"nonce": challenge["nonce"], "signature": impostor.sign(challenge["message"])})

    assert forged.status_code == 401
    assert forged.body["code"] == "invalid_signature"
    assert not WalletSession.objects.exists()
    assert SignInChallenge.objects.get(pk=challenge["nonce"]).used_at is not None
    # The owner's own signature can no longer use that nonce.
    retry = wallet.api.post(VERIFY, {"nonce": challenge["nonce"], "signature": wallet.sign(challenge["message"])})
    assert retry.status_code == 401
    assert retry.body["code"] == "invalid_nonce"
    assert not WalletSession.objects.exists()


@pytest.mark.parametrize("chain", ["solana", "base"])
@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: "evil.example" + m[m.index(" wants you") :],
        lambda m: m.replace("Chain ID: ", "Chain ID: 1", 1),
        lambda m: m + "\nResources:\n- https://evil.example",
    ],
    ids=["domain", "chain_id", "appended"],
)
def test_a_signature_over_a_tampered_message_fails(db, chain, tamper):
    wallet = new_wallet(chain)
    challenge = ask_nonce(wallet)
    tampered = tamper(challenge["message"])
    assert tampered != challenge["message"]

    response = wallet.api.post(VERIFY, {"nonce": challenge["nonce"], "signature": wallet.sign(tampered)})

    assert response.status_code == 401
    assert response.body["code"] == "invalid_signature"
    assert not WalletSession.objects.exists()


@pytest.mark.parametrize("chain", ["solana", "base"])
def test_a_signature_for_another_nonce_of_the_same_wallet_fails(db, chain):
    wallet = new_wallet(chain)
    first, second = ask_nonce(wallet), ask_nonce(wallet)

    response = wallet.api.post(VERIFY, {"nonce": second["nonce"], "signature": wallet.sign(first["message"])})

    assert response.status_code == 401
    assert response.body["code"] == "invalid_signature"
    assert not WalletSession.objects.exists()


@pytest.mark.parametrize(
    ("chain", "signature"),
    [("solana", "not-a-signature"), ("solana", "ab" * 10), ("base", "0xzz"), ("base", "0x" + "00" * 65)],
)
def test_a_malformed_signature_is_401_not_500(db, chain, signature):
    wallet = new_wallet(chain)
    challenge = ask_nonce(wallet)

    response = wallet.api.post(VERIFY, {"nonce": challenge["nonce"], "signature": signature})

    assert response.status_code == 401
    assert response.body["code"] == "invalid_signature"
    assert not WalletSession.objects.exists()


# --- using the session -----------------------------------------------------------------------


@pytest.mark.parametrize("chain", ["solana", "base"])
def test_the_session_token_authenticates_get_orders_as_that_wallet(db, chain):
    wallet = new_wallet(chain)
    token = sign_in(wallet)
    agent = make_agent()
    mine = make_order(wallet, agent, Status.PENDING_QUOTE)
    make_order(new_wallet(chain), agent, Status.PENDING_QUOTE)  # someone else's

    response = bearer(token).get("/api/orders")

    assert response.status_code == 200, response.body
    assert [order["id"] for order in response.body["data"]] == [mine.id]
    assert response.body["data"][0]["buyer_wallet"] == wallet.wallet
    assert response.body["data"][0]["viewer_role"] == "buyer"


def test_signout_revokes_the_token(db):
    wallet = new_wallet("solana")
    token = sign_in(wallet)
    api = bearer(token)
    assert api.get("/api/orders").status_code == 200

    signed_out = api.post(SIGNOUT)

    assert signed_out.status_code == 200, signed_out.body
    assert signed_out.body == {"success": True, "data": {}}
    assert WalletSession.objects.get().revoked_at is not None
    after = api.get("/api/orders")
    assert after.status_code == 401
    assert after.body["code"] == "invalid_session"


def test_signout_of_one_session_leaves_the_others_working(db):
    wallet = new_wallet("base")
    first, second = sign_in(wallet), sign_in(wallet)

    assert bearer(first).post(SIGNOUT).status_code == 200

    assert bearer(first).get("/api/orders").status_code == 401
    assert bearer(second).get("/api/orders").status_code == 200
    assert WalletSession.objects.filter(revoked_at__isnull=True).count() == 1


def test_signout_needs_a_wallet_session(db):
    agent = make_agent()

    assert Api(Client()).post(SIGNOUT).status_code == 401
    response = agent.api.post(SIGNOUT)
    assert response.status_code == 401
    assert response.body["code"] == "wallet_required"


def test_an_expired_session_is_401(db):
    wallet = new_wallet("solana")
    token = sign_in(wallet)
    WalletSession.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = bearer(token).get("/api/orders")

    assert response.status_code == 401
    assert response.body["code"] == "invalid_session"


def test_an_unknown_session_token_is_401(db):
    response = bearer("atws_" + "x" * 43).get("/api/orders")

    assert response.status_code == 401
    assert response.body["code"] == "invalid_session"


# --- concurrency -----------------------------------------------------------------------------


def _complete_with_retries(body: dict[str, str], barrier: threading.Barrier, results: list[Any]) -> None:
    """One client finishing a sign-in.

    SQLite's in-memory test database (shared cache, table locks) answers a write that meets another
    with "database table is locked" at once, where the WAL file database of `make run` would wait; on
    SQLite the client retries, as a real client would after an error. Such a lock can surface after
    the session row was written, so on SQLite a client may see 401 for a sign-in that did open a
    session: the property that must hold there is the database's, at most one session per nonce.
    """
    api = Api(Client())
    barrier.wait(timeout=10)
    try:
        for _attempt in range(50):
            try:
                response = api.post(VERIFY, body)
            except OperationalError as exc:
                if connection.vendor != "sqlite" or "locked" not in str(exc):
                    raise
                time.sleep(0.01)
                continue
            results.append((response.status_code, response.body.get("code")))
            return
        results.append(("locked", None))
    finally:
        connection.close()


def _run(body: dict[str, str], barrier: threading.Barrier, results: list[Any], errors: list[BaseException]) -> None:
    try:
        _complete_with_retries(body, barrier, results)
    except BaseException as exc:
        errors.append(exc)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("chain", ["solana", "base"])
def test_two_requests_racing_for_one_nonce_open_at_most_one_session(chain):
    wallet = new_wallet(chain)
    for _round in range(5):
        challenge = ask_nonce(wallet)
        body = {"nonce": challenge["nonce"], "signature": wallet.sign(challenge["message"])}
        sessions_before = WalletSession.objects.count()
        barrier = threading.Barrier(2)
        results: list[Any] = []
        errors: list[BaseException] = []

        threads = [threading.Thread(target=_run, args=(body, barrier, results, errors)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert not errors, errors
        assert len(results) == 2
        assert set(results) <= {(201, None), (401, "invalid_nonce"), ("locked", None)}
        wins = results.count((201, None))
        opened = WalletSession.objects.count() - sessions_before
        assert wins <= 1
        assert opened <= 1
        assert opened >= wins
        assert SignInChallenge.objects.get(pk=challenge["nonce"]).used_at is not None
        if connection.vendor == "postgresql":
            assert sorted(results) == [(201, None), (401, "invalid_nonce")]
            assert opened == 1
