"""GET /api/openapi.json: public, valid OpenAPI 3.1, and true.

True in two directions, each checked without trusting `atelier/openapi.py`:
- the URLconf, walked here on its own, accepts exactly the methods the document lists, at the
  same paths with the same `{param}` placeholders;
- real responses (a whole order lifecycle, registration, profile, listings, catalogue, sign-in,
  and a handful of errors) validate against the schema documented for their status code, and the
  requests that succeeded validate against the documented request bodies and query parameters.
"""

from __future__ import annotations

import io
import json
import re
import time
from fnmatch import fnmatch
from typing import Any, get_type_hints
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLResolver, get_resolver, resolve
from django.urls.resolvers import RoutePattern
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from PIL import Image
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from solders.keypair import Keypair

from orders.core.transitions import transition
from orders.models import Order
from orders.reads.shapes import OrderData
from tests.conftest import Api, make_order, make_payment, with_body

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")
OPERATION_KEYS = {"get", "head", "post", "put", "patch", "delete", "options", "trace"}
CONVERTER = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")
# A value each path converter accepts, naming nothing that exists.
SAMPLE = {"str": "zz_no_such_id", "slug": "zz-no-such-id", "int": "987654321", "path": "zz/no/such/id"}
DOC_URI = "urn:atelier:openapi"
WALLET_SIGNATURE_PARAMS = {"wallet", "wallet_sig", "wallet_sig_ts"}


# --- the URLconf, walked independently of atelier/openapi.py ------------------------------------


def api_routes() -> list[str]:
    """Every route under `api/`, as Django writes it: 'api/orders/<str:order_id>'."""
    routes: list[str] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            assert isinstance(pattern.pattern, RoutePattern), f"{pattern!r}: only path() routes are understood here"
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            else:
                routes.append(route)

    walk([p for p in get_resolver().url_patterns if str(p.pattern).startswith("api/")], "")
    return routes


def openapi_path(route: str) -> str:
    return "/" + CONVERTER.sub(lambda m: "{" + m["name"] + "}", route)


def concrete_url(route: str) -> str:
    return "/" + CONVERTER.sub(lambda m: SAMPLE[m["converter"] or "str"], route)


def placeholders(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


# --- the document -------------------------------------------------------------------------------


@pytest.fixture
def doc(anonymous: Api) -> dict[str, Any]:
    """The document as a client gets it: anonymously, over HTTP."""
    response = anonymous.get("/api/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    return response.body


def test_the_document_is_public_and_valid_openapi_3_1(doc):
    assert doc["openapi"].startswith("3.1.")
    validate(doc, cls=OpenAPIV31SpecValidator)
    for name in doc["components"]["schemas"]:
        Draft202012Validator.check_schema(doc["components"]["schemas"][name])


def test_bad_credentials_do_not_hide_the_document():
    response = Client().get("/api/openapi.json", headers={"Authorization": "Bearer atelier_nope_nope"})
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.1.")


def test_the_urlconf_accepts_exactly_the_documented_methods(doc):
    client = Client()  # anonymous: every call is refused or invalid, so nothing is written
    accepted: dict[str, set[str]] = {}
    for route in api_routes():
        path = openapi_path(route)
        accepted.setdefault(path, set())
        for method in METHODS:
            response = client.generic(method, concrete_url(route), "", content_type="application/json")
            if response.status_code == 405:
                assert response["Allow"], f"{method} {path}: a 405 names the allowed methods"
                if method != "HEAD":
                    assert json.loads(response.content)["code"] == "method_not_allowed"
            else:
                accepted[path].add(method.lower())
    documented = {path: {m for m in item if m in OPERATION_KEYS} for path, item in doc["paths"].items()}
    assert len(accepted) >= 15, "the walk found too few routes under api/"
    assert accepted == documented


def test_every_documented_path_resolves_with_its_placeholders(doc):
    client = Client()
    for path, item in doc["paths"].items():
        url = re.sub(r"{\w+}", SAMPLE["str"], path)
        match = resolve(url)
        assert openapi_path(match.route) == path, f"{path} resolves to the route {match.route!r}"
        assert sorted(match.kwargs) == sorted(placeholders(path))
        for method, operation in item.items():
            if method not in OPERATION_KEYS:
                continue
            declared = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
            assert sorted(declared) == sorted(placeholders(path)), f"{method} {path} path parameters"
            assert all(p["required"] for p in operation.get("parameters", []) if p["in"] == "path")
            response = client.generic(method.upper(), url, "", content_type="application/json")
            assert response.status_code != 405, f"{method.upper()} {path} is documented but not accepted"


# --- responses against the documented schemas ---------------------------------------------------


def _pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


class Contract:
    """Checks each exchange against the document and remembers which operations succeeded."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        resource = Resource.from_contents(doc, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(DOC_URI, resource)
        self.succeeded: set[tuple[str, str]] = set()

    def validator(self, *pointer: str) -> Draft202012Validator:
        return Draft202012Validator(
            {"$ref": f"{DOC_URI}#/{_pointer(*pointer)}"},
            registry=self.registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )

    def assert_valid(self, instance: Any, *pointer: str) -> None:
        errors = sorted(self.validator(*pointer).iter_errors(instance), key=lambda e: list(e.absolute_path))
        assert not errors, f"{'/'.join(pointer)}:\n" + "\n".join(
            f"  at {list(e.absolute_path)}: {e.message}" for e in errors[:10]
        )

    def call(self, api: Api, method: str, url: str, body: Any = None, *, status: int, **headers: str) -> Any:
        response = api.call(method, url, body, **headers)
        assert response.status_code == status, (method, url, response.status_code, response.body)
        self.check(response, method, url, body)
        return response.body

    def check(self, response: Any, method: str, url: str, body: Any = None) -> None:
        parts = urlsplit(url)
        path = openapi_path(resolve(parts.path).route)
        if method.lower() not in self.doc["paths"][path]:
            # An undocumented method: a 405 naming exactly the documented ones.
            assert response.status_code == 405, f"{method} {path} is not documented but answered"
            documented = {m.upper() for m in self.doc["paths"][path] if m in OPERATION_KEYS}
            assert set(response["Allow"].split(", ")) == documented
            self.assert_valid(response.body, "components", "schemas", "Error")
            return
        operation = self.doc["paths"][path][method.lower()]
        code = str(response.status_code)
        assert code in operation["responses"], f"{method} {path} answered {code}, which is not documented"
        content = operation["responses"][code]["content"]
        if "application/json" not in content:  # a file: the documented media type, no JSON to check
            served = response["Content-Type"].split(";")[0]
            assert any(fnmatch(served, kind) for kind in content), f"{method} {path} served {served}"
            self.succeeded.add((method.lower(), path))
            return
        assert response["Content-Type"].startswith("application/json")
        self.assert_valid(
            response.body, "paths", path, method.lower(), "responses", code, "content", "application/json", "schema"
        )
        if response.status_code >= 300:
            return
        self.succeeded.add((method.lower(), path))
        # What the server took must be what the document allows (a fuzzer builds requests from it).
        if isinstance(body, dict):
            assert "requestBody" in operation, f"{method} {path} took a body it does not document"
            self.assert_valid(
                body, "paths", path, method.lower(), "requestBody", "content", "application/json", "schema"
            )
        query = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}
        signs_in_query = {"walletSignature": []} in operation.get("security", [])
        for name, value in parse_qsl(parts.query):
            if signs_in_query and name in WALLET_SIGNATURE_PARAMS:
                continue
            assert name in query, f"{method} {path} took the undocumented query parameter {name!r}"
            schema = query[name]["schema"]
            typed: Any = int(value) if schema.get("type") == "integer" else value
            errors = list(Draft202012Validator(schema).iter_errors(typed))
            assert not errors, f"{method} {path} ?{name}={value}: {errors[0].message}"

    def assert_error(self, response: Any, method: str, url: str, status: int) -> None:
        """A refusal: the documented status, the Error schema."""
        assert response.status_code == status, (method, url, response.status_code, response.body)
        self.check(response, method, url)
        self.assert_valid(response.body, "components", "schemas", "Error")


SERVICE = {
    "title": "Portrait of your pet",
    "description": "A hand-painted style portrait of your pet from one photo, delivered as a PNG.",
    "category": "design",
    "price_usd": "0",
    "price_type": "quote",
}


def test_real_responses_match_the_documented_schemas(doc, buyer, other_agent, anonymous):
    c = Contract(doc)
    c.call(anonymous, "GET", "/api/openapi.json", status=200)

    # Wallet sign-in: nonce, signature, session token, sign-out.
    keypair = Keypair()
    wallet = str(keypair.pubkey())
    challenge = c.call(anonymous, "POST", "/api/auth/nonce", {"wallet": wallet, "chain": "solana"}, status=201)
    signature = str(keypair.sign_message(challenge["data"]["message"].encode()))
    session = c.call(
        anonymous, "POST", "/api/auth/verify", {"nonce": challenge["data"]["nonce"], "signature": signature}, status=201
    )
    signed_in = Api(Client(), {"Authorization": f"Bearer {session['data']['token']}"})
    assert c.call(signed_in, "GET", "/api/orders", status=200)["data"] == []
    c.call(signed_in, "POST", "/api/auth/signout", status=200)
    c.assert_error(signed_in.get("/api/orders"), "GET", "/api/orders", 401)

    # The product's per-request signature, in the query and in the body.
    ts = str(int(time.time()))
    sig = buyer.sign(f"atelier:{buyer.wallet}:{ts}")
    by_query = f"/api/orders?wallet={buyer.wallet}&wallet_sig={sig}&wallet_sig_ts={ts}"
    c.call(Api(Client()), "GET", by_query, status=200)
    # Ours: the v2 headers, bound to the method, path and body.
    c.call(Api(Client(), buyer.request_headers("GET", "/api/orders?limit=5")), "GET", "/api/orders?limit=5", status=200)

    # An agent registers, looks at itself, changes its profile, rotates its webhook secret.
    registered = c.call(
        anonymous,
        "POST",
        "/api/agents/register",
        {
            "name": "Pet Painter",
            "description": "Paints pets.",
            "endpoint_url": "https://hooks.example.com/atelier",
            "payout_chain": "solana",
            "payout_wallet": str(Keypair().pubkey()),
        },
        status=201,
    )["data"]
    agent_id = registered["agent"]["id"]
    agent = Api(Client(), {"Authorization": f"Bearer {registered['api_key']}"})
    c.call(agent, "GET", "/api/agents/me", status=200)
    c.call(agent, "PATCH", "/api/agents/me", {"description": "Paints pets, fast."}, status=200)
    rotated = c.call(agent, "PATCH", "/api/agents/me", {"rotate_webhook_secret": True}, status=200)
    assert rotated["data"]["webhook_secret"].startswith("whsec_")

    # Listings: create, list (public and owner), change, withdraw; the catalogue and the profile.
    service = c.call(agent, "POST", f"/api/agents/{agent_id}/services", SERVICE, status=201)["data"]
    fixed = c.call(
        agent,
        "POST",
        f"/api/agents/{agent_id}/services",
        {**SERVICE, "title": "Pet portrait, fixed", "price_usd": "30.00", "price_type": "fixed", "max_revisions": 2},
        status=201,
    )["data"]
    c.call(anonymous, "GET", f"/api/agents/{agent_id}/services", status=200)
    c.call(agent, "PATCH", f"/api/services/{fixed['id']}", {"title": "Pet portrait in oils"}, status=200)
    c.call(agent, "DELETE", f"/api/services/{fixed['id']}", status=200)
    assert len(c.call(agent, "GET", f"/api/agents/{agent_id}/services", status=200)["data"]) == 2
    assert len(c.call(anonymous, "GET", f"/api/agents/{agent_id}/services", status=200)["data"]) == 1
    page = c.call(anonymous, "GET", f"/api/services?category=design&agent_id={agent_id}&limit=1", status=200)
    assert page["next_cursor"] is None
    c.call(anonymous, "GET", "/api/services?q=pet&price_type=quote", status=200)
    c.call(anonymous, "GET", f"/api/agents/{agent_id}", status=200)

    # The order, from creation to review.
    order = c.call(
        buyer.api,
        "POST",
        "/api/orders",
        {
            "service_id": service["id"],
            "brief": "My cat Miso, in a crown, looking regal.",
            "reference_urls": ["https://img.example.com/miso.jpg"],
            "payment_chain": "solana",
        },
        status=201,
    )["data"]
    url = f"/api/orders/{order['id']}"
    polled = c.call(agent, "GET", f"/api/agents/{agent_id}/orders?status=pending_quote,quoted&limit=5", status=200)
    assert [o["id"] for o in polled["data"]] == [order["id"]]
    c.call(agent, "POST", f"{url}/quote", {"price_usd": "45.00"}, status=200)
    c.call(buyer.api, "PATCH", url, {"action": "accept"}, status=200)
    transition(order["id"], "pay", buyer.principal, payment=make_payment(Order.objects.get(pk=order["id"])))
    c.call(buyer.api, "POST", f"{url}/messages", {"content": "Any questions?"}, status=201)
    c.call(agent, "POST", f"{url}/messages", {"content": "What colour is the crown?"}, status=201)
    thread = c.call(buyer.api, "GET", f"{url}/messages?limit=1", status=200)
    c.call(agent, "GET", f"{url}/messages?after={thread['next_cursor']}", status=200)
    c.call(agent, "POST", f"{url}/start", status=200)
    one = {"deliverable_url": "https://cdn.example.com/miso.png", "deliverable_media_type": "image"}
    c.call(agent, "POST", f"{url}/deliver", one, status=200)
    c.call(buyer.api, "PATCH", url, {"action": "revision", "feedback": "A golder crown."}, status=200)
    two = {
        "deliverables": [one, {"deliverable_url": "https://cdn.example.com/miso.txt", "deliverable_media_type": "text"}]
    }
    # An uploaded image, delivered by its atelier://upload/ URL (multipart: checked with c.check).
    png = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(png, "PNG")
    uploaded = with_body(
        agent.client.post(
            "/api/upload", {"file": SimpleUploadedFile("miso.png", png.getvalue())}, headers=agent.headers
        )
    )
    c.check(uploaded, "POST", "/api/upload")
    two["deliverables"].append({"deliverable_url": uploaded.body["data"]["url"], "deliverable_media_type": "image"})
    c.call(agent, "POST", f"{url}/deliver", two, status=200)
    c.call(buyer.api, "GET", url, status=200)
    shown = c.call(agent, "GET", url, status=200)
    # Its files: the preview for the buyer (gated until completion), the original for the agent.
    image = shown["data"]["deliverables"][-1]["id"]
    for api, kind in ((buyer.api, "preview"), (agent, "original")):
        c.check(api.get(f"/api/deliverables/{image}/{kind}"), "GET", f"/api/deliverables/{image}/{kind}")
    c.call(buyer.api, "GET", "/api/orders?status=delivered,completed&limit=10", status=200)
    c.call(agent, "GET", "/api/orders", status=200)
    ts = str(time.time_ns() // 1_000_000)  # a signature is good for one request: sign afresh
    sig = buyer.sign(f"atelier:{buyer.wallet}:{ts}")
    body_sig = {"wallet": buyer.wallet, "wallet_sig": sig, "wallet_sig_ts": ts, "action": "approve"}
    completed = c.call(Api(Client()), "PATCH", url, body_sig, status=200)["data"]
    assert completed["status"] == "completed"
    c.call(buyer.api, "POST", f"{url}/review", {"rating": 5, "comment": "Regal."}, status=201)

    # The agent's webhooks: each event above is a delivery to its endpoint; list them, redeliver one.
    hooks = c.call(agent, "GET", "/api/agents/me/webhooks?status=pending&limit=2", status=200)
    assert [hook["event"] for hook in hooks["data"]] == ["order.completed", "order.delivered"]
    c.call(agent, "GET", f"/api/agents/me/webhooks?before={hooks['next_cursor']}", status=200)
    redeliver = f"/api/agents/me/webhooks/{hooks['data'][0]['id']}/redeliver"
    c.call(agent, "POST", redeliver, status=202)
    c.assert_error(other_agent.api.post(redeliver), "POST", redeliver, 404)

    # Other buyer actions: cancel, dispute; an agent buying from an agent.
    c.call(buyer.api, "PATCH", f"/api/orders/{make_order(buyer, other_agent).id}", {"action": "cancel"}, status=200)
    delivered = make_order(buyer, other_agent, "delivered")
    c.call(buyer.api, "PATCH", f"/api/orders/{delivered.id}", {"action": "dispute", "reason": "Not a cat."}, status=200)
    bought = c.call(
        other_agent.api,
        "POST",
        "/api/orders",
        {"service_id": service["id"], "brief": "A robot dog, please."},
        status=201,
    )
    assert bought["data"]["buyer_kind"] == "agent"

    # A workspace: paying opens it, the buyer prompts, the agent answers naming the prompt.
    weekly = {**SERVICE, "title": "Pet portraits, weekly", "price_usd": "20.00", "price_type": "weekly"}
    weekly = c.call(agent, "POST", f"/api/agents/{agent_id}/services", {**weekly, "quota_limit": 2}, status=201)
    room_body = {"service_id": weekly["data"]["id"], "brief": "Miso, weekly."}
    room = c.call(buyer.api, "POST", "/api/orders", room_body, status=201)
    room_order = Order.objects.get(pk=room["data"]["id"])
    room_url = f"/api/orders/{room_order.id}"
    transition(room_order.id, "pay", buyer.principal, payment=make_payment(room_order))
    prompt = c.call(buyer.api, "POST", f"{room_url}/generate", {"prompt": "Miso as a pirate."}, status=201)["data"]
    c.call(buyer.api, "GET", room_url, status=200)  # a pending prompt
    c.call(agent, "POST", f"{room_url}/deliver", {"deliverable_id": prompt["id"], **one}, status=200)
    c.assert_error(agent.post(f"{room_url}/generate", {"prompt": "Me too."}), "POST", f"{room_url}/generate", 403)

    # Refusals: each documented status, each an Error.
    for api, method, path, body, status in [
        (buyer.api, "POST", "/api/orders", "{not json", 400),
        (buyer.api, "POST", "/api/orders", {"service_id": service["id"], "brief": "short"}, 400),
        (buyer.api, "PATCH", url, {"action": "teleport"}, 400),
        (agent, "POST", f"{url}/quote", {"price_usd": 45}, 400),
        (anonymous, "GET", "/api/orders", None, 401),
        (Api(Client(), {"Authorization": "Bearer atelier_nope_nope"}), "GET", "/api/agents/me", None, 401),
        (buyer.api, "POST", f"{url}/quote", {"price_usd": "45.00"}, 401),
        (agent, "POST", f"/api/agents/{other_agent.id}/services", SERVICE, 403),
        (agent, "PATCH", url, {"action": "approve"}, 403),
        (other_agent.api, "GET", url, None, 404),
        (buyer.api, "GET", "/api/orders/ord_1780278669252_r2oi99c7d", None, 404),
        (anonymous, "GET", "/api/agents/agt_1780278669252_r2oi99c7d", None, 404),
        (buyer.api, "DELETE", "/api/orders", None, 405),
        (buyer.api, "POST", f"{url}/review", {"rating": 4}, 409),
        (buyer.api, "PATCH", url, {"action": "accept"}, 409),
        (agent, "POST", f"{url}/start", None, 409),
    ]:
        c.assert_error(api.call(method, path, body), method, path, status)
    for _ in range(5):  # register: 5 per hour per IP, one used above
        response = anonymous.post("/api/agents/register", {"name": "Spammer"})
        if response.status_code == 429:
            break
    c.assert_error(response, "POST", "/api/agents/register", 429)
    assert int(response["Retry-After"]) > 0
    unknown = anonymous.get("/api/no/such/endpoint")
    assert unknown.status_code == 404
    c.assert_valid(unknown.body, "components", "schemas", "Error")

    documented = {(method, path) for path, item in doc["paths"].items() for method in item if method in OPERATION_KEYS}
    assert documented - c.succeeded == set(), "operations no response was checked for"


def test_an_order_answer_has_exactly_the_keys_of_its_type_and_of_the_document(doc, buyer, agent):
    """One place says what an order holds (orders.reads.shapes.OrderData): the answer and the document agree."""
    order = make_order(buyer, agent, "delivered")
    data = buyer.api.get(f"/api/orders/{order.id}").body["data"]
    documented = doc["components"]["schemas"]["OrderData"]
    assert set(data) == set(get_type_hints(OrderData)) == set(documented["properties"]) == set(documented["required"])


ACT_BODY = ("paths", "/api/orders/{order_id}", "patch", "requestBody", "content", "application/json", "schema")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"action": "revision", "feedback": "More whiskers."}, 200),
        ({"action": "dispute", "reason": "Not a cat."}, 200),
        ({"action": "cancel", "reason": "Changed my mind."}, 409),  # the shape is right, the status is not
        ({"action": "revision"}, 400),
        ({"action": "dispute"}, 400),
        ({"action": "pay"}, 400),
        ({"action": "approve", "feedback": "Lovely."}, 400),
        ({"action": "cancel", "feedback": "Never mind."}, 400),
        ({"action": "accept", "escrow_tx_hash": "5" * 88}, 400),
        ({"action": "revision", "feedback": "More.", "reason": "Both."}, 400),
    ],
    ids=lambda value: (
        "+".join(value[key] if key == "action" else key for key in value) if isinstance(value, dict) else str(value)
    ),
)
def test_each_action_takes_what_its_branch_of_the_document_says(doc, buyer, agent, body, status):
    """PATCH /api/orders/{id}: the document's oneOf (one branch per action) allows exactly the bodies the
    server takes; a body it refuses for its shape is a 400, and the document refuses it too."""
    c = Contract(doc)
    order = make_order(buyer, agent, "delivered")
    response = buyer.api.patch(f"/api/orders/{order.id}", body)
    assert response.status_code == status, response.body
    assert c.validator(*ACT_BODY).is_valid(body) == (status != 400)
    c.check(response, "PATCH", f"/api/orders/{order.id}", body if status == 200 else None)
