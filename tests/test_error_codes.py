"""Every error `code` the source can raise is in the OpenAPI document's `ErrorCode` enum, and each
operation's id is its view's name, so clients generated from the document stay usable."""

from __future__ import annotations

import re
from pathlib import Path

from atelier.error_codes import ERROR_CODES
from atelier.openapi import api_endpoints, document

ROOT = Path(__file__).resolve().parent.parent
APPS = ("agents", "atelier", "orders", "payments", "webhooks", "idempotency")
LITERALS = (
    re.compile(r"\bcode\s*=\s*\"([a-z0-9_]+)\""),  # raise X(..., code="...") and class attributes
    re.compile(r"PaymentRejected\(\s*\"([a-z0-9_]+)\""),  # a chain's rejection, passed on as the code
)


def _source_codes() -> set[str]:
    found: set[str] = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            text = path.read_text()
            for pattern in LITERALS:
                found.update(pattern.findall(text))
    # `{kind}_not_found` for an id in the path with a NUL in it (api.endpoints._check_path_ids).
    for route, _spec in api_endpoints():
        found.update(f"{name.removesuffix('_id')}_not_found" for name in re.findall(r"{(\w+)}", route))
    return found


def test_every_code_raised_in_the_source_is_in_the_enum():
    missing = _source_codes() - set(ERROR_CODES)
    assert not missing, f"add these to atelier.error_codes.ERROR_CODES: {sorted(missing)}"


def test_error_responses_reference_the_enum():
    schemas = document()["components"]["schemas"]
    assert schemas["ErrorCode"]["enum"] == list(ERROR_CODES)
    assert schemas["Error"]["properties"]["code"] == {"$ref": "#/components/schemas/ErrorCode"}
    assert schemas["PaymentRequired"]["properties"]["code"] == {"$ref": "#/components/schemas/ErrorCode"}


def test_operation_ids_are_the_view_names_and_unique():
    ids = [op["operationId"] for methods in document()["paths"].values() for op in methods.values()]
    assert len(ids) == len(set(ids))
    assert {"agent_orders", "order_quote", "order_deliver", "upload_create", "openapi_document"} <= set(ids)
    for path, spec in api_endpoints():
        assert document()["paths"][path][spec.method.lower()]["operationId"] == spec.operation_id != ""
