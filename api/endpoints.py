"""The JSON API's one decorator: rate-limit, parse, authenticate, validate, call, wrap.

It sits below every app (each app's api.py uses it) and imports none but `idempotency`.

    @endpoint("POST", summary="Quote an order", auth=AGENT, body={"price_usd": Money()})
    def order_quote(request: ApiRequest, order_id: str) -> dict: ...

    urlpatterns = [path("orders/<str:order_id>/quote", route(order_quote))]

Views return data (wrapped as `{"success": true, "data": ...}`) or a `Reply`; they raise
`AtelierError`s, which become `{"success": false, "error", "code", "details"}` here and nowhere
else. The `Endpoint` attached to each view is also what the OpenAPI document is built from.

Every endpoint is rate-limited (its `rate`, else `ratelimit.default_rate`: its own bucket per
client IP), and every response of it carries X-RateLimit-Limit, -Remaining and -Reset. Every POST
and PATCH takes an `Idempotency-Key` header (`idempotency.services`): claimed after the caller is
authenticated and the body validated, before the view runs; the answer is stored for replays.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, cast

import orjson
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt
from django.views.defaults import page_not_found
from django.views.defaults import server_error as default_server_error

from idempotency import services as idempotency
from lib import jsonbody, ratelimit
from lib.errors import (
    AtelierError,
    InProgress,
    MethodNotAllowed,
    NotFound,
    PaymentRequired,
    RateLimited,
    Unauthorized,
    ValidationFailed,
)
from lib.principal import WALLET_SIGNATURE_FIELDS, Principal
from lib.validation import Field, Int, Variants, validate

if TYPE_CHECKING:  # for the type only: the apps sit above this module
    from agents.models import Agent

log = logging.getLogger(__name__)

Authenticator = Callable[[HttpRequest, dict[str, Any]], Principal | None]


@cache
def authenticator() -> Authenticator:
    """Who is calling, from the request and its parsed body: `settings.API_AUTHENTICATOR`, like
    Django's AUTHENTICATION_BACKENDS. The endpoints sit below the apps that hold the credentials
    (agents' API keys, payments' wallet sessions), so the project names the function that knows them."""
    found: Authenticator = import_string(settings.API_AUTHENTICATOR)
    return found


# Who may call an endpoint.
PUBLIC = "public"  # anyone; credentials, if sent, are still checked
AGENT = "agent"  # an agent's API key
WALLET = "wallet"  # a signed-in wallet (session token or per-request signature)
PARTY = "party"  # any authenticated caller; the view decides what it may see
PAYABLE = "payable"  # as PARTY, or no credentials at all: the view answers 402 and takes x402 payments


class ApiRequest(HttpRequest):
    """An HttpRequest after `endpoint` has run: who is calling and what they sent, validated."""

    principal: Principal | None
    data: dict[str, Any]
    params: dict[str, Any]


def caller(request: ApiRequest) -> Principal:
    """The authenticated caller (endpoints that are not PUBLIC always have one)."""
    if request.principal is None:
        raise Unauthorized("Authentication required.", code="authentication_required")
    return request.principal


def calling_agent(request: ApiRequest) -> Agent:
    """The calling agent (AGENT endpoints always have one)."""
    agent = caller(request).agent
    if agent is None:
        raise Unauthorized("This endpoint needs an agent API key.", code="agent_key_required")
    return agent


@dataclass(frozen=True)
class Reply:
    data: Any
    status: int = 200
    extra: Mapping[str, Any] = field(default_factory=dict)  # top-level keys beside `data`
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    method: str
    summary: str
    auth: str
    body: Mapping[str, Field] | None = None
    query: Mapping[str, Field] | None = None
    rate: ratelimit.Rate | None = None
    response: str | None = None  # an OpenAPI component name
    status: int = 200
    tag: str = ""
    errors: tuple[int, ...] = ()
    # A multipart/form-data body with these file fields: not parsed as JSON; the view reads request.FILES.
    multipart: tuple[str, ...] = ()
    # A success body that is a file of this media type (the view returns an HttpResponse), not JSON.
    produces: str = ""
    # The view's name: the OpenAPI operationId, which generated clients name their methods after.
    operation_id: str = ""
    # A body whose fields depend on one of them (`body` is then their flat spec).
    variants: Variants | None = None


def error_envelope(exc: AtelierError) -> dict[str, Any]:
    """The one error shape: `{"success": false, "error", "code", "details"}`."""
    return {"success": False, "error": exc.message, "code": exc.code, "details": exc.details}


def error_response(exc: AtelierError) -> JsonResponse:
    body = error_envelope(exc)
    if isinstance(exc, PaymentRequired):  # x402: the payment requirements beside the envelope
        body.update(exc.requirements)
    response = JsonResponse(body, status=exc.status)
    if isinstance(exc, PaymentRequired):
        for name, value in exc.headers.items():
            response[name] = value
    if isinstance(exc, RateLimited):
        exc.apply(response)
    if isinstance(exc, InProgress):
        response["Retry-After"] = str(exc.retry_after)
    return response


QUERY_INT = re.compile(r"-?[0-9]{1,18}")


def _parse_query(request: HttpRequest, spec: Mapping[str, Field]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for name, value in request.GET.items():
        if name in WALLET_SIGNATURE_FIELDS:
            continue  # credentials, read by authenticate()
        rule = spec.get(name)
        if isinstance(rule, Int):
            # Plain ASCII digits only, as the document's integer says: int() also takes " 5", "+5",
            # "1_0" and other scripts' digits. Anything else stays a string, which validate() refuses.
            text = str(value)
            raw[name] = int(text) if QUERY_INT.fullmatch(text) else value
        else:
            raw[name] = value
    return validate(raw, spec)


def endpoint(
    method: str,
    *,
    summary: str,
    auth: str,
    body: Mapping[str, Field] | Variants | None = None,
    query: Mapping[str, Field] | None = None,
    rate: ratelimit.Rate | None = None,
    response: str | None = None,
    status: int = 200,
    tag: str = "",
    errors: tuple[int, ...] = (),
    multipart: tuple[str, ...] = (),
    produces: str = "",
) -> Callable[[Callable[..., Any]], Callable[..., HttpResponse]]:

    def decorate(view: Callable[..., Any]) -> Callable[..., HttpResponse]:
        # No `rate`: the documented default for the method, in the endpoint's own bucket.
        scope = f"{view.__module__.partition('.')[0]}.{view.__name__}"
        fields, variants = _body_spec(body)
        spec = Endpoint(
            method,
            summary,
            auth,
            fields,
            query,
            rate or ratelimit.default_rate(method, scope),
            response,
            status,
            tag,
            errors,
            multipart=multipart,
            produces=produces,
            operation_id=view.__name__,
            variants=variants,
        )
        keyed = method in idempotency.METHODS

        def wrapped(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            usage: ratelimit.Usage | None = None
            claim: idempotency.Claim | None = None
            try:
                if spec.rate:
                    usage = ratelimit.check(request, spec.rate)
                key = idempotency.parse_key(request.headers.get(idempotency.HEADER)) if keyed else None
                data = (
                    jsonbody.request_json(request) if method in ("POST", "PATCH", "PUT") and not spec.multipart else {}
                )
                if not isinstance(data, dict):
                    raise ValidationFailed("The request body must be a JSON object.", code="invalid_body")
                principal = authenticator()(request, data)
                _require(spec.auth, principal)
                if spec.auth == PAYABLE and principal is None and ("wallet" in data or "wallet" in request.GET):
                    _require(PARTY, principal)  # a wallet without its signature: unfinished credentials, not x402
                api_request = cast(ApiRequest, request)
                api_request.principal = principal
                api_request.data = _validated_body(data, spec)
                api_request.params = _parse_query(request, spec.query or {})
                _check_path_ids(kwargs)
                outcome = _claim(request, principal, key, data) if key else None
                if isinstance(outcome, idempotency.Replay):
                    response = outcome.response()
                else:
                    claim = outcome
                    response = _render(view(api_request, **kwargs), spec)
            except AtelierError as exc:
                response = error_response(exc)
            except BaseException:
                if claim is not None:
                    idempotency.release(claim)
                raise
            if claim is not None:
                idempotency.finish(claim, response)
            if usage is not None and response.status_code != 429:  # a tighter limit inside the view said its own
                usage.apply(response)
            return response

        wrapped.__name__ = view.__name__
        wrapped.__doc__ = view.__doc__
        wrapped.endpoint = spec  # type: ignore[attr-defined]
        return wrapped

    return decorate


def _body_spec(body: Mapping[str, Field] | Variants | None) -> tuple[Mapping[str, Field] | None, Variants | None]:
    """The fields `validate` checks, and the variants the body is then held to, if it has them."""
    if isinstance(body, Variants):
        return body.fields(), body
    return body, None


def _validated_body(data: dict[str, Any], spec: Endpoint) -> dict[str, Any]:
    cleaned = validate(data, spec.body or {})
    if spec.variants:
        spec.variants.check(cleaned)
    return cleaned


def _render(result: Any, spec: Endpoint) -> HttpResponse:
    if isinstance(result, HttpResponseBase):  # a file (`produces`): FileResponse streams
        return cast(HttpResponse, result)
    reply = result if isinstance(result, Reply) else Reply(result, status=spec.status)
    body = _dumps({"success": True, "data": reply.data, **reply.extra})
    response = HttpResponse(body, status=reply.status, content_type="application/json")
    for name, value in reply.headers.items():
        response[name] = value
    return response


# orjson for the success bodies (a page of 20 orders: 0.02 ms instead of 0.2); what is not plain
# JSON (times, decimals, lazy strings) goes through Django's own encoder, so it reads as before.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
_django_default = DjangoJSONEncoder().default


def _dumps(body: Any) -> bytes:
    return orjson.dumps(body, default=_django_default, option=_ORJSON_OPTIONS)


def _claim(
    request: HttpRequest, principal: Principal | None, key: str, data: dict[str, Any]
) -> idempotency.Claim | idempotency.Replay:
    """Claim the request's Idempotency-Key, or find the answer to replay. `data` is the body as sent
    less the per-request signature (authenticate() took it out): a retry that signs afresh is the
    same request."""
    return idempotency.claim(
        owner=_idempotency_owner(request, principal),
        method=request.method or "",
        path=request.path,
        key=key,
        fingerprint=idempotency.fingerprint(request, data, ignore_query=WALLET_SIGNATURE_FIELDS),
    )


def _idempotency_owner(request: HttpRequest, principal: Principal | None) -> str:
    """Whose Idempotency-Key this is: the authenticated caller, else the client's address."""
    if principal is not None and principal.agent is not None:
        return f"agent:{principal.agent.id}"
    if principal is not None and principal.wallet:
        return f"wallet:{principal.chain}:{principal.wallet}"
    if principal is not None and principal.staff_user_id is not None:
        return f"staff:{principal.staff_user_id}"
    return f"ip:{ratelimit.client_ip(request)}"


def _check_path_ids(kwargs: Mapping[str, Any]) -> None:
    """An id with a NUL (`/api/orders/x%00`) names nothing, and PostgreSQL refuses NUL in a query."""
    for name, value in kwargs.items():
        if isinstance(value, str) and "\x00" in value:
            kind = name.removesuffix("_id")
            raise NotFound(f"No such {kind}.", code=f"{kind}_not_found")


def _require(auth: str, principal: Principal | None) -> None:
    if auth == PUBLIC or (auth == PAYABLE and principal is None):
        return
    if principal is None:
        raise Unauthorized(
            "Authentication required: send Authorization: Bearer atelier_<key> (agents) "
            "or a wallet session token or signature (buyers).",
            code="authentication_required",
        )
    if auth == AGENT and principal.agent is None:
        raise Unauthorized(
            "This endpoint needs an agent API key (Authorization: Bearer atelier_<key>).", code="agent_key_required"
        )
    if auth == WALLET and not principal.wallet:
        raise Unauthorized("This endpoint needs a signed-in wallet.", code="wallet_required")


def route(*views: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """One URL, several methods: dispatch to the view declared for the request's method."""
    by_method = {view.endpoint.method: view for view in views}  # type: ignore[attr-defined]

    @csrf_exempt
    def dispatch(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        view = by_method.get(request.method or "")
        if view is None:
            allowed = ", ".join(sorted(by_method))
            response = error_response(
                MethodNotAllowed(
                    f"{request.method} is not allowed here; use {allowed}.", details={"allowed": sorted(by_method)}
                )
            )
            response["Allow"] = allowed
            return response
        return view(request, **kwargs)

    dispatch.endpoints = {method: view.endpoint for method, view in by_method.items()}  # type: ignore[attr-defined]
    dispatch.__name__ = "_".join(view.__name__ for view in views)
    return dispatch


@csrf_exempt  # any method: a POST to an unknown path is a 404 in the envelope, not the CSRF page
def unknown_endpoint(request: HttpRequest) -> HttpResponse:
    """The last /api/ URL pattern: Django's handler404 is skipped with DEBUG on (its HTML debug page)."""
    return error_response(NotFound("No such endpoint.", code="unknown_endpoint"))


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: the envelope under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return error_response(NotFound("No such endpoint.", code="unknown_endpoint"))
    return page_not_found(request, exception or Exception())


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"success": False, "error": "Something went wrong on our side.", "code": "server_error", "details": {}},
            status=500,
        )
    return default_server_error(request)


CSRF_EXPIRED = "This page's security token has expired (it was open a long time, or you signed in or out elsewhere)."


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW (pages only: the API takes no cookies): an htmx request gets a notice in the
    page's flash (nothing it swaps is lost, and atelier.js keeps drafts across the reload); a form
    post gets the site's styled 403 page, never Django's bare one."""
    if request.headers.get("HX-Request") == "true":
        body = render_to_string(
            "includes/csrf_flash.html",
            {"message": CSRF_EXPIRED, "reload_url": _same_site(request.headers.get("HX-Current-URL", ""))},
            request,
        )
        return HttpResponse(body, status=403, headers={"HX-Retarget": "#flash", "HX-Reswap": "outerHTML"})
    return render(request, "403.html", {"message": CSRF_EXPIRED}, status=403)


def _same_site(url: str) -> str:
    """The path of the page htmx says it is on (HX-Current-URL is a full URL), never another site."""
    path = "/" + url.split("://", 1)[-1].partition("/")[2] if url else "/"
    return path if not path.startswith("//") else "/"
