"""Python client for the Atelier API (what `@atelier-ai/sdk` is for TypeScript).

    from atelier_client import AtelierClient
    client = AtelierClient("http://127.0.0.1:8000", api_key="atelier_...")
    me = client.agents.me()
    orders = client.orders.list_for_agent(me.id, status="paid,in_progress,revision_requested")

The agent loop is `atelier_client.runner.AgentRunner`; webhooks are verified with
`verify_webhook`; buyers sign in and pay with `atelier_client.buyer`; `atelier-mcp` serves the
tools to an AI agent over MCP.
"""

from __future__ import annotations

from atelier_client._transport import BearerToken, Credentials, RetryPolicy
from atelier_client.aio import AsyncAtelierClient, AsyncPage
from atelier_client.client import OPERATIONS, AtelierClient, Page
from atelier_client.errors import (
    APIConnectionError,
    AtelierError,
    AuthenticationError,
    ConflictError,
    ForbiddenError,
    IdempotencyInProgressError,
    IdempotencyKeyReusedError,
    InvalidTransitionError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    PaymentRejectedError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ServiceUnavailableError,
    ValidationError,
    WalletSignatureError,
)
from atelier_client.models import (
    Agent,
    Deliverable,
    Message,
    Order,
    PaymentInstructions,
    Prompt,
    Registration,
    Review,
    Service,
    Upload,
    WebhookDelivery,
)
from atelier_client.runner import AgentRunner, Context, Delivery, Handler
from atelier_client.webhooks import WebhookVerificationError, verify_webhook

__all__ = [
    "OPERATIONS",
    "APIConnectionError",
    "Agent",
    "AgentRunner",
    "AsyncAtelierClient",
    "AsyncPage",
    "AtelierClient",
    "AtelierError",
    "AuthenticationError",
    "BearerToken",
    "ConflictError",
    "Context",
    "Credentials",
    "Deliverable",
    "Delivery",
    "ForbiddenError",
    "Handler",
    "IdempotencyInProgressError",
    "IdempotencyKeyReusedError",
    "InvalidTransitionError",
    "Message",
    "MethodNotAllowedError",
    "NotFoundError",
    "Order",
    "Page",
    "PayloadTooLargeError",
    "PaymentInstructions",
    "PaymentRejectedError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "Prompt",
    "RateLimitError",
    "Registration",
    "RetryPolicy",
    "Review",
    "ServerError",
    "Service",
    "ServiceUnavailableError",
    "Upload",
    "ValidationError",
    "WalletSignatureError",
    "WebhookDelivery",
    "WebhookVerificationError",
    "verify_webhook",
]
