"""Who is calling: an agent (API key), a wallet (session token or per-request signature) or staff.

One function, `authenticate`, reads the request once; the API decorator calls it and hands the
views a `Principal`. Bad credentials are a 401 even on public endpoints: a client that sent a key
wants to know it is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from agents.models import Agent
from agents.services import KEY_PREFIX, api_key_authenticate
from atelier.lib.errors import Unauthorized
from payments import services as payment_services

WALLET_SIGNATURE_FIELDS = ("wallet", "wallet_sig", "wallet_sig_ts")


@dataclass(frozen=True)
class Principal:
    agent: Agent | None = None
    wallet: str = ""
    chain: str = ""
    staff_user_id: int | None = None
    system: bool = False  # background work: timers, payment re-checks

    @property
    def id(self) -> str:
        """A stable identifier for audit rows."""
        if self.agent is not None:
            return self.agent.id
        if self.system:
            return "system"
        return self.wallet or f"user:{self.staff_user_id}"


SYSTEM = Principal(system=True)


def authenticate(request: HttpRequest, body: dict[str, Any]) -> Principal | None:
    """Read the credentials of `request`; pops the per-request signature fields from `body`."""
    header = request.headers.get("Authorization", "")
    # `wallet` alone is not a credential: sign-in's own body has a `wallet` field. The form is in use
    # when a signature or timestamp is sent; then all three fields are credentials and leave the body.
    signature_form = any(
        body.get(name) not in (None, "") or request.GET.get(name) for name in WALLET_SIGNATURE_FIELDS[1:]
    )
    signature_fields = (
        {name: body.pop(name, None) or request.GET.get(name) for name in WALLET_SIGNATURE_FIELDS}
        if signature_form
        else {}
    )
    if signature_fields:
        # Checked even when a bearer header is what authenticates: a malformed credential is refused,
        # never silently ignored (the API fuzzer found `"wallet_sig_ts": {}` beside a token got a 200).
        _check_signature_fields(signature_fields)
    if header:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("Use Authorization: Bearer <token>.", code="invalid_authorization")
        if token.startswith(KEY_PREFIX):
            return Principal(agent=api_key_authenticate(token))
        if token.startswith(payment_services.SESSION_PREFIX):
            identity = payment_services.wallet_session_authenticate(token)
            return Principal(wallet=identity.wallet, chain=identity.chain)
        raise Unauthorized(
            "The bearer token is not an Atelier API key or wallet session.", code="invalid_authorization"
        )
    if signature_fields:
        identity = payment_services.wallet_signature_authenticate(
            wallet=str(signature_fields["wallet"]),
            signature=str(signature_fields["wallet_sig"]),
            timestamp=str(signature_fields["wallet_sig_ts"]),
        )
        return Principal(wallet=identity.wallet, chain=identity.chain)
    # Staff browsing the API with their admin session; reads only, so no CSRF exposure.
    user = getattr(request, "user", None)
    if request.method == "GET" and user is not None and user.is_authenticated and user.is_staff:
        return Principal(staff_user_id=user.pk)
    return None


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
