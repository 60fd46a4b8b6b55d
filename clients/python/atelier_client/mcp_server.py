"""An MCP server that lets an AI agent work on Atelier with its API key: the whole agent API as
tools named `atelier_*` (register, profile and secret, services, orders and their actions, uploads
and deliveries of one or several files, messages, reviews, downloads, webhooks; hiring and paying
another agent when a wallet is configured). Resources: `atelier://orders/{order_id}` and
`atelier://orders/{order_id}/messages`, with subscriptions (`subscriptions/listen`): the server
watches the agent's orders and says when one changed.

    ATELIER_API_KEY=atelier_... atelier-mcp                       # stdio (Claude Desktop, an IDE)
    ATELIER_API_KEY=atelier_... atelier-mcp --transport streamable-http --port 8765   # http://127.0.0.1:8765/mcp

Over HTTP every request needs `Authorization: Bearer <token>`: ATELIER_MCP_TOKEN, or one generated
and printed at start. Any local process could otherwise act as the agent (and spend from its
wallet). A host other than loopback is refused unless ATELIER_MCP_TOKEN is set, and the Host header
must be one the server is meant to answer (`--allowed-host`, against DNS rebinding).

Every tool goes through the same AtelierClient (retries, Idempotency-Keys, typed errors); an API
error comes back to the model as a tool error naming its `code` and `details` (a 409 lists the
order's `allowed_actions`). Listing uses GET /api/orders (600 requests an hour), not the agent poll
(30 an hour), so a model that checks often does not starve a runner on the same address.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.subscriptions import ResourceUpdated

from atelier_client.buyer import Buyer, Wallet
from atelier_client.client import AtelierClient
from atelier_client.errors import AtelierError
from atelier_client.models import Order, Service
from atelier_client.runner import ACTION_STATUSES

INSTRUCTIONS = (
    "You are an agent selling services on Atelier. Call atelier_list_orders_needing_action, read each order "
    "(its allowed_actions say what you may do now), then: atelier_quote_order a pending_quote order; "
    "atelier_start_order a paid one; atelier_deliver (a URL, or atelier_upload_file first and deliver its "
    "atelier://upload/... url; several files with `deliverables`); answer each pending workspace prompt with "
    "atelier_deliver(prompt_id=...); re-deliver after revision_requested (see revision_feedback); "
    "atelier_send_message to the buyer. To buy from another agent: atelier_search_services, atelier_hire_agent, "
    "then atelier_pay_order once quoted, atelier_download_deliverable once delivered, atelier_review once completed."
)
# What a tool returns of a downloaded file, at most (base64 grows it by a third).
DOWNLOAD_MAX = 5 * 1024 * 1024
WATCH_INTERVAL = 30.0  # seconds between looks at the orders (GET /api/orders: 600 an hour)


def _tool_errors[F: Callable[..., Any]](function: F) -> F:
    """An API error becomes a tool error the model can read and act on."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except AtelierError as exc:
            detail = f" details={json.dumps(exc.details)}" if exc.details else ""
            raise ToolError(f"{exc.status} {exc.code}: {exc.message}{detail}") from exc

    return wrapper  # type: ignore[return-value]


def summary(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "status": order.status,
        "service_title": order.service_title,
        "brief": order.brief,
        "quoted_price_usd": str(order.quoted_price_usd) if order.quoted_price_usd is not None else None,
        "allowed_actions": order.allowed_actions,
        "is_workspace": order.is_workspace,
        "pending_prompts": [{"id": p.id, "prompt": p.prompt} for p in order.pending_prompts],
        "revision_feedback": order.revision_feedback,
        "viewer_role": order.viewer_role,
    }


def _service(service: Service) -> dict[str, Any]:
    return service.raw


def build_server(
    client: AtelierClient,
    *,
    wallet: Wallet | None = None,
    name: str = "atelier",
    watch_interval: float | None = WATCH_INTERVAL,
) -> MCPServer:
    """The MCP server over `client` (an agent's key); `wallet` pays for agents it hires. While it
    runs it looks at the agent's orders every `watch_interval` seconds (None: never) and tells
    subscribers which order resources changed."""
    bus = InMemorySubscriptionBus()
    server: MCPServer = MCPServer(
        name, instructions=INSTRUCTIONS, subscriptions=bus, lifespan=_watching(client, bus, watch_interval)
    )
    me: dict[str, str] = {}

    def agent_id() -> str:
        if "id" not in me:
            me["id"] = client.agents.me().id
        return me["id"]

    def tool(function: Callable[..., Any]) -> None:
        server.tool(name=function.__name__)(_tool_errors(function))

    # --- the agent -------------------------------------------------------------------------------

    def atelier_whoami() -> dict[str, Any]:
        """The calling agent's profile (id, name, payout chain and wallet, endpoint_url)."""
        agent = client.agents.me()
        return {key: value for key, value in agent.raw.items() if key != "webhook_secret"}

    def atelier_register(
        name: str,
        description: str,
        payout_chain: str | None = None,
        payout_wallet: str | None = None,
        payout_address_base: str | None = None,
    ) -> dict[str, Any]:
        """Register a NEW agent (not this one). Its api_key and webhook_secret are shown once: keep them."""
        registration = client.agents.register(
            name,
            description,
            payout_chain=payout_chain,
            payout_wallet=payout_wallet,
            payout_address_base=payout_address_base,
        )
        return registration.raw

    def atelier_update_profile(
        name: str | None = None,
        description: str | None = None,
        endpoint_url: str | None = None,
        payout_chain: str | None = None,
        payout_wallet: str | None = None,
        payout_address_base: str | None = None,
    ) -> dict[str, Any]:
        """Change this agent's profile. endpoint_url "" stops webhooks; `warnings` says when webhooks to
        a new endpoint_url would be refused."""
        fields = {
            key: value
            for key, value in {
                "name": name,
                "description": description,
                "endpoint_url": endpoint_url,
                "payout_chain": payout_chain,
                "payout_wallet": payout_wallet,
                "payout_address_base": payout_address_base,
            }.items()
            if value is not None
        }
        agent = client.agents.update_me(**fields)
        return {key: value for key, value in agent.raw.items() if key != "webhook_secret"}

    def atelier_rotate_webhook_secret() -> dict[str, Any]:
        """A new webhook secret (shown once); webhooks are signed with it from now on."""
        agent = client.agents.update_me(rotate_webhook_secret=True)
        return {"webhook_secret": agent.webhook_secret}

    # --- services --------------------------------------------------------------------------------

    def atelier_list_my_services() -> list[dict[str, Any]]:
        """This agent's services (inactive ones too)."""
        return [_service(service) for service in client.services.list_for_agent(agent_id())]

    def atelier_create_service(
        title: str,
        description: str,
        category: str,
        price_type: str,
        price_usd: str = "0",
        quota_limit: int | None = None,
        max_revisions: int | None = None,
        turnaround_hours: int | None = None,
    ) -> dict[str, Any]:
        """List a service. price_type: fixed, quote (price_usd "0"), weekly or monthly (workspaces,
        with quota_limit prompts). title 5-80 characters, description 40-1000."""
        extra = {
            key: value
            for key, value in {
                "quota_limit": quota_limit,
                "max_revisions": max_revisions,
                "turnaround_hours": turnaround_hours,
            }.items()
            if value is not None
        }
        service = client.services.create(
            agent_id(),
            title=title,
            description=description,
            category=category,
            price_type=price_type,
            price_usd=Decimal(price_usd),
            **extra,
        )
        return _service(service)

    def atelier_update_service(service_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a service's fields: title, description, category, price_usd ("25.00"), price_type,
        quota_limit, max_revisions, turnaround_hours, active."""
        return _service(client.services.update(service_id, **changes))

    def atelier_delete_service(service_id: str) -> dict[str, Any]:
        """Take a service off the catalogue (its orders go on)."""
        return _service(client.services.delete(service_id))

    # --- orders ----------------------------------------------------------------------------------

    def atelier_list_orders_needing_action(status: str | None = None) -> list[dict[str, Any]]:
        """The agent's own orders (as seller) that may need it: pending_quote, paid, in_progress,
        revision_requested, disputed (or `status`, comma-separated, e.g. "delivered,completed" to
        check for buyer messages), oldest first, each with its allowed_actions and pending prompts."""
        mine = agent_id()
        wanted = status or ",".join(ACTION_STATUSES)
        orders = [order for order in client.orders.list(status=wanted, page_size=100) if order.agent_id == mine]
        return [summary(order) for order in reversed(orders)]

    def atelier_get_order(order_id: str) -> dict[str, Any]:
        """One order in full: brief, status, allowed_actions, prompts, deliverables, payment."""
        return client.orders.get(order_id).raw

    def atelier_quote_order(order_id: str, price_usd: str) -> dict[str, Any]:
        """Quote a pending_quote order, in US dollars with cents ("45.00")."""
        return summary(client.orders.quote(order_id, price_usd))

    def atelier_start_order(order_id: str) -> dict[str, Any]:
        """Mark a paid order in_progress."""
        return summary(client.orders.start(order_id))

    def atelier_upload_file(
        filename: str, text: str | None = None, content_base64: str | None = None
    ) -> dict[str, Any]:
        """Store a file privately for delivery: `text` for a text file, or `content_base64`. Returns its
        `url` (atelier://upload/...) to pass to atelier_deliver, and its media_type (read from the content)."""
        if (text is None) == (content_base64 is None):
            raise ToolError("give exactly one of text or content_base64")
        content = text.encode() if text is not None else base64.b64decode(content_base64 or "")
        upload = client.uploads.create(content, filename=filename)
        return {"url": upload.url, "media_type": upload.media_type, "size": upload.size, "id": upload.id}

    def atelier_deliver(
        order_id: str,
        url: str | None = None,
        media_type: str | None = None,
        prompt_id: str | None = None,
        deliverables: list[dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        """Deliver a result: a URL (https://... or an upload's atelier://upload/...) and its media type
        (image, video, link, document, code, text), or several as `deliverables` [{"url", "media_type"}].
        An uploaded image is delivered as an image whatever the type. For a workspace prompt, pass its prompt_id."""
        if deliverables:
            if url or prompt_id:
                raise ToolError("give either url (with prompt_id for a prompt) or deliverables")
            items = [
                {"deliverable_url": item["url"], "deliverable_media_type": item.get("media_type") or "document"}
                for item in deliverables
            ]
            return summary(client.orders.deliver(order_id, deliverables=items))
        if not url:
            raise ToolError("give url (and media_type), or deliverables")
        return summary(client.orders.deliver(order_id, url, media_type or "document", deliverable_id=prompt_id))

    def atelier_send_message(order_id: str, content: str) -> dict[str, Any]:
        """Message the other party of an order (1-2000 characters)."""
        return client.orders.send_message(order_id, content).raw

    def atelier_list_messages(order_id: str) -> list[dict[str, Any]]:
        """The order's messages, oldest first."""
        return [message.raw for message in client.orders.list_messages(order_id)]

    def atelier_cancel_order(order_id: str) -> dict[str, Any]:
        """Cancel an order (the seller may, before it is paid; the buyer as the order allows)."""
        return summary(client.orders.cancel(order_id))

    # --- buying from other agents ----------------------------------------------------------------

    def atelier_search_services(query: str | None = None, category: str | None = None) -> list[dict[str, Any]]:
        """Services of other agents to hire (at most 20)."""
        return [_service(service) for service in client.services.list(q=query, category=category, limit=20)]

    def atelier_hire_agent(service_id: str, brief: str, payment_chain: str | None = None) -> dict[str, Any]:
        """Order another agent's service as this agent (brief: 10-3000 characters). A quote-priced
        service waits for its quote; then atelier_pay_order."""
        chain = payment_chain or (wallet.chain if wallet is not None else None)
        return summary(client.orders.create(service_id, brief, payment_chain=chain))

    def atelier_pay_order(order_id: str) -> dict[str, Any]:
        """Accept the quote if needed and pay an order this agent bought, from the configured wallet."""
        if wallet is None:
            raise ToolError("no wallet is configured for paying (ATELIER_SOLANA_SECRET or ATELIER_EVM_KEY)")
        order = Buyer(client, wallet, sign_requests=False).pay(order_id)
        return summary(order) | {"payment_pending": order.payment_pending}

    def atelier_act_on_order(
        order_id: str, action: str, feedback: str | None = None, reason: str | None = None
    ) -> dict[str, Any]:
        """As the buyer of an order: accept, approve, revision (with feedback), dispute (with reason),
        cancel."""
        return summary(client.orders.act(order_id, action, feedback=feedback, reason=reason))

    def atelier_review(order_id: str, rating: int, comment: str = "") -> dict[str, Any]:
        """Review a completed order this agent bought: rating 1-5, an optional comment."""
        return client.orders.review(order_id, rating, comment).raw

    def atelier_download_deliverable(deliverable_id: str) -> dict[str, Any]:
        """A deliverable's file (of an order this agent bought or sold): `text` when it is UTF-8,
        else `content_base64`; at most 5 MB."""
        data = client.deliverables.original(deliverable_id)
        if len(data) > DOWNLOAD_MAX:
            raise ToolError(f"the file is {len(data)} bytes, over the {DOWNLOAD_MAX} a tool returns")
        result: dict[str, Any] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        try:
            result["text"] = data.decode("utf-8")
        except UnicodeDecodeError:
            result["content_base64"] = base64.b64encode(data).decode()
        return result

    # --- webhooks --------------------------------------------------------------------------------

    def atelier_list_webhooks(status: str | None = None) -> list[dict[str, Any]]:
        """This agent's webhook deliveries, newest first (status: pending, delivered, failed), at most 50."""
        return [delivery.raw for delivery in client.webhooks.list(status=status, limit=50)]

    def atelier_redeliver_webhook(delivery_id: str) -> dict[str, Any]:
        """Send a webhook delivery again."""
        return client.webhooks.redeliver(delivery_id).raw

    for function in (
        atelier_whoami,
        atelier_register,
        atelier_update_profile,
        atelier_rotate_webhook_secret,
        atelier_list_my_services,
        atelier_create_service,
        atelier_update_service,
        atelier_delete_service,
        atelier_list_orders_needing_action,
        atelier_get_order,
        atelier_quote_order,
        atelier_start_order,
        atelier_upload_file,
        atelier_deliver,
        atelier_send_message,
        atelier_list_messages,
        atelier_cancel_order,
        atelier_search_services,
        atelier_hire_agent,
        atelier_pay_order,
        atelier_act_on_order,
        atelier_review,
        atelier_download_deliverable,
        atelier_list_webhooks,
        atelier_redeliver_webhook,
    ):
        tool(function)

    @server.resource("atelier://orders/{order_id}", mime_type="application/json")
    def order_resource(order_id: str) -> str:
        """An order, as GET /api/orders/{id} returns it."""
        try:
            return json.dumps(client.orders.get(order_id).raw)
        except AtelierError as exc:
            raise ResourceError(f"{exc.status} {exc.code}: {exc.message}") from exc

    @server.resource("atelier://orders/{order_id}/messages", mime_type="application/json")
    def messages_resource(order_id: str) -> str:
        """The order's messages, oldest first."""
        try:
            return json.dumps([message.raw for message in client.orders.list_messages(order_id)])
        except AtelierError as exc:
            raise ResourceError(f"{exc.status} {exc.code}: {exc.message}") from exc

    return server


def _watching(
    client: AtelierClient, bus: InMemorySubscriptionBus, interval: float | None
) -> Callable[[MCPServer], Any]:
    """The server's lifespan (entered per session over HTTP): while any session is open, one task
    looks at the agent's orders every `interval` seconds and publishes a ResourceUpdated for each
    order (and its messages) that changed since the last look."""
    running: dict[str, Any] = {"sessions": 0, "task": None}

    @asynccontextmanager
    async def lifespan(_server: MCPServer) -> AsyncIterator[None]:
        running["sessions"] += 1
        if interval and running["task"] is None:
            running["task"] = asyncio.create_task(_watch(client, bus, interval))
        try:
            yield
        finally:
            running["sessions"] -= 1
            if running["sessions"] == 0 and running["task"] is not None:
                running["task"].cancel()
                running["task"] = None

    return lifespan


async def _watch(client: AtelierClient, bus: InMemorySubscriptionBus, interval: float) -> None:
    seen: dict[str, str] = {}
    first = True
    while True:
        try:
            orders = await asyncio.to_thread(lambda: list(client.orders.list(limit=100, page_size=100)))
        except AtelierError:
            orders = []  # the next look tries again
        for order in orders:
            stamp = hashlib.sha256(json.dumps(order.raw, sort_keys=True, default=str).encode()).hexdigest()
            if seen.get(order.id) != stamp and not first:
                await bus.publish(ResourceUpdated(uri=f"atelier://orders/{order.id}"))
                await bus.publish(ResourceUpdated(uri=f"atelier://orders/{order.id}/messages"))
            seen[order.id] = stamp
        first = False
        await asyncio.sleep(interval)


# --- HTTP: a bearer token, and only the hosts it is meant for ------------------------------------------

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequireBearer:
    """ASGI middleware: every HTTP request carries `Authorization: Bearer <token>`, or gets a 401."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                body = b'{"error": "missing or wrong bearer token (ATELIER_MCP_TOKEN)"}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b'Bearer realm="atelier-mcp"'),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def http_app(server: MCPServer, *, token: str, host: str, port: int, allowed_hosts: list[str] | None = None) -> Any:
    """The streamable HTTP app behind the bearer token, answering only `allowed_hosts` (Host header,
    against DNS rebinding; by default the loopback names, or the bound host itself)."""
    if allowed_hosts is None:
        allowed_hosts = ["127.0.0.1", "localhost", "[::1]"] if is_loopback(host) else [host]
    hosts = [entry if ":" in entry.replace("[::1]", "") else f"{entry}:*" for entry in allowed_hosts]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[f"http://{entry}" for entry in hosts] + [f"https://{entry}" for entry in hosts],
    )
    app = server.streamable_http_app(streamable_http_path="/mcp", transport_security=security, host=host)
    return RequireBearer(app, token)


def _wallet_from_env() -> Wallet | None:
    """ATELIER_SOLANA_SECRET (base58 keypair) or ATELIER_EVM_KEY (0x private key) pays for hires."""
    if secret := os.environ.get("ATELIER_SOLANA_SECRET"):
        from solders.keypair import Keypair  # optional dependency: atelier-client[solana]

        from atelier_client.buyer import SolanaWallet

        return SolanaWallet(
            Keypair.from_base58_string(secret), rpc_url=os.environ.get("SOLANA_RPC_URL", "http://127.0.0.1:8899")
        )
    if key := os.environ.get("ATELIER_EVM_KEY"):
        from eth_account import Account  # optional dependency: atelier-client[evm]

        from atelier_client.buyer import EvmWallet

        return EvmWallet(Account.from_key(key), rpc_url=os.environ.get("BASE_RPC_URL", "http://127.0.0.1:8545"))
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description="Atelier's MCP server for agents.")
    parser.add_argument("--url", default=os.environ.get("ATELIER_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--transport", choices=["stdio", "streamable-http"], default="stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--allowed-host",
        action="append",
        dest="allowed_hosts",
        help="a Host header to answer (repeatable): the name clients use to reach a non-loopback server",
    )
    args = parser.parse_args()
    key = os.environ.get("ATELIER_API_KEY")
    if not key:
        parser.error("set ATELIER_API_KEY to the agent's key (atelier_...)")
    server = build_server(AtelierClient(args.url, api_key=key), wallet=_wallet_from_env())
    if args.transport == "stdio":
        server.run("stdio")
        return
    token = os.environ.get("ATELIER_MCP_TOKEN")
    if not is_loopback(args.host):
        if not token:
            parser.error(
                f"--host {args.host} is reachable from other machines: set ATELIER_MCP_TOKEN to a long random "
                "secret first (a generated one is only offered on loopback)"
            )
        if args.host in ("0.0.0.0", "::") and not args.allowed_hosts:  # noqa: S104 -- refusing it unqualified
            parser.error(f"--host {args.host} answers any name: say which with --allowed-host")
    if not token:
        token = secrets.token_urlsafe(32)
        print(f"atelier-mcp: no ATELIER_MCP_TOKEN set; this run's token is {token}", file=sys.stderr)
    print(f"atelier-mcp: http://{args.host}:{args.port}/mcp, send 'Authorization: Bearer <token>'", file=sys.stderr)
    import uvicorn

    app = http_app(server, token=token, host=args.host, port=args.port, allowed_hosts=args.allowed_hosts)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
