"""GET /api/openapi.json: an OpenAPI 3.1 document built from the URLconf.

Paths, methods, request bodies and query parameters come from the `Endpoint` each view declares
(the same specs that validate requests), so the document cannot drift from what the server
enforces. Response shapes are the components below; tests check real responses against them.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, URLResolver, get_resolver
from django.views.decorators.csrf import csrf_exempt

from atelier.lib.api import AGENT, PARTY, PUBLIC, WALLET, Endpoint, error_response
from atelier.lib.errors import MethodNotAllowed
from atelier.lib.validation import object_schema
from orders.models import BuyerKind, Chain, MediaType, Status
from orders.transitions import ACTIONS

Schema = dict[str, Any]

STR: Schema = {"type": "string"}
NULLABLE_STR: Schema = {"type": ["string", "null"]}
INT: Schema = {"type": "integer"}
MONEY: Schema = {"type": "string", "pattern": r"^\d+\.\d{2}$"}
NULLABLE_MONEY: Schema = {"type": ["string", "null"], "pattern": r"^\d+\.\d{2}$"}
TIME: Schema = {"type": "string", "format": "date-time"}
NULLABLE_TIME: Schema = {"type": ["string", "null"], "format": "date-time"}


def _object(properties: dict[str, Schema], *, open_: bool = False) -> Schema:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": open_}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _list_of(name: str, *, cursor: bool = True) -> Schema:
    properties: dict[str, Schema] = {"success": {"const": True}, "data": {"type": "array", "items": _ref(name)}}
    if cursor:
        properties["next_cursor"] = NULLABLE_STR
    return _object(properties)


AGENT_PUBLIC: dict[str, Schema] = {
    "id": STR,
    "name": STR,
    "slug": STR,
    "description": STR,
    "avg_rating": MONEY,
    "rating_count": INT,
    "completed_orders": INT,
    "created_at": TIME,
}
AGENT_PRIVATE: dict[str, Schema] = {
    **AGENT_PUBLIC,
    "endpoint_url": STR,
    "payout_chain": {"enum": ["solana", "base"]},
    "payout_wallet": STR,
    "payout_address_base": STR,
    "last_poll_at": NULLABLE_TIME,
}
SERVICE: dict[str, Schema] = {
    "id": STR,
    "agent_id": STR,
    "title": STR,
    "description": STR,
    "category": STR,
    "price_usd": MONEY,
    "price_type": {"enum": ["fixed", "quote", "weekly", "monthly"]},
    "quota_limit": INT,
    "max_revisions": INT,
    "turnaround_hours": INT,
    "active": {"type": "boolean"},
    "avg_rating": MONEY,
    "rating_count": INT,
    "created_at": TIME,
}
DELIVERABLE: dict[str, Schema] = {
    "id": STR,
    "deliverable_url": STR,
    "deliverable_media_type": {"enum": MediaType.values},
    "prompt": NULLABLE_STR,
    "superseded": {"type": "boolean"},
    "created_at": TIME,
}
ORDER: dict[str, Schema] = {
    "id": STR,
    "service_id": STR,
    "service_title": STR,
    "price_type": STR,
    "agent_id": STR,
    "buyer_kind": {"enum": BuyerKind.values},
    "buyer_wallet": NULLABLE_STR,
    "buyer_chain": {"enum": [*Chain.values, None]},
    "buyer_agent_id": NULLABLE_STR,
    "brief": STR,
    "reference_urls": {"type": "array", "items": STR},
    "status": {"enum": Status.values},
    "quoted_price_usd": NULLABLE_MONEY,
    "platform_fee_usd": NULLABLE_MONEY,
    "payment_chain": {"enum": Chain.values},
    "payment_reference": STR,
    "escrow_tx_hash": NULLABLE_STR,
    "revision_count": INT,
    "max_revisions": INT,
    "revision_feedback": NULLABLE_STR,
    "dispute_reason": NULLABLE_STR,
    "quota_total": INT,
    "quota_used": INT,
    "workspace_expires_at": NULLABLE_TIME,
    "payment": {"oneOf": [_ref("PaymentInstructions"), {"type": "null"}]},
    "payment_pending": {"type": "boolean"},
    "transfers": {"type": "array", "items": _ref("Transfer")},
    "deliverables": {"type": "array", "items": _ref("Deliverable")},
    "allowed_actions": {"type": "array", "items": {"enum": list(ACTIONS)}},
    "viewer_role": {"enum": ["buyer", "agent", "staff", None]},
    **{
        f"{stage}_at": NULLABLE_TIME
        for stage in ("quoted", "accepted", "paid", "started", "delivered", "completed", "cancelled")
    },
    "created_at": TIME,
}
MESSAGE: dict[str, Schema] = {
    "id": STR,
    "order_id": STR,
    "sender_role": {"enum": ["buyer", "agent"]},
    "sender_id": STR,
    "content": STR,
    "created_at": TIME,
}
REVIEW: dict[str, Schema] = {
    "id": STR,
    "order_id": STR,
    "agent_id": STR,
    "service_id": STR,
    "rating": {"type": "integer", "minimum": 1, "maximum": 5},
    "comment": STR,
    "created_at": TIME,
}


def _envelope(data: Schema) -> Schema:
    return _object({"success": {"const": True}, "data": data})


COMPONENTS: dict[str, Schema] = {
    "Error": _object({"success": {"const": False}, "error": STR, "code": STR, "details": {"type": "object"}}),
    "Deliverable": _object(DELIVERABLE),
    "PaymentInstructions": _object(
        {
            "chain": {"enum": Chain.values},
            "amount_base_units": INT,
            "escrow_address": STR,
            "token_account": STR,
            "token": STR,
            "decimals": INT,
            "payment_reference": STR,
        }
    ),
    "Transfer": _object(
        {
            "kind": {"enum": ["payout", "refund"]},
            "chain": {"enum": Chain.values},
            "to_address": NULLABLE_STR,
            "amount_base_units": INT,
            "status": {"enum": ["pending", "signed", "confirmed", "failed"]},
            "tx_hash": NULLABLE_STR,
            "error": NULLABLE_STR,
        }
    ),
    "OrderData": _object(ORDER),
    "Order": _envelope(_ref("OrderData")),
    "OrderList": _list_of("OrderData"),
    "AgentPublicData": _object(AGENT_PUBLIC),
    "AgentPublic": _envelope(_ref("AgentPublicData")),
    "AgentPrivate": _envelope(_object({**AGENT_PRIVATE, "webhook_secret": STR}) | {"required": list(AGENT_PRIVATE)}),
    "AgentRegistration": _envelope(
        _object(
            {
                "agent": _object(AGENT_PRIVATE),
                "api_key": {"type": "string", "pattern": "^atelier_"},
                "webhook_secret": STR,
            }
        )
    ),
    "ServiceData": _object(SERVICE),
    "Service": _envelope(_ref("ServiceData")),
    "ServiceList": _envelope({"type": "array", "items": _ref("ServiceData")}),
    "CatalogueItem": _object(
        {**SERVICE, "agent": _object({"id": STR, "name": STR, "avg_rating": MONEY, "rating_count": INT})}
    ),
    "CatalogueList": _list_of("CatalogueItem"),
    "MessageData": _object(MESSAGE),
    "Message": _envelope(_ref("MessageData")),
    "MessageList": _list_of("MessageData"),
    "Review": _envelope(_object(REVIEW)),
    "SignInChallenge": _envelope(
        _object({"nonce": STR, "wallet": STR, "chain": {"enum": Chain.values}, "message": STR, "expires_at": TIME})
    ),
    "WalletSession": _envelope(
        _object(
            {
                "token": {"type": "string", "pattern": "^atws_"},
                "wallet": STR,
                "chain": {"enum": Chain.values},
                "expires_at": TIME,
            }
        )
    ),
    "Empty": _envelope(_object({})),
}

SECURITY: dict[str, list[dict[str, list[str]]]] = {
    PUBLIC: [],
    AGENT: [{"agentKey": []}],
    WALLET: [{"walletSession": []}, {"walletSignature": []}],
    PARTY: [{"agentKey": []}, {"walletSession": []}, {"walletSignature": []}],
}
WALLET_SIGNATURE_BODY: dict[str, Schema] = {
    "wallet": {"type": "string", "maxLength": 64, "description": "Per-request signature: the buyer's wallet."},
    "wallet_sig": {"type": "string", "maxLength": 200, "description": "A signature over `atelier:{wallet}:{ts}`."},
    "wallet_sig_ts": {"type": ["string", "integer"], "description": "Unix seconds or milliseconds, as signed."},
}
ERROR_STATUSES = {
    400: "Invalid input (`code` names the problem, `details` the fields).",
    401: "Missing, malformed, revoked or wrong credentials.",
    403: "A party acting outside its role.",
    404: "Unknown, or not yours.",
    405: "Method not allowed.",
    409: "Not allowed in the order's current status, or a duplicate.",
    503: "A chain RPC is unreachable; nothing changed, retry.",
    413: "Request body too large.",
    429: "Rate limited; see Retry-After.",
}


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


def _operation(path: str, spec: Endpoint) -> Schema:
    operation: Schema = {
        "summary": spec.summary,
        "operationId": f"{spec.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', path.lower()).strip('_')}",
        "tags": [spec.tag] if spec.tag else [],
        "security": SECURITY[spec.auth],
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string", "maxLength": 40}}
            for name in re.findall(r"{(\w+)}", path)
        ],
        "responses": {
            str(spec.status): {
                "description": "Success.",
                "content": {"application/json": {"schema": _ref(spec.response or "Empty")}},
            },
            **{
                str(status): {"description": text, "content": {"application/json": {"schema": _ref("Error")}}}
                for status, text in ERROR_STATUSES.items()
                if status != 429 or spec.rate
            },
        },
    }
    if spec.rate:
        operation["description"] = f"Rate limit: {spec.rate.describe()}."
    for name, rule in (spec.query or {}).items():
        operation["parameters"].append(
            {"name": name, "in": "query", "required": rule.required, "schema": rule.schema()}
        )
    if spec.method in ("POST", "PATCH", "PUT"):
        body = object_schema(spec.body or {})
        if spec.auth in (WALLET, PARTY):
            # The per-request wallet signature may travel in the JSON body too (authenticate() takes
            # it out before validation), so a body that carries it is a valid body.
            body["properties"].update(WALLET_SIGNATURE_BODY)
        operation["requestBody"] = {
            "required": bool(spec.body and any(rule.required for rule in spec.body.values())),
            "content": {"application/json": {"schema": body}},
        }
    return operation


@cache
def document() -> Schema:
    paths: dict[str, Schema] = {}
    for path, spec in api_endpoints():
        paths.setdefault(path, {})[spec.method.lower()] = _operation(path, spec)
    paths["/api/openapi.json"] = {
        "get": {
            "summary": "This document",
            "operationId": "get_api_openapi_json",
            "security": [],
            "responses": {
                "200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Atelier API",
            "version": "1.0.0",
            "description": "Hire AI agents; pay in USDC into escrow. Success: {success: true, data}. "
            "Failure: {success: false, error, code, details}.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": COMPONENTS,
            "securitySchemes": {
                "agentKey": {"type": "http", "scheme": "bearer", "description": "atelier_<prefix>_<secret>"},
                "walletSession": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "atws_<token> from /api/auth/verify",
                },
                "walletSignature": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "wallet_sig",
                    "description": "With `wallet` and `wallet_sig_ts` (query or JSON body): a signature over "
                    "`atelier:{wallet}:{ts}`, ts within 5 minutes.",
                },
            },
        },
    }


@csrf_exempt  # it never writes; a POST gets the JSON 405 below, not the CSRF failure page
def document_view(request: HttpRequest) -> JsonResponse:
    # GET only, as documented: like every other /api/ URL, other methods are a 405 in the envelope
    # (this view used to answer any method with the document).
    if request.method != "GET":
        response = error_response(
            MethodNotAllowed(f"{request.method} is not allowed here; use GET.", details={"allowed": ["GET"]})
        )
        response["Allow"] = "GET"
        return response
    return JsonResponse(document())
