"""The OpenAPI document's `components.schemas`: each answer's shape, generated from the TypedDict the
code builds it as (lib.shapes), inside the API's envelope; the error envelope and its codes; x402's
PaymentRequired. An endpoint's `response` names one of these."""

from __future__ import annotations

from agents.shapes import AgentProfileData, AgentPublicData, AgentRegistrationData, CatalogueItem, ServiceData
from atelier.error_codes import ERROR_CODES
from lib.shapes import Schema, ref, schemas
from orders.reads.shapes import MessageData, OrderData, ReviewData, UploadData, WorkspacePromptData
from payments.shapes import SignInChallengeData, WalletSessionData
from webhooks.shapes import WebhookDeliveryData

STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}

# {success: true, data: <the shape>}, by response name.
ONE: dict[str, type] = {
    "Order": OrderData,
    "AgentPublic": AgentPublicData,
    "AgentPrivate": AgentProfileData,
    "AgentRegistration": AgentRegistrationData,
    "Service": ServiceData,
    "Message": MessageData,
    "Review": ReviewData,
    "SignInChallenge": SignInChallengeData,
    "WalletSession": WalletSessionData,
    "WebhookDelivery": WebhookDeliveryData,
    "Upload": UploadData,
    "WorkspacePrompt": WorkspacePromptData,
}
# {success: true, data: [<the shape>...], next_cursor}, by response name.
PAGES: dict[str, type] = {
    "OrderList": OrderData,
    "AgentOrderList": OrderData,
    "CatalogueList": CatalogueItem,
    "MessageList": MessageData,
    "WebhookDeliveryList": WebhookDeliveryData,
}
# Keys some answers carry beside `data`, only sometimes (so not required), by response name.
BESIDE: dict[str, dict[str, Schema]] = {
    "AgentOrderList": {
        "needs_reply": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"order_id": STR, "message_id": STR},
                "required": ["order_id", "message_id"],
                "additionalProperties": False,
            },
            "description": "With needs_reply=true: the agent's orders, in any status, whose newest message is "
            "the buyer's (that message's id).",
        }
    },
    "AgentPrivate": {
        "warnings": {
            "type": "array",
            "items": STR,
            "description": "After a PATCH: why webhooks to the new endpoint_url would be refused.",
        }
    },
}
# {success: true, data: [<the shape>...]}: every row at once.
LISTS: dict[str, type] = {"ServiceList": ServiceData}


def _object(properties: dict[str, Schema]) -> Schema:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def _envelope(data: Schema, **beside: Schema) -> Schema:
    return _object({"success": {"const": True}, "data": data, **beside})


def _many(shape: type) -> Schema:
    return {"type": "array", "items": ref(shape.__name__)}


# x402 v2: the PaymentRequired object beside the error envelope (and base64 in PAYMENT-REQUIRED).
PAYMENT_REQUIRED = _object(
    {
        "success": {"const": False},
        "error": STR,
        "code": ref("ErrorCode"),
        "details": _object({"reference": STR, "expires_at": {"type": "string", "format": "date-time"}}),
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
)


def components() -> dict[str, Schema]:
    """Every schema the document refers to: the shapes (and those nested in them), then the envelopes."""
    found = schemas(*ONE.values(), *PAGES.values(), *LISTS.values())
    found.update({name: _envelope(ref(shape.__name__)) for name, shape in ONE.items()})
    found.update(
        {name: _envelope(_many(shape), next_cursor={"type": ["string", "null"]}) for name, shape in PAGES.items()}
    )
    found.update({name: _envelope(_many(shape)) for name, shape in LISTS.items()})
    for name, optional in BESIDE.items():
        found[name]["properties"].update(optional)
    found.update(
        {
            "ErrorCode": {"type": "string", "enum": list(ERROR_CODES)},
            "Error": _object(
                {"success": {"const": False}, "error": STR, "code": ref("ErrorCode"), "details": {"type": "object"}}
            ),
            "PaymentRequired": PAYMENT_REQUIRED,
            "Empty": _envelope(_object({})),
        }
    )
    return found
