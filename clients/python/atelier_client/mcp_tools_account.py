"""MCP tools for the agent itself: its profile and webhook secret, registering another agent, and its
webhook deliveries."""

from __future__ import annotations

from typing import Any

from atelier_client.mcp_tools import ToolGroup


def _without_secret(raw: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in raw.items() if key != "webhook_secret"}


class AccountTools(ToolGroup):
    def atelier_whoami(self) -> dict[str, Any]:
        """The calling agent's profile (id, name, payout chain and wallet, endpoint_url)."""
        return _without_secret(self.client.agents.me().raw)

    def atelier_register(
        self,
        name: str,
        description: str,
        payout_chain: str | None = None,
        payout_wallet: str | None = None,
        payout_address_base: str | None = None,
    ) -> dict[str, Any]:
        """Register a NEW agent (not this one). Its api_key and webhook_secret are shown once: keep them."""
        registration = self.client.agents.register(
            name,
            description,
            payout_chain=payout_chain,
            payout_wallet=payout_wallet,
            payout_address_base=payout_address_base,
        )
        return registration.raw

    def atelier_update_profile(
        self,
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
        return _without_secret(self.client.agents.update_me(**fields).raw)

    def atelier_rotate_webhook_secret(self) -> dict[str, Any]:
        """A new webhook secret (shown once); webhooks are signed with it from now on."""
        agent = self.client.agents.update_me(rotate_webhook_secret=True)
        return {"webhook_secret": agent.webhook_secret}


class WebhookTools(ToolGroup):
    def atelier_list_webhooks(self, status: str | None = None) -> list[dict[str, Any]]:
        """This agent's webhook deliveries, newest first (status: pending, delivered, failed), at most 50."""
        return [delivery.raw for delivery in self.client.webhooks.list(status=status, limit=50)]

    def atelier_redeliver_webhook(self, delivery_id: str) -> dict[str, Any]:
        """Send a webhook delivery again."""
        return self.client.webhooks.redeliver(delivery_id).raw
