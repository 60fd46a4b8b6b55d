"""One OpenAPI operation from one `Endpoint`: its security, parameters, request body and responses,
from the same specs that validate the requests (api.endpoints)."""

from __future__ import annotations

import re

from api.endpoints import AGENT, PARTY, PAYABLE, PUBLIC, WALLET, Endpoint
from lib.shapes import Schema, ref
from lib.validation import Variants, object_schema

FILE_BODY: Schema = {"type": "string", "contentMediaType": "application/octet-stream"}
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
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Remaining": {
        "description": "Requests left now in the sliding window.",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Reset": {
        "description": "Unix time in seconds: on a 429, when a retry is admitted; otherwise, when the current "
        "window ends.",
        "schema": {"type": "integer"},
    },
    "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}},
    "Idempotent-Replayed": {
        "description": "`true`: this is the stored answer to an earlier request with the same Idempotency-Key.",
        "schema": {"const": "true"},
    },
}
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
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
PAYMENT_REQUIRED_RESPONSE: Schema = {
    "description": "x402: payment required, or the payment sent did not verify (`code` says why).",
    "headers": {
        "PAYMENT-REQUIRED": {"description": "The x402 PaymentRequired, base64 JSON.", "schema": {"type": "string"}}
    },
    "content": {"application/json": {"schema": ref("PaymentRequired")}},
}


def headers(*names: str) -> Schema:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def error_response(status: int) -> Schema:
    return {
        "description": ERROR_STATUSES[status],
        "headers": headers(*RATE_HEADERS, *(("Retry-After",) if status in (409, 429) else ())),
        "content": {"application/json": {"schema": ref("Error")}},
    }


def operation(path: str, spec: Endpoint) -> Schema:
    found: Schema = {
        "summary": spec.summary,
        # The view's name (`order_quote`, `agent_orders`), not one derived from the path: stable when a
        # URL moves, and what generated clients name their methods after.
        "operationId": spec.operation_id,
        "tags": [spec.tag] if spec.tag else [],
        "security": SECURITY[spec.auth],
        "parameters": parameters(path, spec),
        "responses": responses(spec),
    }
    if spec.rate:
        found["description"] = f"Rate limit: {spec.rate.describe()}."
    body = request_body(spec)
    if body is not None:
        found["requestBody"] = body
    return found


def parameters(path: str, spec: Endpoint) -> list[Schema]:
    found: list[Schema] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "maxLength": 40}}
        for name in re.findall(r"{(\w+)}", path)
    ]
    if spec.method in IDEMPOTENT_METHODS:
        found.append(IDEMPOTENCY_KEY)
    if spec.auth == PAYABLE:
        found.append(X402_PAYMENT)
    found.extend(
        {"name": name, "in": "query", "required": rule.required, "schema": rule.schema()}
        for name, rule in (spec.query or {}).items()
    )
    return found


def responses(spec: Endpoint) -> Schema:
    found: Schema = {str(spec.status): success_response(spec)}
    for status in ERROR_STATUSES:
        if (status != 429 or spec.rate) and (status != 422 or spec.method in IDEMPOTENT_METHODS):
            found[str(status)] = error_response(status)
    if 402 in spec.errors:
        found["402"] = PAYMENT_REQUIRED_RESPONSE
    return found


def success_response(spec: Endpoint) -> Schema:
    replayed = ("Idempotent-Replayed",) if spec.method in IDEMPOTENT_METHODS else ()
    if spec.produces:
        content = {spec.produces: {"schema": FILE_BODY}}
    else:
        content = {"application/json": {"schema": ref(spec.response or "Empty")}}
    return {"description": "Success.", "headers": headers(*RATE_HEADERS, *replayed), "content": content}


def request_body(spec: Endpoint) -> Schema | None:
    if spec.multipart:
        form = object_schema(spec.body or {})
        form["properties"].update({name: FILE_BODY for name in spec.multipart})
        form["required"].extend(spec.multipart)
        return {"required": True, "content": {"multipart/form-data": {"schema": form}}}
    if spec.method not in ("POST", "PATCH", "PUT"):
        return None
    if spec.variants:
        schema = variants_schema(spec.operation_id, spec.variants)
    else:
        schema = signed_body(spec, object_schema(spec.body or {}))
    return {
        "required": bool(spec.body and any(rule.required for rule in spec.body.values())),
        "content": {"application/json": {"schema": schema}},
    }


def signed_body(spec: Endpoint, body: Schema) -> Schema:
    """The per-request wallet signature may travel in the JSON body too (authenticate() takes it out
    before validation), so a body that carries it is a valid body."""
    if spec.auth in (WALLET, PARTY, PAYABLE):
        body["properties"].update(WALLET_SIGNATURE_BODY)
    return body


def variants_schema(operation_id: str, variants: Variants) -> Schema:
    """A oneOf with one branch per value of the key, each a component of its own (`variant_components`)."""
    names = variant_names(operation_id, variants)
    return {
        "oneOf": [ref(name) for name in names.values()],
        "discriminator": {
            "propertyName": variants.key,
            "mapping": {value: f"#/components/schemas/{name}" for value, name in names.items()},
        },
    }


def variant_components(spec: Endpoint) -> dict[str, Schema]:
    """The branches `variants_schema` refers to, by component name."""
    if spec.variants is None:
        return {}
    names = variant_names(spec.operation_id, spec.variants)
    return {names[value]: signed_body(spec, schema) for value, schema in spec.variants.schemas().items()}


def variant_names(operation_id: str, variants: Variants) -> dict[str, str]:
    """`order_act` + `revision`: OrderActRevision."""
    return {value: _pascal(operation_id) + _pascal(value) for value in variants.bodies}


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
