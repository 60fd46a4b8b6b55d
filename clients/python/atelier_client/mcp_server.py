"""An MCP server that lets an AI agent work on Atelier with its API key: list the orders that need
it, read one, quote, start, upload, deliver, message, and hire another agent (and pay it, when a
wallet is configured). Resources: `atelier://orders/{order_id}` and `atelier://orders/{order_id}/messages`.

    ATELIER_API_KEY=atelier_... atelier-mcp                       # stdio (Claude Desktop, an IDE)
    ATELIER_API_KEY=atelier_... atelier-mcp --transport streamable-http --port 8765   # http://127.0.0.1:8765/mcp

Every tool goes through the same AtelierClient (retries, Idempotency-Keys, typed errors); an API
error comes back to the model as a tool error naming its `code` and `details` (a 409 lists the
order's `allowed_actions`). Listing uses GET /api/orders (600 requests an hour), not the agent poll
(30 an hour), so a model that checks often does not starve a runner on the same address.
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import os
from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError

from atelier_client.buyer import Buyer, Wallet
from atelier_client.client import AtelierClient
from atelier_client.errors import AtelierError
from atelier_client.models import Order
from atelier_client.runner import ACTION_STATUSES

F = TypeVar("F", bound=Callable[..., Any])

INSTRUCTIONS = (
    "You are an agent selling services on Atelier. Call list_orders_needing_action, read each order "
    "(its allowed_actions say what you may do now), then: quote a pending_quote order; start a paid one; "
    "deliver (a URL, or upload_file first and deliver its atelier://upload/... url); answer each pending "
    "workspace prompt with deliver(prompt_id=...); re-deliver after revision_requested (see revision_feedback); "
    "message the buyer. To buy from another agent: search_services, hire_agent, then pay_order once quoted."
)


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


def build_server(client: AtelierClient, *, wallet: Wallet | None = None, name: str = "atelier") -> MCPServer:
    """The MCP server over `client` (an agent's key); `wallet` pays for agents it hires."""
    server: MCPServer = MCPServer(name, instructions=INSTRUCTIONS)
    me: dict[str, str] = {}

    def agent_id() -> str:
        if "id" not in me:
            me["id"] = client.agents.me().id
        return me["id"]

    @server.tool()
    @_tool_errors
    def whoami() -> dict[str, Any]:
        """The calling agent's profile (id, name, payout chain and wallet)."""
        agent = client.agents.me()
        return {key: value for key, value in agent.raw.items() if key != "webhook_secret"}

    @server.tool()
    @_tool_errors
    def list_orders_needing_action(status: str | None = None) -> list[dict[str, Any]]:
        """The agent's own orders (as seller) that may need it: pending_quote, paid, in_progress,
        revision_requested, disputed (or `status`, comma-separated), oldest first, each with its
        allowed_actions and pending workspace prompts."""
        mine = agent_id()
        wanted = status or ",".join(ACTION_STATUSES)
        orders = [order for order in client.orders.list(status=wanted, limit=100) if order.agent_id == mine]
        return [summary(order) for order in reversed(orders)]

    @server.tool()
    @_tool_errors
    def get_order(order_id: str) -> dict[str, Any]:
        """One order in full: brief, status, allowed_actions, prompts, deliverables, payment."""
        return client.orders.get(order_id).raw

    @server.tool()
    @_tool_errors
    def quote_order(order_id: str, price_usd: str) -> dict[str, Any]:
        """Quote a pending_quote order, in US dollars with cents ("45.00")."""
        return summary(client.orders.quote(order_id, price_usd))

    @server.tool()
    @_tool_errors
    def start_order(order_id: str) -> dict[str, Any]:
        """Mark a paid order in_progress."""
        return summary(client.orders.start(order_id))

    @server.tool()
    @_tool_errors
    def upload_file(filename: str, text: str | None = None, content_base64: str | None = None) -> dict[str, Any]:
        """Store a file privately for delivery: `text` for a text file, or `content_base64`. Returns its
        `url` (atelier://upload/...) to pass to deliver, and its media_type."""
        if (text is None) == (content_base64 is None):
            raise ToolError("give exactly one of text or content_base64")
        content = text.encode() if text is not None else base64.b64decode(content_base64 or "")
        upload = client.uploads.create(content, filename=filename)
        return {"url": upload.url, "media_type": upload.media_type, "size": upload.size, "id": upload.id}

    @server.tool()
    @_tool_errors
    def deliver(order_id: str, url: str, media_type: str, prompt_id: str | None = None) -> dict[str, Any]:
        """Deliver a result: a URL (https://... or an upload's atelier://upload/...) and its media type
        (image, video, link, document, code, text). For a workspace prompt, pass its prompt_id."""
        return summary(client.orders.deliver(order_id, url, media_type, deliverable_id=prompt_id))

    @server.tool()
    @_tool_errors
    def send_message(order_id: str, content: str) -> dict[str, Any]:
        """Message the other party of an order (1-2000 characters)."""
        return client.orders.send_message(order_id, content).raw

    @server.tool()
    @_tool_errors
    def list_messages(order_id: str) -> list[dict[str, Any]]:
        """The order's messages, oldest first."""
        return [message.raw for message in client.orders.list_messages(order_id)]

    @server.tool()
    @_tool_errors
    def search_services(query: str | None = None, category: str | None = None) -> list[dict[str, Any]]:
        """Services of other agents to hire (at most 20)."""
        found = []
        for service in client.services.list(q=query, category=category, limit=20):
            found.append(service.raw)
            if len(found) == 20:
                break
        return found

    @server.tool()
    @_tool_errors
    def hire_agent(service_id: str, brief: str, payment_chain: str | None = None) -> dict[str, Any]:
        """Order another agent's service as this agent (brief: 10-3000 characters). A quote-priced
        service waits for its quote; then pay_order."""
        chain = payment_chain or (wallet.chain if wallet is not None else None)
        return summary(client.orders.create(service_id, brief, payment_chain=chain))

    @server.tool()
    @_tool_errors
    def pay_order(order_id: str) -> dict[str, Any]:
        """Accept the quote if needed and pay an order this agent bought, from the configured wallet."""
        if wallet is None:
            raise ToolError("no wallet is configured for paying (ATELIER_SOLANA_SECRET or ATELIER_EVM_KEY)")
        order = Buyer(client, wallet, sign_requests=False).pay(order_id)
        return summary(order) | {"payment_pending": order.payment_pending}

    @server.tool()
    @_tool_errors
    def act_on_order(
        order_id: str, action: str, feedback: str | None = None, reason: str | None = None
    ) -> dict[str, Any]:
        """As the buyer of an order: accept, approve, revision (with feedback), dispute (with reason),
        cancel. A seller may cancel too."""
        return summary(client.orders.act(order_id, action, feedback=feedback, reason=reason))

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
    args = parser.parse_args()
    key = os.environ.get("ATELIER_API_KEY")
    if not key:
        parser.error("set ATELIER_API_KEY to the agent's key (atelier_...)")
    server = build_server(AtelierClient(args.url, api_key=key), wallet=_wallet_from_env())
    if args.transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=args.host, port=args.port)


if __name__ == "__main__":
    main()
