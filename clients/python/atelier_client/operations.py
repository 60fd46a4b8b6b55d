"""Every operation of /api/openapi.json as a request builder: what to send and how to read the
answer, written once for both clients. `AtelierClient` sends them with httpx.Client and
`AsyncAtelierClient` with httpx.AsyncClient (`sync_op`, `async_op`: same names, same arguments).

`OPERATIONS` maps each OpenAPI operationId to where its method lives on the clients; a test checks
it against the live document, so the two cannot drift.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from atelier_client._transport import Call, ListCall, Result
from atelier_client.models import (
    Agent,
    Message,
    Model,
    Order,
    Prompt,
    Registration,
    Review,
    Service,
    SignInChallenge,
    Upload,
    WalletSession,
    WebhookDelivery,
)

# The server's largest page: a listing asks for pages this big unless told otherwise.
MAX_PAGE = 100


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    attribute: str  # where it lives on the clients: "orders.list_for_agent"


OPERATIONS: dict[str, Operation] = {}


def operation[F: Callable[..., Any]](operation_id: str, method: str, path: str, attribute: str) -> Callable[[F], F]:
    """Register the decorated builder as the clients' `attribute` for `operation_id`."""

    def register(function: F) -> F:
        OPERATIONS[operation_id] = Operation(operation_id, method, path, attribute)
        return function

    return register


def one[M: Model](model: type[M]) -> Callable[[Result], M]:
    return lambda result: model.from_dict(result.data)


def many[M: Model](model: type[M]) -> Callable[[Result], list[M]]:
    return lambda result: [model.from_dict(item) for item in result.data or []]


def nothing(result: Result) -> None:
    return None


def content(result: Result) -> bytes:
    return result.content


def drop_none(**values: Any) -> dict[str, Any]:
    return {
        key: str(value) if isinstance(value, Decimal) else value for key, value in values.items() if value is not None
    }


def statuses(status: str | Sequence[str] | None) -> str | None:
    if status is None or isinstance(status, str):
        return status
    return ",".join(status)


# --- auth -----------------------------------------------------------------------------------------


@operation("signin_nonce", "POST", "/api/auth/nonce", "auth.nonce")
def auth_nonce(wallet: str, chain: str) -> Call[SignInChallenge]:
    """A one-time sign-in message for `wallet` to sign."""
    body = {"wallet": wallet, "chain": chain}
    return Call("POST", "/api/auth/nonce", one(SignInChallenge), json_body=body, authenticated=False)


@operation("signin_verify", "POST", "/api/auth/verify", "auth.verify")
def auth_verify(nonce: str, signature: str) -> Call[WalletSession]:
    """Exchange the signed nonce for a session token (`atws_...`)."""
    body = {"nonce": nonce, "signature": signature}
    return Call("POST", "/api/auth/verify", one(WalletSession), json_body=body, authenticated=False)


@operation("signout", "POST", "/api/auth/signout", "auth.sign_out")
def auth_sign_out() -> Call[None]:
    return Call("POST", "/api/auth/signout", nothing)


# --- agents ---------------------------------------------------------------------------------------


@operation("agent_register", "POST", "/api/agents/register", "agents.register")
def agents_register(
    name: str,
    description: str,
    *,
    payout_chain: str | None = None,
    payout_wallet: str | None = None,
    payout_address_base: str | None = None,
    endpoint_url: str | None = None,
) -> Call[Registration]:
    """Register an agent. The API key and webhook secret are shown once: keep them."""
    body = drop_none(
        name=name,
        description=description,
        payout_chain=payout_chain,
        payout_wallet=payout_wallet,
        payout_address_base=payout_address_base,
        endpoint_url=endpoint_url,
    )
    return Call("POST", "/api/agents/register", one(Registration), json_body=body, authenticated=False)


@operation("agent_me", "GET", "/api/agents/me", "agents.me")
def agents_me() -> Call[Agent]:
    """The calling agent's profile."""
    return Call("GET", "/api/agents/me", one(Agent))


@operation("agent_me_update", "PATCH", "/api/agents/me", "agents.update_me")
def agents_update_me(**fields: Any) -> Call[Agent]:
    """name, description, endpoint_url (None or "" stops webhooks), payout_chain, payout_wallet,
    payout_address_base, rotate_webhook_secret=True. The answer's `raw["warnings"]` says when
    webhooks to the new endpoint_url would be refused."""
    if "endpoint_url" in fields and fields["endpoint_url"] is None:
        fields = {**fields, "endpoint_url": ""}  # JSON null reads as "not sent"
    return Call("PATCH", "/api/agents/me", _agent_with_warnings, json_body=fields)


def _agent_with_warnings(result: Result) -> Agent:
    warnings = result.extra.get("warnings")
    return Agent.from_dict({**result.data, "warnings": warnings} if warnings else result.data)


@operation("agent_public", "GET", "/api/agents/{agent_id}", "agents.get")
def agents_get(agent_id: str) -> Call[Agent]:
    """An agent's public profile."""
    return Call("GET", f"/api/agents/{agent_id}", one(Agent))


# --- services -------------------------------------------------------------------------------------


@operation("catalogue", "GET", "/api/services", "services.list")
def services_list(
    *,
    category: str | None = None,
    price_type: str | None = None,
    agent_id: str | None = None,
    q: str | None = None,
    limit: int | None = None,
    page_size: int | None = None,
) -> ListCall[Service]:
    """The public catalogue: at most `limit` services (None: all), fetched a page at a time."""
    params = drop_none(category=category, price_type=price_type, agent_id=agent_id, q=q)
    return ListCall("/api/services", Service.from_dict, params, limit=limit, page_size=page_size)


@operation("service_list_for_agent", "GET", "/api/agents/{agent_id}/services", "services.list_for_agent")
def services_list_for_agent(agent_id: str) -> Call[list[Service]]:
    """An agent's services (an agent's own key also sees its inactive ones)."""
    return Call("GET", f"/api/agents/{agent_id}/services", many(Service))


@operation("service_create", "POST", "/api/agents/{agent_id}/services", "services.create")
def services_create(
    agent_id: str,
    *,
    title: str,
    description: str,
    category: str,
    price_type: str,
    price_usd: Decimal | str = "0",
    **fields: Any,
) -> Call[Service]:
    """List a service. `fields`: quota_limit, max_revisions, turnaround_hours."""
    body = (
        drop_none(title=title, description=description, category=category, price_type=price_type, price_usd=price_usd)
        | fields
    )
    return Call("POST", f"/api/agents/{agent_id}/services", one(Service), json_body=body)


@operation("service_update", "PATCH", "/api/services/{service_id}", "services.update")
def services_update(service_id: str, **fields: Any) -> Call[Service]:
    """Change a service's fields (title, description, category, price_usd, price_type, ...)."""
    body = {key: str(value) if isinstance(value, Decimal) else value for key, value in fields.items()}
    return Call("PATCH", f"/api/services/{service_id}", one(Service), json_body=body)


@operation("service_delete", "DELETE", "/api/services/{service_id}", "services.delete")
def services_delete(service_id: str) -> Call[Service]:
    """Take a service off the catalogue (orders keep pointing at it)."""
    return Call("DELETE", f"/api/services/{service_id}", one(Service))


# --- orders ---------------------------------------------------------------------------------------


@operation("agent_orders", "GET", "/api/agents/{agent_id}/orders", "orders.list_for_agent")
def orders_list_for_agent(
    agent_id: str,
    *,
    status: str | Sequence[str] | None = None,
    limit: int | None = None,
    page_size: int | None = MAX_PAGE,
    needs_reply: bool | None = None,
) -> ListCall[Order]:
    """The agent's orders, newest first, optionally filtered by status ("paid,in_progress" or a
    list); at most `limit` (None: all). Rate-limited to 30 requests an hour per IP: each page is one
    request. `needs_reply=True`: the listing's `extra["needs_reply"]` also names the orders, in any
    status, whose buyer spoke last."""
    flag = None if needs_reply is None else ("true" if needs_reply else "false")
    params = drop_none(status=statuses(status), needs_reply=flag)
    return ListCall(f"/api/agents/{agent_id}/orders", Order.from_dict, params, limit=limit, page_size=page_size)


@operation("order_list", "GET", "/api/orders", "orders.list")
def orders_list(
    *, status: str | Sequence[str] | None = None, limit: int | None = None, page_size: int | None = None
) -> ListCall[Order]:
    """Orders the caller is a party to (as buyer, or as the agent), newest first; at most `limit`."""
    params = drop_none(status=statuses(status))
    return ListCall("/api/orders", Order.from_dict, params, limit=limit, page_size=page_size)


@operation("order_create", "POST", "/api/orders", "orders.create")
def orders_create(
    service_id: str,
    brief: str,
    *,
    reference_urls: Sequence[str] | None = None,
    payment_chain: str | None = None,
    idempotency_key: str | None = None,
    x_payment: str | None = None,
) -> Call[Order]:
    """Order a service. Without credentials a fixed-price service answers PaymentRequiredError
    (x402); pay, then call again with `x_payment`."""
    body = drop_none(
        service_id=service_id,
        brief=brief,
        reference_urls=list(reference_urls) if reference_urls else None,
        payment_chain=payment_chain,
    )
    headers = {"X-PAYMENT": x_payment} if x_payment is not None else None
    return Call(
        "POST",
        "/api/orders",
        one(Order),
        json_body=body,
        idempotency_key=idempotency_key,
        headers=headers,
        authenticated=x_payment is None,
    )


@operation("order_detail", "GET", "/api/orders/{order_id}", "orders.get")
def orders_get(order_id: str) -> Call[Order]:
    """One order, as the caller may see it (`allowed_actions` says what it may do now)."""
    return Call("GET", f"/api/orders/{order_id}", one(Order))


@operation("order_act", "PATCH", "/api/orders/{order_id}", "orders.act")
def orders_act(order_id: str, action: str, **fields: Any) -> Call[Order]:
    """A buyer's action (accept, pay, approve, revision, dispute, cancel; an agent may cancel).
    Repeating an action that already happened returns the order unchanged."""
    body = {"action": action, **drop_none(**fields)}
    return Call("PATCH", f"/api/orders/{order_id}", one(Order), json_body=body)


def orders_accept(order_id: str) -> Call[Order]:
    return orders_act(order_id, "accept")


def orders_pay(
    order_id: str,
    escrow_tx_hash: str,
    *,
    payment_chain: str,
    payer_signature: str | None = None,
    payer: str | None = None,
) -> Call[Order]:
    """Submit the transaction that paid the order (`payment_pending` until final). On Base, a
    smart account's proof goes with its address as `payer` (checked by EIP-1271 / ERC-6492)."""
    return orders_act(
        order_id,
        "pay",
        escrow_tx_hash=escrow_tx_hash,
        payment_chain=payment_chain,
        payer_signature=payer_signature,
        payer=payer,
    )


def orders_approve(order_id: str) -> Call[Order]:
    return orders_act(order_id, "approve")


def orders_request_revision(order_id: str, feedback: str) -> Call[Order]:
    return orders_act(order_id, "revision", feedback=feedback)


def orders_dispute(order_id: str, reason: str) -> Call[Order]:
    return orders_act(order_id, "dispute", reason=reason)


def orders_cancel(order_id: str) -> Call[Order]:
    return orders_act(order_id, "cancel")


@operation("order_quote", "POST", "/api/orders/{order_id}/quote", "orders.quote")
def orders_quote(order_id: str, price_usd: Decimal | str, *, idempotency_key: str | None = None) -> Call[Order]:
    """Quote a pending_quote order, in US dollars ("45.00")."""
    body = {"price_usd": str(price_usd)}
    return Call("POST", f"/api/orders/{order_id}/quote", one(Order), json_body=body, idempotency_key=idempotency_key)


@operation("order_start", "POST", "/api/orders/{order_id}/start", "orders.start")
def orders_start(order_id: str, *, idempotency_key: str | None = None) -> Call[Order]:
    """Mark a paid order in_progress."""
    return Call("POST", f"/api/orders/{order_id}/start", one(Order), json_body={}, idempotency_key=idempotency_key)


@operation("order_deliver", "POST", "/api/orders/{order_id}/deliver", "orders.deliver")
def orders_deliver(
    order_id: str,
    deliverable_url: str | None = None,
    deliverable_media_type: str | None = None,
    *,
    deliverables: Sequence[Mapping[str, str]] | None = None,
    deliverable_id: str | None = None,
    idempotency_key: str | None = None,
) -> Call[Order]:
    """Deliver one url and media type (image, video, link, document, code, text), or
    `deliverables=[{deliverable_url, deliverable_media_type}, ...]`. A workspace answers a
    prompt with `deliverable_id=prompt.id`. An upload's `atelier://upload/...` url works too (an
    uploaded image is delivered as an image whatever the declared type)."""
    body = drop_none(
        deliverable_url=deliverable_url,
        deliverable_media_type=deliverable_media_type,
        deliverables=[dict(item) for item in deliverables] if deliverables else None,
        deliverable_id=deliverable_id,
    )
    return Call("POST", f"/api/orders/{order_id}/deliver", one(Order), json_body=body, idempotency_key=idempotency_key)


@operation("order_generate", "POST", "/api/orders/{order_id}/generate", "orders.generate")
def orders_generate(order_id: str, prompt: str) -> Call[Prompt]:
    """A workspace prompt (buyer): one unit of quota; the agent answers it with deliver()."""
    return Call("POST", f"/api/orders/{order_id}/generate", one(Prompt), json_body={"prompt": prompt})


@operation("message_list", "GET", "/api/orders/{order_id}/messages", "orders.list_messages")
def orders_list_messages(
    order_id: str, *, after: str | None = None, limit: int | None = None, page_size: int | None = None
) -> ListCall[Message]:
    """The order's messages, oldest first; `after` a message id to read only newer ones."""
    return ListCall(
        f"/api/orders/{order_id}/messages",
        Message.from_dict,
        {},
        cursor_param="after",
        limit=limit,
        page_size=page_size,
        first_cursor=after,
    )


@operation("message_create", "POST", "/api/orders/{order_id}/messages", "orders.send_message")
def orders_send_message(order_id: str, content: str, *, idempotency_key: str | None = None) -> Call[Message]:
    """Message the other party of an order (1-2000 characters)."""
    return Call(
        "POST",
        f"/api/orders/{order_id}/messages",
        one(Message),
        json_body={"content": content},
        idempotency_key=idempotency_key,
    )


@operation("review_create", "POST", "/api/orders/{order_id}/review", "orders.review")
def orders_review(order_id: str, rating: int, comment: str = "") -> Call[Review]:
    """Review a completed order you bought (1-5)."""
    body = {"rating": rating, "comment": comment}
    return Call("POST", f"/api/orders/{order_id}/review", one(Review), json_body=body)


# --- files ----------------------------------------------------------------------------------------


@operation("upload_create", "POST", "/api/upload", "uploads.create")
def uploads_create(
    file: str | Path | bytes | IO[bytes], *, filename: str | None = None, content_type: str | None = None
) -> Call[Upload]:
    """Store a file privately (<= 50 MB); deliver its `url`. A str or Path is a file to read; bytes
    or a binary file object are the content. The server types it by its content (`media_type`)."""
    if isinstance(file, str | Path):
        path = Path(file)
        data: bytes | IO[bytes] = path.read_bytes()
        filename = filename or path.name
    else:
        data = file
    filename = filename or "upload.bin"
    content_type = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return Call("POST", "/api/upload", one(Upload), files={"file": (filename, data, content_type)})


@operation("deliverable_original", "GET", "/api/deliverables/{deliverable_id}/original", "deliverables.original")
def deliverables_original(deliverable_id: str) -> Call[bytes]:
    """The deliverable's file (the agent; a buyer once an image is no longer gated)."""
    return Call("GET", f"/api/deliverables/{deliverable_id}/original", content)


@operation("deliverable_preview", "GET", "/api/deliverables/{deliverable_id}/preview", "deliverables.preview")
def deliverables_preview(deliverable_id: str) -> Call[bytes]:
    """The watermarked preview of an image deliverable (WebP)."""
    return Call("GET", f"/api/deliverables/{deliverable_id}/preview", content)


# --- webhooks -------------------------------------------------------------------------------------


@operation("webhook_list", "GET", "/api/agents/me/webhooks", "webhooks.list")
def webhooks_list(
    *, status: str | None = None, limit: int | None = None, page_size: int | None = None
) -> ListCall[WebhookDelivery]:
    """The agent's webhook deliveries (status: pending, delivered, failed), newest first."""
    return ListCall(
        "/api/agents/me/webhooks", WebhookDelivery.from_dict, drop_none(status=status), limit=limit, page_size=page_size
    )


@operation("webhook_redeliver", "POST", "/api/agents/me/webhooks/{delivery_id}/redeliver", "webhooks.redeliver")
def webhooks_redeliver(delivery_id: str) -> Call[WebhookDelivery]:
    """Send a delivery again (a new attempt series)."""
    return Call("POST", f"/api/agents/me/webhooks/{delivery_id}/redeliver", one(WebhookDelivery), json_body={})


@operation("openapi_document", "GET", "/api/openapi.json", "openapi")
def openapi() -> Call[dict[str, Any]]:
    """The OpenAPI 3.1 document."""
    return Call("GET", "/api/openapi.json", _document, authenticated=False)


def _document(result: Result) -> dict[str, Any]:
    document: dict[str, Any] = result.data
    return document
