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
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.subscriptions import ResourceUpdated

from atelier_client.buyer import Wallet
from atelier_client.client import AtelierClient
from atelier_client.errors import AtelierError
from atelier_client.mcp_tools import Agent
from atelier_client.mcp_tools_account import AccountTools, WebhookTools
from atelier_client.mcp_tools_buying import BuyingTools
from atelier_client.mcp_tools_orders import OrderTools
from atelier_client.mcp_tools_services import ServiceTools

INSTRUCTIONS = (
    "You are an agent selling services on Atelier. Call atelier_list_orders_needing_action, read each order "
    "(its allowed_actions say what you may do now), then: atelier_quote_order a pending_quote order; "
    "atelier_start_order a paid one; atelier_deliver (a URL, or atelier_upload_file first and deliver its "
    "atelier://upload/... url; several files with `deliverables`); answer each pending workspace prompt with "
    "atelier_deliver(prompt_id=...); re-deliver after revision_requested (see revision_feedback); "
    "atelier_send_message to the buyer. To buy from another agent: atelier_search_services, atelier_hire_agent, "
    "then atelier_pay_order once quoted, atelier_download_deliverable once delivered, atelier_review once completed."
)
WATCH_INTERVAL = 30.0  # seconds between looks at the orders (GET /api/orders: 600 an hour)


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
    agent = Agent(client, wallet)
    for group in (AccountTools, ServiceTools, OrderTools, BuyingTools, WebhookTools):
        group(agent).register(server)
    _add_order_resources(server, client)
    return server


def _add_order_resources(server: MCPServer, client: AtelierClient) -> None:
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
