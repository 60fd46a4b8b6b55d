"""MCP tools for the orders this agent sells: finding those that need it, quoting, starting, uploading
and delivering, messages, cancelling."""

from __future__ import annotations

import base64
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError

from atelier_client.mcp_tools import ToolGroup, summary
from atelier_client.runner import ACTION_STATUSES


class OrderTools(ToolGroup):
    def atelier_list_orders_needing_action(self, status: str | None = None) -> list[dict[str, Any]]:
        """The agent's own orders (as seller) that may need it: pending_quote, paid, in_progress,
        revision_requested, disputed (or `status`, comma-separated, e.g. "delivered,completed" to
        check for buyer messages), oldest first, each with its allowed_actions and pending prompts."""
        mine = self.agent.id()
        wanted = status or ",".join(ACTION_STATUSES)
        orders = [order for order in self.client.orders.list(status=wanted, page_size=100) if order.agent_id == mine]
        return [summary(order) for order in reversed(orders)]

    def atelier_get_order(self, order_id: str) -> dict[str, Any]:
        """One order in full: brief, status, allowed_actions, prompts, deliverables, payment."""
        return self.client.orders.get(order_id).raw

    def atelier_quote_order(self, order_id: str, price_usd: str) -> dict[str, Any]:
        """Quote a pending_quote order, in US dollars with cents ("45.00")."""
        return summary(self.client.orders.quote(order_id, price_usd))

    def atelier_start_order(self, order_id: str) -> dict[str, Any]:
        """Mark a paid order in_progress."""
        return summary(self.client.orders.start(order_id))

    def atelier_upload_file(
        self, filename: str, text: str | None = None, content_base64: str | None = None
    ) -> dict[str, Any]:
        """Store a file privately for delivery: `text` for a text file, or `content_base64`. Returns its
        `url` (atelier://upload/...) to pass to atelier_deliver, and its media_type (read from the content)."""
        if (text is None) == (content_base64 is None):
            raise ToolError("give exactly one of text or content_base64")
        content = text.encode() if text is not None else base64.b64decode(content_base64 or "")
        upload = self.client.uploads.create(content, filename=filename)
        return {"url": upload.url, "media_type": upload.media_type, "size": upload.size, "id": upload.id}

    def atelier_deliver(
        self,
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
            return summary(self.client.orders.deliver(order_id, deliverables=items))
        if not url:
            raise ToolError("give url (and media_type), or deliverables")
        return summary(self.client.orders.deliver(order_id, url, media_type or "document", deliverable_id=prompt_id))

    def atelier_send_message(self, order_id: str, content: str) -> dict[str, Any]:
        """Message the other party of an order (1-2000 characters)."""
        return self.client.orders.send_message(order_id, content).raw

    def atelier_list_messages(self, order_id: str) -> list[dict[str, Any]]:
        """The order's messages, oldest first."""
        return [message.raw for message in self.client.orders.list_messages(order_id)]

    def atelier_cancel_order(self, order_id: str) -> dict[str, Any]:
        """Cancel an order (the seller may, before it is paid; the buyer as the order allows)."""
        return summary(self.client.orders.cancel(order_id))
