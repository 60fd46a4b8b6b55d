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

from agents.models import PriceType
from api.endpoints import AGENT, PARTY, PAYABLE, PUBLIC, WALLET, Endpoint, error_response
from lib import ratelimit
from lib.errors import MethodNotAllowed, RateLimited
from lib.validation import object_schema
from lib.wallets import Chain
from orders.core.transitions import ACTIONS
from orders.models import BuyerKind, MediaType, Status, WorkspaceKind
from payments.models import UnappliedReason

Schema = dict[str, Any]

STR: Schema = {"type": "string"}
NULLABLE_STR: Schema = {"type": ["string", "null"]}
INT: Schema = {"type": "integer"}
MONEY: Schema = {"type": "string", "pattern": r"^\d+\.\d{2}$"}
NULLABLE_MONEY: Schema = {"type": ["string", "null"], "pattern": r"^\d+\.\d{2}$"}
# The fee is exact to the USDC base unit (six places): 10% of $100.05 is $10.005.
NULLABLE_FEE: Schema = {"type": ["string", "null"], "pattern": r"^\d+\.\d{2,6}$"}
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
    # The watermark gate (orders.deliverables.gate): a gated viewer gets the preview here, or null.
    "deliverable_url": NULLABLE_STR,
    "deliverable_media_type": {"enum": MediaType.values},
    "prompt": NULLABLE_STR,
    "superseded": {"type": "boolean"},
    "created_at": TIME,
    "gated": {"type": "boolean"},
    "original_url": NULLABLE_STR,
    "preview_url": NULLABLE_STR,
    "fetch_status": {"enum": ["pending", "ready", "failed", None]},
    "fetch_error": NULLABLE_STR,
}
UPLOAD: dict[str, Schema] = {
    "id": {"type": "string", "pattern": "^upl_"},
    "url": {"type": "string", "pattern": "^atelier://upload/upl_"},
    "filename": STR,
    "content_type": STR,
    "media_type": {"enum": MediaType.values},
    "size": INT,
    "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    "created_at": TIME,
}
FILE_BODY: Schema = {"type": "string", "contentMediaType": "application/octet-stream"}
ORDER: dict[str, Schema] = {
    "id": STR,
    "service_id": STR,
    "service_title": STR,
    # The terms as bought: copied from the service when quoted; a later edit of the service never changes them.
    "price_type": {"enum": PriceType.values},
    "agent_id": STR,
    "buyer_kind": {"enum": BuyerKind.values},
    "buyer_wallet": NULLABLE_STR,
    "buyer_chain": {"enum": [*Chain.values, None]},
    "buyer_agent_id": NULLABLE_STR,
    "brief": STR,
    "reference_urls": {"type": "array", "items": STR},
    "status": {"enum": Status.values},
    "quoted_price_usd": NULLABLE_MONEY,
    "platform_fee_usd": NULLABLE_FEE,
    "payment_chain": {"enum": Chain.values},
    "payment_reference": STR,
    "escrow_tx_hash": NULLABLE_STR,
    "revision_count": INT,
    "max_revisions": INT,
    "turnaround_hours": INT,
    "due_at": {
        **NULLABLE_TIME,
        "description": "When the agent's turnaround runs out: turnaround_hours after payment, or after the "
        "latest revision request. null before payment and for workspaces (their window closes them).",
    },
    "overdue": {
        "type": "boolean",
        "description": "due_at has passed and no delivery is waiting for the buyer (paid, in_progress or "
        "revision_requested): the buyer may dispute, or cancel for a full refund while still paid.",
    },
    "revision_feedback": NULLABLE_STR,
    "dispute_reason": NULLABLE_STR,
    "resolution": {
        "oneOf": [_ref("Resolution"), {"type": "null"}],
        "description": "Staff's decision on the dispute, with their note; null when the order was never "
        "disputed, is waiting for a decision, or was disputed again since.",
    },
    "quota_total": INT,
    "quota_used": INT,
    "workspace_expires_at": NULLABLE_TIME,
    "is_workspace": {"type": "boolean"},
    "workspace_kind": {"enum": WorkspaceKind.values},
    "quota_left": {"type": ["integer", "null"], "description": "null: unlimited, or not a workspace."},
    "prompts": {"type": "array", "items": _ref("Prompt")},
    "payment": {"oneOf": [_ref("PaymentInstructions"), {"type": "null"}]},
    "payment_pending": {"type": "boolean"},
    "unapplied_transfers": {"type": "array", "items": _ref("UnappliedTransfer")},
    "unapplied_transfers_total": INT,
    "transfers": {"type": "array", "items": _ref("Transfer")},
    "deliverables": {"type": "array", "items": _ref("Deliverable")},
    "allowed_actions": {"type": "array", "items": {"enum": list(ACTIONS)}},
    "viewer_role": {"enum": ["buyer", "agent", "staff", None]},
    **{
        f"{stage}_at": NULLABLE_TIME
        for stage in (
            "quoted",
            "accepted",
            "paid",
            "started",
            "delivered",
            "revision_requested",
            "completed",
            "cancelled",
        )
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

WEBHOOK_DELIVERY: dict[str, Schema] = {
    "id": {"type": "string", "pattern": "^whk_"},
    "event": STR,
    "order_id": STR,
    "status": {"enum": ["pending", "delivered", "failed"]},
    "attempts": INT,
    "last_status_code": {"type": ["integer", "null"]},
    "last_error": NULLABLE_STR,
    "last_attempt_at": NULLABLE_TIME,
    "next_attempt_at": NULLABLE_TIME,
    "delivered_at": NULLABLE_TIME,
    "created_at": TIME,
    "payload": _object({"event": STR, "order_id": STR, "data": {"type": "object"}}),
}


def _envelope(data: Schema) -> Schema:
    return _object({"success": {"const": True}, "data": data})


# Every `code` an error response may carry (the `ErrorCode` enum), so a generated client can switch on
# them. tests/test_error_codes.py finds every code raised in the source and fails if one is missing here.
# Besides these literals: a chain's rejection of a payment (`PaymentRejected`) and an unapplied
# transfer's reason (`UnappliedReason`) travel as codes too.
ERROR_CODES: tuple[str, ...] = tuple(
    sorted(
        {
            "account_required",  # the Solana Pay transaction request (orders.web.views), like the next three
            "insufficient_sol",
            "insufficient_usdc",
            "not_payable",
            "agent_inactive",
            "amount_required",
            "agent_key_required",
            "agent_not_found",
            "already_reviewed",
            "approval_required",
            "authentication_required",
            "bad_request",
            "buyer_not_sender",
            "buyer_not_signer",
            "cannot_hire_self",
            "chain_unavailable",
            "claim_expired",
            "claim_not_found",
            "conflict",
            "deliverable_not_found",
            "delivery_not_found",
            "demo_wallet_failed",
            "demo_wallet_unavailable",
            "file_missing",
            "file_not_found",
            "forbidden",
            "idempotency_in_progress",
            "idempotency_key_reused",
            "in_progress",
            "invalid_address",
            "invalid_amount",
            "invalid_api_key",
            "invalid_authorization",
            "invalid_body",
            "invalid_idempotency_key",
            "invalid_json",
            "invalid_multipart",
            "invalid_nonce",
            "invalid_payer_signature",
            "invalid_payment",
            "invalid_session",
            "invalid_signature",
            "invalid_transition",
            "invalid_wallet",
            "malformed_tx_hash",
            "memo_mismatch",
            "messaging_unavailable",
            "method_not_allowed",
            "multipart_required",
            "no_endpoint_url",
            "not_a_workspace",
            "not_disputed",
            "not_found",
            "not_to_escrow",
            "not_overdue",
            "not_your_agent",
            "order_not_found",
            "payer_proof_required",
            "payload_too_large",
            "payment_expired",
            "payment_mismatch",
            "payment_pending",
            "payment_required",
            "preview_not_found",
            "prompt_already_answered",
            "prompt_not_found",
            "quota_exhausted",
            "rate_limited",
            "read_only",
            "reference_used",
            "review_unavailable",
            "revision_limit_reached",
            "revoked_api_key",
            "service_not_found",
            "service_unavailable",
            "signature_check_unavailable",
            "signature_expired",
            "signature_in_future",
            "signature_in_query",
            "signature_replayed",
            "too_many_pending_payments",
            "tx_failed",
            "tx_hash_used",
            "tx_too_old",
            "unauthorized",
            "underpaid",
            "unknown_action",
            "unknown_decision",
            "unknown_endpoint",
            "unknown_field",
            "unknown_payment_reference",
            "unprocessable",
            "unsupported_file_type",
            "upload_not_found",
            "validation_error",
            "wallet_required",
            "workspace_closed",
            "workspace_expired",
            "workspace_not_open",
            "workspace_open",
            "wrong_chain",
            "wrong_role",
            "wrong_token",
            "x402_request_mismatch",
            "x402_unavailable",
            *UnappliedReason.values,
        }
    )
)

COMPONENTS: dict[str, Schema] = {
    "ErrorCode": {"type": "string", "enum": list(ERROR_CODES)},
    "Error": _object(
        {"success": {"const": False}, "error": STR, "code": _ref("ErrorCode"), "details": {"type": "object"}}
    ),
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
            "payer_proof_message": {
                **NULLABLE_STR,
                "description": "Base: what the paying wallet signs (EIP-191; a smart account: EIP-1271 or "
                "ERC-6492, with its address as payer) as payer_signature when it is not the wallet you signed in with.",
            },
            "chain_id": {"type": ["integer", "null"], "description": "Base: the EVM chain id; Solana: null."},
            "reference_key": {
                **NULLABLE_STR,
                "description": "Solana: the order's Solana Pay reference, a public key a paying transaction "
                "names as a read-only account; the server finds the payment by it.",
            },
            "solana_pay_url": {
                **NULLABLE_STR,
                "description": "Solana: a Solana Pay transfer request (amount, USDC mint, reference, memo).",
            },
            "eip681_url": {**NULLABLE_STR, "description": "Base: an EIP-681 ERC-20 transfer link."},
        }
    ),
    "UnappliedTransfer": _object(
        {
            "tx_hash": STR,
            "chain": {"enum": Chain.values},
            "amount_base_units": INT,
            "reason": {"enum": UnappliedReason.values},
            "due_base_units": {"type": ["integer", "null"]},
            "missing_base_units": {"type": ["integer", "null"]},
            "message": STR,
            "why": STR,
            "returned_to": STR,
            "return_status": {"enum": ["pending", "signed", "confirmed", "failed", "held", None]},
            "return_tx_hash": NULLABLE_STR,
            "return_held_reason": NULLABLE_STR,
        }
    ),
    "Transfer": _object(
        {
            "kind": {"enum": ["payout", "refund", "return"]},
            "chain": {"enum": Chain.values},
            "to_address": NULLABLE_STR,
            "amount_base_units": INT,
            "status": {"enum": ["pending", "signed", "confirmed", "failed", "held"]},
            "tx_hash": NULLABLE_STR,
            "error": NULLABLE_STR,
            "held_reason": NULLABLE_STR,
        }
    ),
    "Resolution": _object(
        {
            "decision": {"enum": ["release", "refund", "split", "send_back"]},
            "note": NULLABLE_STR,
            "agent_amount_usd": {
                **NULLABLE_MONEY,
                "description": "split: the part of the price released to the agent, before the fee.",
            },
            "agent_payout_base_units": {**INT, "description": "USDC base units paid out to the agent."},
            "refund_base_units": {**INT, "description": "USDC base units sent back to the buyer."},
            "platform_fee_base_units": {**INT, "description": "USDC base units kept by the platform."},
            "decided_at": TIME,
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
    "WebhookDeliveryData": _object(WEBHOOK_DELIVERY),
    "WebhookDelivery": _envelope(_ref("WebhookDeliveryData")),
    "WebhookDeliveryList": _list_of("WebhookDeliveryData"),
    "Upload": _envelope(_object(UPLOAD)),
    "Prompt": _object(
        {
            "id": STR,
            "prompt": STR,
            "status": {"enum": ["pending", "delivered"]},
            "result": {"oneOf": [_ref("Deliverable"), {"type": "null"}]},
            "created_at": TIME,
        }
    ),
    "WorkspacePrompt": _envelope(
        _object(
            {
                "id": STR,
                "order_id": STR,
                "prompt": STR,
                "status": {"const": "pending"},
                "created_at": TIME,
                "quota_total": INT,
                "quota_used": INT,
                "quota_left": {"type": ["integer", "null"]},
                "workspace_expires_at": TIME,
            }
        )
    ),
    # x402 v2: the PaymentRequired object beside the error envelope (and base64 in PAYMENT-REQUIRED).
    "PaymentRequired": _object(
        {
            "success": {"const": False},
            "error": STR,
            "code": _ref("ErrorCode"),
            "details": _object({"reference": STR, "expires_at": TIME}),
            "x402Version": {"const": 2},
            "resource": _object({"url": STR, "description": STR, "mimeType": STR}),
            "accepts": {
                "type": "array",
                "items": _object(
                    {
                        "scheme": {"const": "exact"},
                        "network": {"type": "string", "pattern": "^(eip155|solana):"},
                        "amount": {"type": "string", "pattern": "^[0-9]+$"},
                        "asset": STR,
                        "payTo": STR,
                        "maxTimeoutSeconds": INT,
                        "extra": {"type": "object", "required": ["reference"]},
                    }
                ),
            },
        }
    ),
    "Empty": _envelope(_object({})),
}

SECURITY: dict[str, list[dict[str, list[str]]]] = {
    PUBLIC: [],
    AGENT: [{"agentKey": []}],
    WALLET: [{"walletSession": []}, {"walletRequestSignature": []}, {"walletSignature": []}],
    PARTY: [{"agentKey": []}, {"walletSession": []}, {"walletRequestSignature": []}, {"walletSignature": []}],
    PAYABLE: [  # {}: x402, no credentials
        {"agentKey": []},
        {"walletSession": []},
        {"walletRequestSignature": []},
        {"walletSignature": []},
        {},
    ],
}
X402_PAYMENT: Schema = {
    "name": "X-PAYMENT",
    "in": "header",
    "required": False,
    "description": "x402, without credentials: base64 JSON {x402Version: 2, accepted: {network}, payload: "
    "{transaction, payer, reference, signature (Base: EIP-191 of `atelier:x402:<reference>`)}} naming the "
    "transfer made as the 402's `accepts` said (`PAYMENT-SIGNATURE` is taken too).",
    "schema": {"type": "string", "maxLength": 4000},
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
    409: "Not allowed in the order's current status, or a duplicate; or `idempotency_in_progress`: a request "
    "with the same Idempotency-Key is still being answered (see Retry-After).",
    503: "A chain RPC is unreachable; nothing changed, retry.",
    413: "Request body too large.",
    422: "`idempotency_key_reused`: this Idempotency-Key was already used with a different body.",
    429: "Rate limited; see Retry-After.",
}
IDEMPOTENT_METHODS = ("POST", "PATCH")
# Response headers (components/headers). X-RateLimit-* are on every response of every endpoint
# (absent only while the rate-limit cache is down); Retry-After on a 429 and on a 409
# idempotency_in_progress; Idempotent-Replayed on a stored answer given again.
HEADERS: dict[str, Schema] = {
    "X-RateLimit-Limit": {
        "description": "Requests allowed per window, for this endpoint and client IP.",
        "schema": INT,
    },
    "X-RateLimit-Remaining": {
        "description": "Requests left now in the sliding window.",
        "schema": INT,
    },
    "X-RateLimit-Reset": {
        "description": "Unix time in seconds: on a 429, when a retry is admitted; otherwise, when the current "
        "window ends.",
        "schema": INT,
    },
    "Retry-After": {"description": "Seconds to wait before retrying.", "schema": INT},
    "Idempotent-Replayed": {
        "description": "`true`: this is the stored answer to an earlier request with the same Idempotency-Key.",
        "schema": {"const": "true"},
    },
}
IDEMPOTENCY_KEY: Schema = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Makes a retry safe: a unique value per intended write (a UUID, say), the same on each retry. "
    "The same key and body from the same caller, on the same method and path, within 24 hours, get the first "
    "answer again (2xx and 4xx are stored, with `Idempotent-Replayed: true`) without running the request twice; "
    "the same key with another body is a 422 `idempotency_key_reused`; while the first request is still running, "
    "a duplicate waits for its answer, or gets a 409 `idempotency_in_progress`.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
}


def _headers(*names: str) -> Schema:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
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


def _operation(path: str, spec: Endpoint) -> Schema:
    operation: Schema = {
        "summary": spec.summary,
        # The view's name (`order_quote`, `agent_orders`), not one derived from the path: stable when a
        # URL moves, and what generated clients name their methods after.
        "operationId": spec.operation_id,
        "tags": [spec.tag] if spec.tag else [],
        "security": SECURITY[spec.auth],
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string", "maxLength": 40}}
            for name in re.findall(r"{(\w+)}", path)
        ],
        "responses": {
            str(spec.status): {
                "description": "Success.",
                "headers": _headers(
                    *RATE_HEADERS, *(("Idempotent-Replayed",) if spec.method in IDEMPOTENT_METHODS else ())
                ),
                "content": {spec.produces: {"schema": FILE_BODY}}
                if spec.produces
                else {"application/json": {"schema": _ref(spec.response or "Empty")}},
            },
            **{
                str(status): {
                    "description": text,
                    "headers": _headers(*RATE_HEADERS, *(("Retry-After",) if status in (409, 429) else ())),
                    "content": {"application/json": {"schema": _ref("Error")}},
                }
                for status, text in ERROR_STATUSES.items()
                if (status != 429 or spec.rate) and (status != 422 or spec.method in IDEMPOTENT_METHODS)
            },
        },
    }
    if spec.rate:
        operation["description"] = f"Rate limit: {spec.rate.describe()}."
    if spec.method in IDEMPOTENT_METHODS:
        operation["parameters"].append(IDEMPOTENCY_KEY)
    if 402 in spec.errors:
        operation["responses"]["402"] = {
            "description": "x402: payment required, or the payment sent did not verify (`code` says why).",
            "headers": {"PAYMENT-REQUIRED": {"description": "The x402 PaymentRequired, base64 JSON.", "schema": STR}},
            "content": {"application/json": {"schema": _ref("PaymentRequired")}},
        }
    if spec.auth == PAYABLE:
        operation["parameters"].append(X402_PAYMENT)
    for name, rule in (spec.query or {}).items():
        operation["parameters"].append(
            {"name": name, "in": "query", "required": rule.required, "schema": rule.schema()}
        )
    if spec.multipart:
        form = object_schema(spec.body or {})
        form["properties"].update({name: FILE_BODY for name in spec.multipart})
        form["required"].extend(spec.multipart)
        operation["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": form}}}
    elif spec.method in ("POST", "PATCH", "PUT"):
        body = object_schema(spec.body or {})
        if spec.auth in (WALLET, PARTY, PAYABLE):
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
            "description": f"Rate limit: {DOCUMENT_RATE.describe()}.",
            "operationId": "openapi_document",
            "security": [],
            "responses": {
                "200": {
                    "description": "OpenAPI 3.1",
                    "headers": _headers(*RATE_HEADERS),
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "429": {
                    "description": ERROR_STATUSES[429],
                    "headers": _headers(*RATE_HEADERS, "Retry-After"),
                    "content": {"application/json": {"schema": _ref("Error")}},
                },
            },
        }
    }
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
            "schemas": COMPONENTS,
            "headers": HEADERS,
            "securitySchemes": {
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
            },
        },
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
