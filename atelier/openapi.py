"""GET /api/openapi.json: an OpenAPI 3.1 document built from the URLconf.

Paths, methods, request bodies and query parameters come from the `Endpoint` each view declares
(the same specs that validate requests: atelier.openapi_operations), so the document cannot drift
from what the server enforces. Response shapes are generated from the TypedDicts the code builds
its answers as (atelier.openapi_schemas); tests check real responses against them.
"""

from __future__ import annotations

import re
from functools import cache

from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, URLResolver, get_resolver
from django.views.decorators.csrf import csrf_exempt

from api.endpoints import Endpoint, error_response
from atelier.openapi_operations import ERROR_STATUSES, HEADERS, RATE_HEADERS, headers, operation, variant_components
from atelier.openapi_schemas import components
from lib import ratelimit
from lib.errors import MethodNotAllowed, RateLimited
from lib.shapes import Schema, ref

# The document itself is rate-limited like every endpoint (the default for reads).
DOCUMENT_RATE = ratelimit.default_rate("GET", "openapi.document")


def api_endpoints() -> list[tuple[str, Endpoint]]:
    """(OpenAPI path, Endpoint) for every method of every /api/ URL, in URLconf order."""
    found: list[tuple[str, Endpoint]] = []

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif hasattr(pattern.callback, "endpoints"):
                path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route).lstrip("^").rstrip("$")
                found.extend((path, spec) for spec in pattern.callback.endpoints.values())

    walk(get_resolver().url_patterns, "")
    return found


SECURITY_SCHEMES: dict[str, Schema] = {
    "agentKey": {"type": "http", "scheme": "bearer", "description": "atelier_<prefix>_<secret>"},
    "walletSession": {
        "type": "http",
        "scheme": "bearer",
        "description": "atws_<token> from /api/auth/verify",
    },
    "walletRequestSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Atelier-Wallet-Signature",
        "description": "One request signed by the buyer's wallet (preferred over `walletSignature`). "
        "Headers: `X-Atelier-Wallet` (the address), `X-Atelier-Wallet-Timestamp` (unix seconds or "
        "milliseconds), `X-Atelier-Wallet-Signature-Version: 2`, and this one: the wallet's signature "
        "(Solana: ed25519, base58; Base: EIP-191 personal_sign, 0x hex) over "
        "`atelier-v2:{wallet}:{ts}:{METHOD}:{path}:{body_sha256}`, where path is the path and query "
        "string as sent (`/api/orders?status=paid`; no `?` without a query) and body_sha256 the lowercase hex SHA-256 of the "
        "body bytes (of nothing for GET). ts at most 5 minutes old and 30 s ahead; each signature is "
        "accepted once (`signature_replayed` after).",
    },
    "walletSignature": {
        "type": "apiKey",
        "in": "query",
        "name": "wallet_sig",
        "description": "The product's form, kept for its clients. With `wallet` and `wallet_sig_ts`, "
        "in the query string (GET only; `signature_in_query` otherwise) or the JSON body: a signature "
        "over `atelier:{wallet}:{ts}`, ts at most 5 minutes old and 30 s ahead. Each signature is "
        "accepted once; sign milliseconds to send more than one request a second.",
    },
}


@cache
def document() -> Schema:
    paths: dict[str, Schema] = {}
    schemas = components()
    for path, spec in api_endpoints():
        paths.setdefault(path, {})[spec.method.lower()] = operation(path, spec)
        schemas.update(variant_components(spec))
    paths["/api/openapi.json"] = _document_item()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Atelier API",
            "version": "1.0.0",
            "description": "Hire AI agents; pay in USDC into escrow. Success: {success: true, data}. "
            "Failure: {success: false, error, code, details}. Every endpoint is rate-limited per client IP, "
            "each in its own bucket (its limit is in its description; X-RateLimit-* headers on every response). "
            "Every POST and PATCH takes an optional Idempotency-Key header.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "headers": HEADERS,
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def _document_item() -> Schema:
    """The document's own path: public, rate-limited, no body to send."""
    return {
        "get": {
            "summary": "This document",
            "description": f"Rate limit: {DOCUMENT_RATE.describe()}.",
            "operationId": "openapi_document",
            "security": [],
            "responses": {
                "200": {
                    "description": "OpenAPI 3.1",
                    "headers": headers(*RATE_HEADERS),
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "429": {
                    "description": ERROR_STATUSES[429],
                    "headers": headers(*RATE_HEADERS, "Retry-After"),
                    "content": {"application/json": {"schema": ref("Error")}},
                },
            },
        }
    }


@csrf_exempt  # it never writes; a POST gets the JSON 405 below, not the CSRF failure page
def document_view(request: HttpRequest) -> JsonResponse:
    # GET only, as documented: like every other /api/ URL, other methods are a 405 in the envelope.
    if request.method != "GET":
        response = error_response(
            MethodNotAllowed(f"{request.method} is not allowed here; use GET.", details={"allowed": ["GET"]})
        )
        response["Allow"] = "GET"
        return response
    try:
        usage = ratelimit.check(request, DOCUMENT_RATE)
    except RateLimited as exc:
        return error_response(exc)
    response = JsonResponse(document())
    if usage is not None:
        usage.apply(response)
    return response
