"""Who is calling: an agent (API key), a wallet (session token or per-request signature) or staff.

One function, `authenticate`, reads the request once; the API decorator calls it and hands the
views a `Principal`. Bad credentials are a 401 even on public endpoints: a client that sent a key
wants to know it is wrong.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from django.http.request import RawPostDataException

from agents.services import KEY_PREFIX, api_key_authenticate
from identity import signed_requests, wallet_signin
from lib.errors import PayloadTooLarge, Unauthorized
from lib.principal import WALLET_SIGNATURE_FIELDS, Principal

# The v2 per-request signature, bound to the method, path and body (identity.signed_requests).
WALLET_HEADER = "X-Atelier-Wallet"
WALLET_SIGNATURE_HEADER = "X-Atelier-Wallet-Signature"
WALLET_TIMESTAMP_HEADER = "X-Atelier-Wallet-Timestamp"
WALLET_VERSION_HEADER = "X-Atelier-Wallet-Signature-Version"
WALLET_SIGNATURE_HEADERS = (WALLET_HEADER, WALLET_SIGNATURE_HEADER, WALLET_TIMESTAMP_HEADER, WALLET_VERSION_HEADER)
# A URL is logged by proxies and servers and re-sent by browsers: the query string may carry the
# (unbound) signature for reads only.
QUERY_SIGNATURE_METHODS = ("GET", "HEAD")


def authenticate(request: HttpRequest, body: dict[str, Any]) -> Principal | None:
    """Read the credentials of `request`; pops the per-request signature fields from `body`."""
    header = request.headers.get("Authorization", "")
    signature_fields = _signature_fields(request, body)
    signed_headers = {name: request.headers.get(name) for name in WALLET_SIGNATURE_HEADERS}
    if not any(signed_headers.values()):
        signed_headers = {}
    if signature_fields and signed_headers:
        raise Unauthorized(
            "Send one wallet signature: the X-Atelier-Wallet headers or the wallet_sig fields, not both.",
            code="invalid_signature",
        )
    if signature_fields:
        # Checked even when a bearer header is what authenticates: a malformed credential is refused,
        # never silently ignored (the API fuzzer found `"wallet_sig_ts": {}` beside a token got a 200).
        _check_signature_fields(signature_fields)
    if signed_headers:
        _check_signature_headers(signed_headers)
    if header:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("Use Authorization: Bearer <token>.", code="invalid_authorization")
        if token.startswith(KEY_PREFIX):
            return Principal(agent=api_key_authenticate(token))
        if token.startswith(wallet_signin.SESSION_PREFIX):
            identity = wallet_signin.wallet_session_authenticate(token)
            return Principal(wallet=identity.wallet, chain=identity.chain)
        raise Unauthorized(
            "The bearer token is not an Atelier API key or wallet session.", code="invalid_authorization"
        )
    if signature_fields:
        identity = signed_requests.wallet_signature_authenticate(
            wallet=str(signature_fields["wallet"]),
            signature=str(signature_fields["wallet_sig"]),
            timestamp=str(signature_fields["wallet_sig_ts"]),
        )
        return Principal(wallet=identity.wallet, chain=identity.chain)
    if signed_headers:
        identity = signed_requests.wallet_signature_authenticate(
            wallet=str(signed_headers[WALLET_HEADER]),
            signature=str(signed_headers[WALLET_SIGNATURE_HEADER]),
            timestamp=str(signed_headers[WALLET_TIMESTAMP_HEADER]),
            request=signed_requests.SignedRequest(
                method=request.method or "", path=request.get_full_path(), body_sha256=_body_sha256(request)
            ),
        )
        return Principal(wallet=identity.wallet, chain=identity.chain)
    # Staff browsing the API with their admin session; reads only, so no CSRF exposure.
    user = getattr(request, "user", None)
    if request.method == "GET" and user is not None and user.is_authenticated and user.is_staff:
        return Principal(staff_user_id=user.pk)
    return None


def _signature_fields(request: HttpRequest, body: dict[str, Any]) -> dict[str, Any]:
    """The product's three fields, from the JSON body or (GET only) the query string; {} when unused.

    `wallet` alone is not a credential: sign-in's own body has a `wallet` field. The form is in use
    when a signature or timestamp is sent; then all three fields are credentials and leave the body.
    """
    in_query = any(request.GET.get(name) for name in WALLET_SIGNATURE_FIELDS[1:])
    if in_query and request.method not in QUERY_SIGNATURE_METHODS:
        raise Unauthorized(
            "A wallet signature in the query string is accepted for GET only; send it in the JSON body, "
            f"or sign the request with the {WALLET_HEADER} headers.",
            code="signature_in_query",
        )
    if in_query:
        return {name: request.GET.get(name) for name in WALLET_SIGNATURE_FIELDS}
    if any(body.get(name) not in (None, "") for name in WALLET_SIGNATURE_FIELDS[1:]):
        return {name: body.pop(name, None) for name in WALLET_SIGNATURE_FIELDS}
    return {}


def _body_sha256(request: HttpRequest) -> str:
    try:
        raw = request.body
    except RequestDataTooBig:  # a multipart upload over the in-memory limit: agents only anyway
        raise PayloadTooLarge("The request body is too large to sign.") from None
    except RawPostDataException:
        raise Unauthorized("This request's body cannot be signed.", code="invalid_signature") from None
    return hashlib.sha256(raw).hexdigest()


# The documented longest `wallet` and `wallet_sig` (atelier/openapi.py, WALLET_SIGNATURE_BODY).
WALLET_MAX_LENGTH = 64
WALLET_SIG_MAX_LENGTH = 200


def _check_signature_fields(fields: dict[str, Any]) -> None:
    """The per-request signature's three fields, all non-empty strings (`wallet_sig_ts` may be a JSON
    integer; it becomes the string that was signed), no longer than documented."""
    ts = fields["wallet_sig_ts"]
    if isinstance(ts, int) and not isinstance(ts, bool):
        fields["wallet_sig_ts"] = str(ts)
    if not all(isinstance(value, str) and value for value in fields.values()):
        raise Unauthorized("Send wallet, wallet_sig and wallet_sig_ts together.", code="invalid_signature")
    if len(fields["wallet"]) > WALLET_MAX_LENGTH:
        raise Unauthorized(f"wallet is longer than {WALLET_MAX_LENGTH} characters.", code="invalid_wallet")
    if len(fields["wallet_sig"]) > WALLET_SIG_MAX_LENGTH:
        raise Unauthorized(f"wallet_sig is longer than {WALLET_SIG_MAX_LENGTH} characters.", code="invalid_signature")


def _check_signature_headers(headers: dict[str, str | None]) -> None:
    """The v2 headers, all four present, version 2, no longer than documented."""
    if not all(headers.values()):
        raise Unauthorized(
            f"Send {', '.join(WALLET_SIGNATURE_HEADERS)} together.",
            code="invalid_signature",
        )
    if headers[WALLET_VERSION_HEADER] != signed_requests.WALLET_SIGNATURE_V2:
        raise Unauthorized(f"{WALLET_VERSION_HEADER} must be 2.", code="invalid_signature")
    if len(headers[WALLET_HEADER] or "") > WALLET_MAX_LENGTH:
        raise Unauthorized(f"{WALLET_HEADER} is longer than {WALLET_MAX_LENGTH} characters.", code="invalid_wallet")
    if len(headers[WALLET_SIGNATURE_HEADER] or "") > WALLET_SIG_MAX_LENGTH:
        raise Unauthorized(
            f"{WALLET_SIGNATURE_HEADER} is longer than {WALLET_SIG_MAX_LENGTH} characters.", code="invalid_signature"
        )
