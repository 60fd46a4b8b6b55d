"""The Solana Pay transaction request endpoint (`solana:<this URL>`), which wallets call from outside
the page: GET gives the label and icon, POST `{"account": <public key>}` gives the transaction that
pays the order from that account (memo, transferChecked into escrow, the order's reference), for the
wallet to sign and send. Whoever holds the link may fetch it; the transfer binds by its memo like
any other.

A refusal is the API's error envelope (`api.endpoints.error_envelope`, whose `error` the page's
checkout script reads) with the sentence again as `message`: Solana Pay 1.1's error handling has a
wallet show a failed request's `{"message": ...}`.
"""

from __future__ import annotations

import base64

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.templatetags.static import static
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from api.endpoints import error_envelope
from lib import jsonbody, ratelimit
from lib.errors import AtelierError, Conflict, RateLimited, ServiceUnavailable, ValidationFailed
from orders.checkout.solana_pay_watch import solana_pay_watch_start
from orders.core.access import no_such_order
from orders.models import PAYABLE, Order
from payments import checkout
from payments.chains import ChainError
from payments.chains.solana import SolanaClient
from payments.ledger import price_base_units


@csrf_exempt  # wallets POST here from outside the page: no session, no CSRF token; nothing private in the answer
@require_http_methods(["GET", "POST", "OPTIONS"])
def solana_pay_request(request: HttpRequest, order_id: str) -> HttpResponse:
    if request.method == "OPTIONS":
        return _cors(HttpResponse(status=204))
    if request.method == "GET":
        icon = request.build_absolute_uri(static("icon.svg"))
        return _cors(JsonResponse({"label": checkout.LABEL, "icon": icon}))
    usage: ratelimit.Usage | None = None
    try:
        # Each POST costs the Solana node a balance read (and a blockhash every couple of seconds).
        usage = ratelimit.check(request, solana_pay_rate())
        order = _payable_order(order_id)
        account = _account(request)
        amount = price_base_units(order)
        raw = _transaction(account, amount, order)
    except AtelierError as exc:
        return _cors(_refusal(exc, usage))
    solana_pay_watch_start(order)
    message = f"Pay {checkout.usdc_amount(amount)} USDC into Atelier escrow for {order.id}"
    response = JsonResponse({"transaction": base64.b64encode(raw).decode(), "message": message})
    if usage is not None:
        usage.apply(response)
    return _cors(response)


def solana_pay_rate() -> ratelimit.Rate:
    """Per client IP (behind TRUSTED_PROXY_COUNT proxies), from settings: SOLANA_PAY_RATE_LIMIT
    requests per SOLANA_PAY_RATE_WINDOW seconds. A buyer's wallet asks once per scan or click."""
    return ratelimit.Rate("solana_pay", settings.SOLANA_PAY_RATE_LIMIT, settings.SOLANA_PAY_RATE_WINDOW)


def _payable_order(order_id: str) -> Order:
    order = Order.objects.filter(pk=order_id).first() if "\x00" not in order_id else None
    if order is None:
        raise no_such_order()
    if order.status not in PAYABLE:
        status = order.get_status_display().lower()
        raise Conflict(f"This order is {status}: nothing to pay.", code="not_payable")
    return order


def _account(request: HttpRequest) -> str:
    body = jsonbody.request_json(request)
    account = body.get("account") if isinstance(body, dict) else None
    if not isinstance(account, str):
        raise ValidationFailed('Send {"account": "<your wallet\'s public key>"}.', code="account_required")
    return account


def _transaction(account: str, amount: int, order: Order) -> bytes:
    try:
        raw, _reference = checkout.transaction_request(
            SolanaClient.from_settings(), account=account, amount=amount, payment_reference=order.payment_reference
        )
    except ValueError:
        raise ValidationFailed(
            "account must be a Solana public key.", code="invalid_wallet", details={"account": "not a public key"}
        ) from None
    except ChainError as exc:
        raise ServiceUnavailable("Solana cannot be reached right now; try again.", code="chain_unavailable") from exc
    return raw


def _refusal(exc: AtelierError, usage: ratelimit.Usage | None) -> HttpResponse:
    response = JsonResponse({**error_envelope(exc), "message": exc.message}, status=exc.status)
    if isinstance(exc, RateLimited):
        exc.apply(response)
    elif usage is not None:
        usage.apply(response)
    return response


def _cors(response: HttpResponse) -> HttpResponse:
    """Solana Pay wallets call from anywhere (web wallets from their own origin)."""
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = "Content-Type"
    response["Access-Control-Expose-Headers"] = "Retry-After"
    return response
