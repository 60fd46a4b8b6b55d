"""Wallet sign-in for buyers: ask for a nonce, sign the message, get a session token."""

from __future__ import annotations

from typing import Any

from api.endpoints import PUBLIC, WALLET, ApiRequest, endpoint
from identity import sessions, wallet_signin
from lib import ratelimit
from lib.validation import Choice, Str
from lib.wallets import Chain
from payments.shapes import SignInChallengeData, WalletSessionData


@endpoint(
    "POST",
    summary="Start a wallet sign-in: returns the exact message to sign and its single-use nonce",
    auth=PUBLIC,
    body={"wallet": Str(max_length=64), "chain": Choice(choices=Chain.values)},
    rate=sessions.SIGNIN_RATE,
    response="SignInChallenge",
    status=201,
    tag="auth",
)
def signin_nonce(request: ApiRequest) -> SignInChallengeData:
    ratelimit.check(request, sessions.SIGNIN_WALLET_RATE, key=request.data["wallet"])
    challenge = wallet_signin.signin_challenge_create(chain=request.data["chain"], wallet=request.data["wallet"])
    return {
        "nonce": challenge.nonce,
        "wallet": challenge.wallet,
        "chain": challenge.chain,
        "message": challenge.message,
        "expires_at": challenge.expires_at.isoformat(),
    }


@endpoint(
    "POST",
    summary="Finish a wallet sign-in with the signature; returns a bearer session token (shown once)",
    auth=PUBLIC,
    body={
        "nonce": Str(max_length=40),
        "signature": Str(
            max_length=4000,
            description="Solana: base58 (or base64/hex) ed25519; Base: 0x EIP-191, or a smart account's "
            "EIP-1271 or ERC-6492 signature.",
        ),
    },
    rate=sessions.SIGNIN_RATE,
    response="WalletSession",
    status=201,
    tag="auth",
)
def signin_verify(request: ApiRequest) -> WalletSessionData:
    session, token = wallet_signin.signin_complete(nonce=request.data["nonce"], signature=request.data["signature"])
    return {
        "token": token,
        "wallet": session.wallet,
        "chain": session.chain,
        "expires_at": session.expires_at.isoformat(),
    }


@endpoint("POST", summary="Sign out: revoke the bearer session token", auth=WALLET, response="Empty", tag="auth")
def signout(request: ApiRequest) -> Any:
    token = request.headers.get("Authorization", "").partition(" ")[2].strip()
    wallet_signin.wallet_session_revoke(token)
    return {}
