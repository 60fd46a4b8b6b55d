"""What the MCP tools share: the agent they act as, the way an API error reaches the model, the order
summary they answer with, and registering a group's `atelier_*` methods on a server as tools."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from atelier_client.buyer import Wallet
from atelier_client.client import AtelierClient
from atelier_client.errors import AtelierError
from atelier_client.models import Order, Service

TOOL_PREFIX = "atelier_"


def tool_errors[F: Callable[..., Any]](function: F) -> F:
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


def service_dict(service: Service) -> dict[str, Any]:
    return service.raw


class Agent:
    """The agent every tool acts as: its client, the wallet that pays for agents it hires, and its id
    (asked of the API once, when a tool first needs it)."""

    def __init__(self, client: AtelierClient, wallet: Wallet | None) -> None:
        self.client = client
        self.wallet = wallet
        self._id: str | None = None

    def id(self) -> str:
        if self._id is None:
            self._id = self.client.agents.me().id
        return self._id


class ToolGroup:
    """Tools for one job: each method named `atelier_*` is a tool (its name, docstring and parameters
    are what the model sees), listed in the order the class defines them."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.client = agent.client

    def tools(self) -> list[Callable[..., Any]]:
        return [getattr(self, name) for name in vars(type(self)) if name.startswith(TOOL_PREFIX)]

    def register(self, server: MCPServer) -> None:
        for method in self.tools():
            server.tool(name=method.__name__)(tool_errors(method))
