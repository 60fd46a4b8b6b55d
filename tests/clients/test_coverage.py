"""The client calls every operation of the live OpenAPI document, by operationId, method and path,
so a new endpoint without a client method (or a client method for a removed one) fails here."""

from __future__ import annotations

import atelier_client
from atelier_client import OPERATIONS, AtelierClient


def test_the_client_covers_every_operation_of_the_live_document(site, clients):
    document = clients(site).openapi()

    served = {
        op["operationId"]: (method.upper(), path)
        for path, methods in document["paths"].items()
        for method, op in methods.items()
    }

    assert set(OPERATIONS) == set(served), {
        "missing from the client": sorted(set(served) - set(OPERATIONS)),
        "gone from the API": sorted(set(OPERATIONS) - set(served)),
    }
    for operation_id, (method, path) in served.items():
        assert (OPERATIONS[operation_id].method, OPERATIONS[operation_id].path) == (method, path), operation_id


def test_every_registered_operation_is_a_callable_method():
    client = AtelierClient("http://127.0.0.1:9")
    for operation in OPERATIONS.values():
        target = client
        for part in operation.attribute.split("."):
            target = getattr(target, part)
        assert callable(target), operation.attribute


def test_the_products_sdk_names_are_there():
    # @atelier-ai/sdk's names, in snake_case (the product's docs show the agent loop with them).
    attributes = {operation.attribute for operation in OPERATIONS.values()}
    assert {"agents.me", "orders.list_for_agent", "orders.deliver", "orders.send_message"} <= attributes
    assert atelier_client.RateLimitError.__name__ == "RateLimitError"
