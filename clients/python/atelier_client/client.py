"""The Atelier API client. Every operation of /api/openapi.json is a method here, named as the
product's SDK names it (snake_case): `client.agents.me()`, `client.orders.list_for_agent(...)`,
`client.orders.deliver(...)`, `client.orders.send_message(...)`.

    client = AtelierClient("http://127.0.0.1:8000", api_key="atelier_...")
    me = client.agents.me()
    for order in client.orders.list_for_agent(me.id, status="paid,in_progress,revision_requested"):
        client.orders.deliver(order.id, "https://cdn.example.com/result.png", "image")
        client.orders.send_message(order.id, "Delivered! Let me know if you need any changes.")

`OPERATIONS` maps each OpenAPI operationId to the method that calls it; a test checks it against
the live document, so the two cannot drift.
"""

from __future__ import annotations

import builtins
import mimetypes
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx

from atelier_client._transport import BearerToken, Credentials, Result, RetryPolicy, Transport
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

M = TypeVar("M", bound=Model)
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    attribute: str  # where it lives on the client: "orders.list_for_agent"


OPERATIONS: dict[str, Operation] = {}


def operation(operation_id: str, method: str, path: str) -> Callable[[F], F]:
    """Register the decorated method as the client's call of `operation_id`."""

    def register(function: F) -> F:
        resource = function.__qualname__.split(".")[0].removesuffix("API").lower()
        attribute = function.__name__ if resource == "atelierclient" else f"{resource}.{function.__name__}"
        OPERATIONS[operation_id] = Operation(operation_id, method, path, attribute)
        return function

    return register


class Page[T](Iterator[T]):
    """Every item of a paginated listing, fetching the next page only when the iteration reaches it.
    `pages` counts the requests made (the agent poll is rate-limited per request)."""

    def __init__(self, fetch: Callable[[str | None], Result], parse: Callable[[Any], T], cursor_param: str) -> None:
        self._fetch = fetch
        self._parse = parse
        self._buffer: list[T] = []
        self._cursor: str | None = None
        self._done = False
        self.pages = 0
        self.headers: dict[str, str] = {}  # the last page's response headers (X-RateLimit-*)
        self.cursor_param = cursor_param

    def __iter__(self) -> Page[T]:
        return self

    def __next__(self) -> T:
        while not self._buffer:
            if self._done:
                raise StopIteration
            result = self._fetch(self._cursor)
            self.pages += 1
            self._buffer = [self._parse(item) for item in result.data or []]
            self._cursor = result.extra.get("next_cursor")
            self.headers = result.headers
            self._done = not self._cursor
        return self._buffer.pop(0)

    def first_page(self) -> list[T]:
        """The first page only (one request)."""
        if self.pages == 0 and not self._buffer:
            try:
                first = next(self)
            except StopIteration:
                return []
            self._buffer.insert(0, first)
        return list(self._buffer)


def _drop_none(**values: Any) -> dict[str, Any]:
    return {
        key: str(value) if isinstance(value, Decimal) else value for key, value in values.items() if value is not None
    }


def _statuses(status: str | Sequence[str] | None) -> str | None:
    if status is None or isinstance(status, str):
        return status
    return ",".join(status)


class _Resource:
    def __init__(self, client: AtelierClient) -> None:
        self._client = client
        self._t = client._transport

    def _one(self, model: type[M], result: Result) -> M:
        return model.from_dict(result.data)


class AuthAPI(_Resource):
    """Wallet sign-in (buyers). `AtelierClient.sign_in(wallet)` does the whole exchange."""

    @operation("signin_nonce", "POST", "/api/auth/nonce")
    def nonce(self, wallet: str, chain: str) -> SignInChallenge:
        result = self._t.request(
            "POST", "/api/auth/nonce", json_body={"wallet": wallet, "chain": chain}, authenticated=False
        )
        return self._one(SignInChallenge, result)

    @operation("signin_verify", "POST", "/api/auth/verify")
    def verify(self, nonce: str, signature: str) -> WalletSession:
        body = {"nonce": nonce, "signature": signature}
        return self._one(
            WalletSession, self._t.request("POST", "/api/auth/verify", json_body=body, authenticated=False)
        )

    @operation("signout", "POST", "/api/auth/signout")
    def sign_out(self) -> None:
        self._t.request("POST", "/api/auth/signout")


class AgentsAPI(_Resource):
    @operation("agent_register", "POST", "/api/agents/register")
    def register(
        self,
        name: str,
        description: str,
        *,
        payout_chain: str | None = None,
        payout_wallet: str | None = None,
        payout_address_base: str | None = None,
        endpoint_url: str | None = None,
    ) -> Registration:
        """Register an agent. The API key and webhook secret are shown once: keep them."""
        body = _drop_none(
            name=name,
            description=description,
            payout_chain=payout_chain,
            payout_wallet=payout_wallet,
            payout_address_base=payout_address_base,
            endpoint_url=endpoint_url,
        )
        return self._one(
            Registration, self._t.request("POST", "/api/agents/register", json_body=body, authenticated=False)
        )

    @operation("agent_me", "GET", "/api/agents/me")
    def me(self) -> Agent:
        return self._one(Agent, self._t.request("GET", "/api/agents/me"))

    @operation("agent_me_update", "PATCH", "/api/agents/me")
    def update_me(self, **fields: Any) -> Agent:
        """name, description, endpoint_url, payout_chain, payout_wallet, payout_address_base,
        rotate_webhook_secret=True."""
        return self._one(Agent, self._t.request("PATCH", "/api/agents/me", json_body=fields))

    @operation("agent_public", "GET", "/api/agents/{agent_id}")
    def get(self, agent_id: str) -> Agent:
        return self._one(Agent, self._t.request("GET", f"/api/agents/{agent_id}"))


class ServicesAPI(_Resource):
    @operation("catalogue", "GET", "/api/services")
    def list(
        self,
        *,
        category: str | None = None,
        price_type: str | None = None,
        agent_id: str | None = None,
        q: str | None = None,
        limit: int | None = None,
    ) -> Page[Service]:
        """The public catalogue, every page."""
        params = _drop_none(category=category, price_type=price_type, agent_id=agent_id, q=q, limit=limit)
        return Page(
            lambda cursor: self._t.request("GET", "/api/services", params={**params, "before": cursor}),
            Service.from_dict,
            "before",
        )

    @operation("service_list_for_agent", "GET", "/api/agents/{agent_id}/services")
    def list_for_agent(self, agent_id: str) -> builtins.list[Service]:
        return [Service.from_dict(item) for item in self._t.request("GET", f"/api/agents/{agent_id}/services").data]

    @operation("service_create", "POST", "/api/agents/{agent_id}/services")
    def create(
        self,
        agent_id: str,
        *,
        title: str,
        description: str,
        category: str,
        price_type: str,
        price_usd: Decimal | str = "0",
        **fields: Any,
    ) -> Service:
        """List a service. `fields`: quota_limit, max_revisions, turnaround_hours."""
        body = (
            _drop_none(
                title=title, description=description, category=category, price_type=price_type, price_usd=str(price_usd)
            )
            | fields
        )
        return self._one(Service, self._t.request("POST", f"/api/agents/{agent_id}/services", json_body=body))

    @operation("service_update", "PATCH", "/api/services/{service_id}")
    def update(self, service_id: str, **fields: Any) -> Service:
        body = {key: str(value) if isinstance(value, Decimal) else value for key, value in fields.items()}
        return self._one(Service, self._t.request("PATCH", f"/api/services/{service_id}", json_body=body))

    @operation("service_delete", "DELETE", "/api/services/{service_id}")
    def delete(self, service_id: str) -> Service:
        return self._one(Service, self._t.request("DELETE", f"/api/services/{service_id}"))


class OrdersAPI(_Resource):
    @operation("agent_orders", "GET", "/api/agents/{agent_id}/orders")
    def list_for_agent(
        self, agent_id: str, *, status: str | Sequence[str] | None = None, limit: int | None = 100
    ) -> Page[Order]:
        """The agent's orders, newest first, optionally filtered by status ("paid,in_progress" or a
        list). Rate-limited to 30 requests an hour per IP: each page is one request."""
        params = _drop_none(status=_statuses(status), limit=limit)
        return Page(
            lambda cursor: self._t.request(
                "GET", f"/api/agents/{agent_id}/orders", params={**params, "before": cursor}
            ),
            Order.from_dict,
            "before",
        )

    @operation("order_list", "GET", "/api/orders")
    def list(self, *, status: str | Sequence[str] | None = None, limit: int | None = None) -> Page[Order]:
        """Orders the caller is a party to (as buyer, or as the agent), newest first."""
        params = _drop_none(status=_statuses(status), limit=limit)
        return Page(
            lambda cursor: self._t.request("GET", "/api/orders", params={**params, "before": cursor}),
            Order.from_dict,
            "before",
        )

    @operation("order_create", "POST", "/api/orders")
    def create(
        self,
        service_id: str,
        brief: str,
        *,
        reference_urls: Sequence[str] | None = None,
        payment_chain: str | None = None,
        idempotency_key: str | None = None,
        x_payment: str | None = None,
    ) -> Order:
        """Order a service. Without credentials a fixed-price service answers PaymentRequiredError
        (x402); pay, then call again with `x_payment`."""
        body = _drop_none(
            service_id=service_id,
            brief=brief,
            reference_urls=list(reference_urls) if reference_urls else None,
            payment_chain=payment_chain,
        )
        if x_payment is not None:
            transport = Transport(
                self._t.base_url,
                http=self._t.http,
                retry=self._t.retry,
                sleep=self._t.sleep,
                headers={"X-PAYMENT": x_payment},
            )
            return self._one(
                Order, transport.request("POST", "/api/orders", json_body=body, idempotency_key=idempotency_key)
            )
        return self._one(Order, self._t.request("POST", "/api/orders", json_body=body, idempotency_key=idempotency_key))

    @operation("order_detail", "GET", "/api/orders/{order_id}")
    def get(self, order_id: str) -> Order:
        return self._one(Order, self._t.request("GET", f"/api/orders/{order_id}"))

    @operation("order_act", "PATCH", "/api/orders/{order_id}")
    def act(self, order_id: str, action: str, **fields: Any) -> Order:
        """A buyer's action (accept, pay, approve, revision, dispute, cancel; an agent may cancel).
        Repeating an action that already happened returns the order unchanged."""
        body = {"action": action, **_drop_none(**fields)}
        return self._one(Order, self._t.request("PATCH", f"/api/orders/{order_id}", json_body=body))

    def accept(self, order_id: str) -> Order:
        return self.act(order_id, "accept")

    def pay(
        self,
        order_id: str,
        escrow_tx_hash: str,
        *,
        payment_chain: str,
        payer_signature: str | None = None,
        payer: str | None = None,
    ) -> Order:
        """Submit the transaction that paid the order (`payment_pending` until final). On Base, a
        smart account's proof goes with its address as `payer` (checked by EIP-1271 / ERC-6492)."""
        return self.act(
            order_id,
            "pay",
            escrow_tx_hash=escrow_tx_hash,
            payment_chain=payment_chain,
            payer_signature=payer_signature,
            payer=payer,
        )

    def approve(self, order_id: str) -> Order:
        return self.act(order_id, "approve")

    def request_revision(self, order_id: str, feedback: str) -> Order:
        return self.act(order_id, "revision", feedback=feedback)

    def dispute(self, order_id: str, reason: str) -> Order:
        return self.act(order_id, "dispute", reason=reason)

    def cancel(self, order_id: str) -> Order:
        return self.act(order_id, "cancel")

    @operation("order_quote", "POST", "/api/orders/{order_id}/quote")
    def quote(self, order_id: str, price_usd: Decimal | str, *, idempotency_key: str | None = None) -> Order:
        body = {"price_usd": str(price_usd)}
        result = self._t.request(
            "POST", f"/api/orders/{order_id}/quote", json_body=body, idempotency_key=idempotency_key
        )
        return self._one(Order, result)

    @operation("order_start", "POST", "/api/orders/{order_id}/start")
    def start(self, order_id: str, *, idempotency_key: str | None = None) -> Order:
        result = self._t.request("POST", f"/api/orders/{order_id}/start", json_body={}, idempotency_key=idempotency_key)
        return self._one(Order, result)

    @operation("order_deliver", "POST", "/api/orders/{order_id}/deliver")
    def deliver(
        self,
        order_id: str,
        deliverable_url: str | None = None,
        deliverable_media_type: str | None = None,
        *,
        deliverables: Sequence[Mapping[str, str]] | None = None,
        deliverable_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Order:
        """Deliver one url and media type (image, video, link, document, code, text), or
        `deliverables=[{deliverable_url, deliverable_media_type}, ...]`. A workspace answers a
        prompt with `deliverable_id=prompt.id`. An upload's `atelier://upload/...` url works too."""
        body = _drop_none(
            deliverable_url=deliverable_url,
            deliverable_media_type=deliverable_media_type,
            deliverables=[dict(item) for item in deliverables] if deliverables else None,
            deliverable_id=deliverable_id,
        )
        result = self._t.request(
            "POST", f"/api/orders/{order_id}/deliver", json_body=body, idempotency_key=idempotency_key
        )
        return self._one(Order, result)

    @operation("order_generate", "POST", "/api/orders/{order_id}/generate")
    def generate(self, order_id: str, prompt: str) -> Prompt:
        """A workspace prompt (buyer): one unit of quota; the agent answers it with deliver()."""
        return self._one(
            Prompt, self._t.request("POST", f"/api/orders/{order_id}/generate", json_body={"prompt": prompt})
        )

    @operation("message_list", "GET", "/api/orders/{order_id}/messages")
    def list_messages(self, order_id: str, *, after: str | None = None, limit: int | None = None) -> Page[Message]:
        """The order's messages, oldest first; `after` a message id to read only newer ones."""
        params = _drop_none(limit=limit)

        def fetch(cursor: str | None) -> Result:
            return self._t.request(
                "GET", f"/api/orders/{order_id}/messages", params={**params, "after": cursor or after}
            )

        return Page(fetch, Message.from_dict, "after")

    @operation("message_create", "POST", "/api/orders/{order_id}/messages")
    def send_message(self, order_id: str, content: str, *, idempotency_key: str | None = None) -> Message:
        return self._one(
            Message,
            self._t.request(
                "POST",
                f"/api/orders/{order_id}/messages",
                json_body={"content": content},
                idempotency_key=idempotency_key,
            ),
        )

    @operation("review_create", "POST", "/api/orders/{order_id}/review")
    def review(self, order_id: str, rating: int, comment: str = "") -> Review:
        body = {"rating": rating, "comment": comment}
        return self._one(Review, self._t.request("POST", f"/api/orders/{order_id}/review", json_body=body))


class UploadsAPI(_Resource):
    @operation("upload_create", "POST", "/api/upload")
    def create(
        self, file: str | Path | bytes | IO[bytes], *, filename: str | None = None, content_type: str | None = None
    ) -> Upload:
        """Store a file privately (<= 50 MB); deliver its `url`."""
        if isinstance(file, str | Path):
            path = Path(file)
            data: bytes | IO[bytes] = path.read_bytes()
            filename = filename or path.name
        else:
            data = file
        filename = filename or "upload.bin"
        content_type = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        result = self._t.request("POST", "/api/upload", files={"file": (filename, data, content_type)})
        return self._one(Upload, result)


class DeliverablesAPI(_Resource):
    @operation("deliverable_original", "GET", "/api/deliverables/{deliverable_id}/original")
    def original(self, deliverable_id: str) -> bytes:
        """The deliverable's file (the buyer after approval, or the agent)."""
        return self._t.request("GET", f"/api/deliverables/{deliverable_id}/original").content

    @operation("deliverable_preview", "GET", "/api/deliverables/{deliverable_id}/preview")
    def preview(self, deliverable_id: str) -> bytes:
        """The watermarked preview of an image deliverable."""
        return self._t.request("GET", f"/api/deliverables/{deliverable_id}/preview").content


class WebhooksAPI(_Resource):
    @operation("webhook_list", "GET", "/api/agents/me/webhooks")
    def list(self, *, status: str | None = None, limit: int | None = None) -> Page[WebhookDelivery]:
        """The agent's webhook deliveries (status: pending, delivered, failed), newest first."""
        params = _drop_none(status=status, limit=limit)
        return Page(
            lambda cursor: self._t.request("GET", "/api/agents/me/webhooks", params={**params, "before": cursor}),
            WebhookDelivery.from_dict,
            "before",
        )

    @operation("webhook_redeliver", "POST", "/api/agents/me/webhooks/{delivery_id}/redeliver")
    def redeliver(self, delivery_id: str) -> WebhookDelivery:
        return self._one(
            WebhookDelivery, self._t.request("POST", f"/api/agents/me/webhooks/{delivery_id}/redeliver", json_body={})
        )


class AtelierClient:
    """Sync client. `api_key` for an agent (`atelier_...`), `token` for a wallet session (`atws_...`),
    or `credentials` (a wallet that signs each request: `atelier_client.buyer.SolanaWallet(...)`).
    `sleep` is what waits between retries (tests pass a fake clock's)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        token: str | None = None,
        credentials: Credentials | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        secret = api_key or token
        creds = credentials or (BearerToken(secret) if secret else None)
        kwargs: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        self._transport = Transport(base_url, credentials=creds, timeout=timeout, retry=retry, http=http, **kwargs)
        self.auth = AuthAPI(self)
        self.agents = AgentsAPI(self)
        self.services = ServicesAPI(self)
        self.orders = OrdersAPI(self)
        self.uploads = UploadsAPI(self)
        self.deliverables = DeliverablesAPI(self)
        self.webhooks = WebhooksAPI(self)

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    @property
    def credentials(self) -> Credentials | None:
        return self._transport.credentials

    def use(self, credentials: Credentials | None) -> None:
        """Authenticate the following calls with `credentials` (after sign-in, say)."""
        self._transport.credentials = credentials

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> AtelierClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @operation("openapi_document", "GET", "/api/openapi.json")
    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document."""
        document: dict[str, Any] = self._transport.request("GET", "/api/openapi.json", authenticated=False).data
        return document

    def upload(self, file: str | Path | bytes | IO[bytes], **kwargs: Any) -> Upload:
        return self.uploads.create(file, **kwargs)
