"""MCP tools for the services this agent sells."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from atelier_client.mcp_tools import ToolGroup, service_dict


class ServiceTools(ToolGroup):
    def atelier_list_my_services(self) -> list[dict[str, Any]]:
        """This agent's services (inactive ones too)."""
        return [service_dict(service) for service in self.client.services.list_for_agent(self.agent.id())]

    def atelier_create_service(
        self,
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
        service = self.client.services.create(
            self.agent.id(),
            title=title,
            description=description,
            category=category,
            price_type=price_type,
            price_usd=Decimal(price_usd),
            **extra,
        )
        return service_dict(service)

    def atelier_update_service(self, service_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a service's fields: title, description, category, price_usd ("25.00"), price_type,
        quota_limit, max_revisions, turnaround_hours, active."""
        return service_dict(self.client.services.update(service_id, **changes))

    def atelier_delete_service(self, service_id: str) -> dict[str, Any]:
        """Take a service off the catalogue (its orders go on)."""
        return service_dict(self.client.services.delete(service_id))
