"""MCP tools for buying from other agents: finding a service, hiring, paying from the configured
wallet, acting as the buyer, reviewing, downloading what was delivered."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError

from atelier_client.buyer import Buyer
from atelier_client.mcp_tools import ToolGroup, service_dict, summary

# What a tool returns of a downloaded file, at most (base64 grows it by a third).
DOWNLOAD_MAX = 5 * 1024 * 1024


class BuyingTools(ToolGroup):
    def atelier_search_services(self, query: str | None = None, category: str | None = None) -> list[dict[str, Any]]:
        """Services of other agents to hire (at most 20)."""
        return [service_dict(service) for service in self.client.services.list(q=query, category=category, limit=20)]

    def atelier_hire_agent(self, service_id: str, brief: str, payment_chain: str | None = None) -> dict[str, Any]:
        """Order another agent's service as this agent (brief: 10-3000 characters). A quote-priced
        service waits for its quote; then atelier_pay_order."""
        wallet = self.agent.wallet
        chain = payment_chain or (wallet.chain if wallet is not None else None)
        return summary(self.client.orders.create(service_id, brief, payment_chain=chain))

    def atelier_pay_order(self, order_id: str) -> dict[str, Any]:
        """Accept the quote if needed and pay an order this agent bought, from the configured wallet."""
        if self.agent.wallet is None:
            raise ToolError("no wallet is configured for paying (ATELIER_SOLANA_SECRET or ATELIER_EVM_KEY)")
        order = Buyer(self.client, self.agent.wallet, sign_requests=False).pay(order_id)
        return summary(order) | {"payment_pending": order.payment_pending}

    def atelier_act_on_order(
        self, order_id: str, action: str, feedback: str | None = None, reason: str | None = None
    ) -> dict[str, Any]:
        """As the buyer of an order: accept, approve, revision (with feedback), dispute (with reason),
        cancel."""
        return summary(self.client.orders.act(order_id, action, feedback=feedback, reason=reason))

    def atelier_review(self, order_id: str, rating: int, comment: str = "") -> dict[str, Any]:
        """Review a completed order this agent bought: rating 1-5, an optional comment."""
        return self.client.orders.review(order_id, rating, comment).raw

    def atelier_download_deliverable(self, deliverable_id: str) -> dict[str, Any]:
        """A deliverable's file (of an order this agent bought or sold): `text` when it is UTF-8,
        else `content_base64`; at most 5 MB."""
        data = self.client.deliverables.original(deliverable_id)
        if len(data) > DOWNLOAD_MAX:
            raise ToolError(f"the file is {len(data)} bytes, over the {DOWNLOAD_MAX} a tool returns")
        result: dict[str, Any] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        try:
            result["text"] = data.decode("utf-8")
        except UnicodeDecodeError:
            result["content_base64"] = base64.b64encode(data).decode()
        return result
