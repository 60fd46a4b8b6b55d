"""Bad wallet sign-ins (POST /api/auth/nonce and /api/auth/verify, identity.api): each refused with its
status and code, and nothing changed but the nonce a wrong signature burns. Their bad fields:
tests/lib/test_bad_input_fields.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from eth_account import Account
from solders.keypair import Keypair

from identity.wallet_signin import signin_challenge_create
from payments.models import SignInChallenge, WalletSession
from tests.bad_input_support import refused
from tests.conftest import Api

# --- wallet sign-in ------------------------------------------------------------------------------


@pytest.mark.parametrize("chain", ["solana", "base"])
def test_sign_in_with_a_wrong_signature_is_401_and_burns_the_nonce(chain):
    wallet = str(Keypair().pubkey()) if chain == "solana" else Account.create().address
    api = Api(Client())
    challenge = api.post("/api/auth/nonce", {"wallet": wallet, "chain": chain})
    assert challenge.status_code == 201, challenge.body
    nonce, message = challenge.body["data"]["nonce"], challenge.body["data"]["message"]
    if chain == "solana":
        signature = str(Keypair().sign_message(message.encode()))  # a stranger's key
    else:
        from eth_account.messages import encode_defunct

        stranger = Account.create()
        signature = "0x" + Account.sign_message(encode_defunct(text=message), stranger.key).signature.hex()
    refused(lambda: api.post("/api/auth/verify", {"nonce": nonce, "signature": signature}), 401, "invalid_signature")
    assert SignInChallenge.objects.get(nonce=nonce).used_at is not None  # burned: no second guess
    assert not WalletSession.objects.filter(wallet=wallet).exists()


@pytest.mark.parametrize("signature", ["not-a-signature", "0x" + "ab" * 65, "1" * 88, "=" * 88])
def test_sign_in_with_a_malformed_signature_is_401(signature):
    challenge = signin_challenge_create(chain="solana", wallet=str(Keypair().pubkey()))
    body = {"nonce": challenge.nonce, "signature": signature}
    refused(lambda: Api(Client()).post("/api/auth/verify", body), 401, "invalid_signature")


def test_a_replayed_nonce_is_401(buyer):
    keypair = Keypair()
    api = Api(Client())
    challenge = api.post("/api/auth/nonce", {"wallet": str(keypair.pubkey()), "chain": "solana"}).body["data"]
    body = {"nonce": challenge["nonce"], "signature": str(keypair.sign_message(challenge["message"].encode()))}
    first = api.post("/api/auth/verify", body)
    assert first.status_code == 201, first.body
    refused(lambda: api.post("/api/auth/verify", body), 401, "invalid_nonce")
    refused(lambda: Api(Client()).post("/api/auth/verify", body), 401, "invalid_nonce")


def test_an_unknown_or_expired_nonce_is_401():
    keypair = Keypair()
    challenge = signin_challenge_create(chain="solana", wallet=str(keypair.pubkey()))
    signature = str(keypair.sign_message(challenge.message.encode()))
    unknown = {"nonce": "f" * 32, "signature": signature}
    refused(lambda: Api(Client()).post("/api/auth/verify", unknown), 401, "invalid_nonce")
    SignInChallenge.objects.filter(pk=challenge.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = {"nonce": challenge.nonce, "signature": signature}
    refused(lambda: Api(Client()).post("/api/auth/verify", expired), 401, "invalid_nonce")
