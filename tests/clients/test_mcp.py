"""The MCP server in-process, driven by an MCP client session (mcp.Client), against a live server:
the tools complete an order (list, read, quote, upload, deliver, message) and the resources serve
the order and its messages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from atelier_client.buyer import Buyer, SolanaWallet
from atelier_client.mcp_server import build_server
from mcp import Client

from tests.payments import solana_helpers

pytestmark = pytest.mark.slow
USDC = 10**6


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def payload(result: Any) -> Any:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        structured = result.structured_content
        return structured.get("result", structured) if set(structured) == {"result"} else structured
    return json.loads(result.content[0].text)


@pytest.mark.anyio
async def test_an_mcp_client_completes_an_order_through_the_tools(site, clients, chains_up, registered):
    agent_client, registration = registered
    service = agent_client.services.create(
        registration.agent.id,
        title="A short piece",
        description="A few paragraphs of Markdown from your brief, quoted after reading it.",
        category="writing",
        price_type="quote",
    )
    keypair = solana_helpers.new_wallet(chains_up.solana.url, sol=10**9, usdc=100 * USDC)
    buyer = Buyer(clients(site), SolanaWallet(keypair, rpc_url=chains_up.solana.url))
    order = buyer.hire(service.id, "A haiku about a fox who bakes bread at dawn.")

    async with Client(build_server(agent_client)) as mcp:
        tools = {tool.name for tool in (await mcp.list_tools()).tools}
        assert {"list_orders_needing_action", "get_order", "quote_order", "deliver", "upload_file"} <= tools
        assert {"send_message", "hire_agent", "pay_order"} <= tools

        waiting = payload(await mcp.call_tool("list_orders_needing_action", {}))
        assert [(o["id"], o["status"]) for o in waiting] == [(order.id, "pending_quote")]
        quoted = payload(await mcp.call_tool("quote_order", {"order_id": order.id, "price_usd": "12.00"}))
        assert quoted["status"] == "quoted"

        # Not allowed now: the model gets the code and what is allowed.
        refused = await mcp.call_tool("deliver", {"order_id": order.id, "url": "https://e.com/x", "media_type": "link"})
        assert refused.is_error
        assert "409 invalid_transition" in refused.content[0].text

        buyer.pay(order.id)
        paid = payload(await mcp.call_tool("list_orders_needing_action", {}))
        assert [(o["id"], o["status"], "start" in o["allowed_actions"]) for o in paid] == [(order.id, "paid", True)]
        uploaded = payload(await mcp.call_tool("upload_file", {"filename": "haiku.md", "text": "Flour on red paws..."}))
        assert uploaded["url"].startswith("atelier://upload/upl_")
        delivered = payload(
            await mcp.call_tool("deliver", {"order_id": order.id, "url": uploaded["url"], "media_type": "text"})
        )
        assert delivered["status"] == "delivered"
        await mcp.call_tool("send_message", {"order_id": order.id, "content": "Delivered, enjoy!"})
        assert payload(await mcp.call_tool("list_orders_needing_action", {})) == []

        resource = await mcp.read_resource(f"atelier://orders/{order.id}")
        assert json.loads(resource.contents[0].text)["status"] == "delivered"
        messages = await mcp.read_resource(f"atelier://orders/{order.id}/messages")
        assert [m["content"] for m in json.loads(messages.contents[0].text)] == ["Delivered, enjoy!"]

    assert buyer.approve(order.id).status == "completed"


def test_the_server_also_serves_streamable_http(site, clients, registered):
    from starlette.testclient import TestClient

    agent_client, _registration = registered
    app = build_server(agent_client).streamable_http_app(streamable_http_path="/mcp")
    request = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    with TestClient(app) as http:
        response = http.post(
            "/mcp", json=request, headers={"Accept": "application/json, text/event-stream", "Host": "127.0.0.1:8765"}
        )
    assert response.status_code == 200, response.text
    assert "atelier" in response.text


@pytest.mark.anyio
async def test_atelier_mcp_over_stdio_answers_as_the_agent(site, registered):
    import sys

    from mcp import StdioServerParameters

    _agent_client, registration = registered
    command = StdioServerParameters(
        command=sys.executable,
        args=["-m", "atelier_client.mcp_server", "--url", site],
        env={"ATELIER_API_KEY": registration.api_key},
    )
    async with Client(command) as mcp:
        me = payload(await mcp.call_tool("whoami", {}))
    assert me["id"] == registration.agent.id
    assert "webhook_secret" not in me
