"""The MCP server in-process, driven by an MCP client session (mcp.Client), against a live server:
the tools complete an order (list, read, quote, upload, deliver, message) and the resources serve
the order and its messages."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from atelier_client.buyer import Buyer, SolanaWallet
from atelier_client.mcp_server import build_server
from mcp import Client
from mcp.shared.subscriptions import ResourceUpdated
from mcp.types import TextContent, TextResourceContents

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
        assert {
            "atelier_list_orders_needing_action",
            "atelier_get_order",
            "atelier_quote_order",
            "atelier_deliver",
            "atelier_upload_file",
        } <= tools
        assert {"atelier_send_message", "atelier_hire_agent", "atelier_pay_order"} <= tools

        waiting = payload(await mcp.call_tool("atelier_list_orders_needing_action", {}))
        assert [(o["id"], o["status"]) for o in waiting] == [(order.id, "pending_quote")]
        quoted = payload(await mcp.call_tool("atelier_quote_order", {"order_id": order.id, "price_usd": "12.00"}))
        assert quoted["status"] == "quoted"

        # Not allowed now: the model gets the code and what is allowed.
        refused = await mcp.call_tool(
            "atelier_deliver", {"order_id": order.id, "url": "https://e.com/x", "media_type": "link"}
        )
        assert refused.is_error
        refusal = refused.content[0]
        assert isinstance(refusal, TextContent)
        assert "409 invalid_transition" in refusal.text

        buyer.pay(order.id)
        paid = payload(await mcp.call_tool("atelier_list_orders_needing_action", {}))
        assert [(o["id"], o["status"], "start" in o["allowed_actions"]) for o in paid] == [(order.id, "paid", True)]
        uploaded = payload(
            await mcp.call_tool("atelier_upload_file", {"filename": "haiku.md", "text": "Flour on red paws..."})
        )
        assert uploaded["url"].startswith("atelier://upload/upl_")
        delivered = payload(
            await mcp.call_tool("atelier_deliver", {"order_id": order.id, "url": uploaded["url"], "media_type": "text"})
        )
        assert delivered["status"] == "delivered"
        await mcp.call_tool("atelier_send_message", {"order_id": order.id, "content": "Delivered, enjoy!"})
        assert payload(await mcp.call_tool("atelier_list_orders_needing_action", {})) == []

        resource = await mcp.read_resource(f"atelier://orders/{order.id}")
        order_json = resource.contents[0]
        assert isinstance(order_json, TextResourceContents)
        assert json.loads(order_json.text)["status"] == "delivered"
        messages = await mcp.read_resource(f"atelier://orders/{order.id}/messages")
        messages_json = messages.contents[0]
        assert isinstance(messages_json, TextResourceContents)
        assert [m["content"] for m in json.loads(messages_json.text)] == ["Delivered, enjoy!"]

    assert buyer.approve(order.id).status == "completed"


def test_the_server_also_serves_streamable_http(site, clients, registered):
    from starlette.testclient import TestClient

    agent_client, _registration = registered
    app = build_server(agent_client).streamable_http_app(streamable_http_path="/mcp")  # the bare app, no token
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
        # PYTHONPATH passed on: a checkout other than the one installed editable tests its own client.
        env={"ATELIER_API_KEY": registration.api_key, **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}},
    )
    async with Client(command) as mcp:
        me = payload(await mcp.call_tool("atelier_whoami", {}))
    assert me["id"] == registration.agent.id
    assert "webhook_secret" not in me


# The agent API (issue 25): every operation an agent uses has its tool.
AGENT_TOOLS = {
    "atelier_whoami",  # agent_me
    "atelier_register",  # agent_register
    "atelier_update_profile",  # agent_me_update
    "atelier_rotate_webhook_secret",  # agent_me_update (rotate_webhook_secret)
    "atelier_list_my_services",  # service_list_for_agent
    "atelier_create_service",  # service_create
    "atelier_update_service",  # service_update
    "atelier_delete_service",  # service_delete
    "atelier_search_services",  # catalogue
    "atelier_list_orders_needing_action",  # order_list
    "atelier_get_order",  # order_detail
    "atelier_quote_order",  # order_quote
    "atelier_start_order",  # order_start
    "atelier_upload_file",  # upload_create
    "atelier_deliver",  # order_deliver (one, several, a prompt's answer)
    "atelier_send_message",  # message_create
    "atelier_list_messages",  # message_list
    "atelier_cancel_order",  # order_act (cancel)
    "atelier_hire_agent",  # order_create
    "atelier_pay_order",  # order_act (accept, pay)
    "atelier_act_on_order",  # order_act
    "atelier_review",  # review_create
    "atelier_download_deliverable",  # deliverable_original
    "atelier_list_webhooks",  # webhook_list
    "atelier_redeliver_webhook",  # webhook_redeliver
}


@pytest.mark.anyio
async def test_the_tools_cover_the_agent_api_all_prefixed():
    from atelier_client import AtelierClient

    client = AtelierClient("http://127.0.0.1:9")
    async with Client(build_server(client, watch_interval=None)) as mcp:
        tools = {tool.name for tool in (await mcp.list_tools()).tools}
    client.close()
    assert tools == AGENT_TOOLS
    assert all(name.startswith("atelier_") for name in tools)


@pytest.fixture
def mcp_over_http(registered: Any) -> Any:
    """atelier-mcp's HTTP app (the bearer token, the Host check) served by uvicorn on a free port."""
    import socket
    import threading
    import time

    import uvicorn
    from atelier_client.mcp_server import http_app

    agent_client, registration = registered
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = "test-token-" + registration.agent.id
    app = http_app(build_server(agent_client, watch_interval=None), token=token, host="127.0.0.1", port=port)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/mcp", token, registration
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.anyio
async def test_over_http_a_request_without_the_token_is_refused(mcp_over_http):
    import httpx
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    url, token, registration = mcp_over_http
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    accept = {"Accept": "application/json, text/event-stream"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
        refused = httpx.post(url, json=initialize, headers={**accept, **headers})
        assert refused.status_code == 401, refused.text
    wrong_host = httpx.post(
        url, json=initialize, headers={**accept, "Authorization": f"Bearer {token}", "Host": "evil.example:80"}
    )
    assert wrong_host.status_code in (400, 421), wrong_host.text  # DNS rebinding: not a name it answers

    with pytest.raises(Exception):  # noqa: B017, PT011 -- the client fails to connect; its error type is the library's
        async with Client(streamable_http_client(url)) as mcp:
            await mcp.call_tool("atelier_whoami", {})

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    async with http, Client(streamable_http_client(url, http_client=http)) as mcp:
        me = payload(await mcp.call_tool("atelier_whoami", {}))
    assert me["id"] == registration.agent.id


@pytest.mark.anyio
async def test_a_subscriber_hears_when_an_order_changes(site, clients, chains_up, registered):
    import anyio

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
    uri = f"atelier://orders/{order.id}"

    mcp = Client(build_server(agent_client, watch_interval=0.2))
    async with mcp, mcp.listen(resource_subscriptions=[uri]) as subscription:
        await anyio.sleep(1.0)  # the watcher's first look: what the orders are now
        await anyio.to_thread.run_sync(lambda: buyer.client.orders.cancel(order.id))
        with anyio.fail_after(15):
            event = await anext(subscription)
    assert isinstance(event, ResourceUpdated)
    assert event.uri == uri
