"""Service listings (create, list, change, withdraw), the public catalogue and agent profiles."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest

from agents.models import Agent, Service
from orders.models import Order, Status
from tests.conftest import make_agent, make_buyer, make_order, make_service

DESCRIPTION = "Three logo directions for your brand, each as a large transparent PNG."
OTHER = "Careful work by an agent that reads the whole brief before it starts."
assert len(DESCRIPTION) >= 40
assert len(OTHER) >= 40


def listing(**fields: Any) -> dict[str, Any]:
    return {
        "title": "Logo in three styles",
        "description": DESCRIPTION,
        "category": "design",
        "price_usd": "25.00",
        "price_type": "fixed",
        **fields,
    }


def row(service_id: str) -> Mapping[str, Any]:
    return Service.objects.values().get(pk=service_id)


def services_path(agent_id: str) -> str:
    return f"/api/agents/{agent_id}/services"


# --- create ----------------------------------------------------------------------------------


def test_an_agent_lists_a_service_under_its_own_id(agent):
    response = agent.api.post(services_path(agent.id), listing(quota_limit=0, max_revisions=2, turnaround_hours=24))

    assert response.status_code == 201, response.body
    data = response.body["data"]
    assert data["id"].startswith("svc_")
    assert (data["agent_id"], data["title"], data["price_usd"], data["price_type"]) == (
        agent.id,
        "Logo in three styles",
        "25.00",
        "fixed",
    )
    assert (data["max_revisions"], data["turnaround_hours"], data["active"]) == (2, 24, True)
    stored = Service.objects.get(pk=data["id"])
    assert stored.agent_id == agent.id
    assert stored.price_usd == Decimal("25.00")
    assert (stored.max_revisions, stored.turnaround_hours, stored.active) == (2, 24, True)


def test_create_applies_the_defaults(agent):
    response = agent.api.post(services_path(agent.id), listing())

    assert response.status_code == 201, response.body
    stored = Service.objects.get(pk=response.body["data"]["id"])
    assert (stored.quota_limit, stored.max_revisions, stored.turnaround_hours) == (0, 3, 48)


@pytest.mark.parametrize(
    ("field_name", "value", "created"),
    [
        ("title", "x" * 4, False),
        ("title", "x" * 5, True),
        ("title", "x" * 80, True),
        ("title", "x" * 81, False),
        ("title", "  abcd  ", False),  # trimmed before counting
        ("description", "d" * 39, False),
        ("description", "d" * 40, True),
        ("description", "d" * 1000, True),
        ("description", "d" * 1001, False),
        ("max_revisions", 0, True),
        ("max_revisions", 10, True),
        ("max_revisions", 11, False),
        ("quota_limit", -1, False),
        ("turnaround_hours", 0, False),
        ("price_type", "hourly", False),
    ],
)
def test_create_enforces_lengths_and_ranges(agent, field_name, value, created):
    response = agent.api.post(services_path(agent.id), listing(**{field_name: value}))

    if created:
        assert response.status_code == 201, response.body
        assert Service.objects.filter(agent=agent.agent).count() == 1
    else:
        assert response.status_code == 400, response.body
        assert field_name in response.body["details"]
        assert not Service.objects.exists()


@pytest.mark.parametrize(
    ("price_type", "price", "created"),
    [
        ("fixed", "0.00", False),
        ("weekly", "0.00", False),
        ("monthly", "0", False),
        ("quote", "0.00", True),
        ("quote", "0", True),
        ("fixed", "0.01", True),
        ("weekly", "49.00", True),
        ("monthly", "1000000", True),
        ("fixed", "1000000.01", False),
        ("fixed", "-5.00", False),
        ("quote", "-0.01", False),
        ("fixed", "25.001", False),
        ("fixed", 25, False),  # numbers are refused: floats lose cents
        ("fixed", "free", False),
        ("fixed", "NaN", False),
    ],
)
def test_create_enforces_the_price_rules(agent, price_type, price, created):
    response = agent.api.post(services_path(agent.id), listing(price_type=price_type, price_usd=price))

    if created:
        assert response.status_code == 201, response.body
        assert Service.objects.get().price_usd == Decimal(str(price))
    else:
        assert response.status_code == 400, response.body
        assert "price_usd" in response.body["details"]
        assert not Service.objects.exists()


def test_an_agent_cannot_list_under_another_agents_id(agent, other_agent):
    response = agent.api.post(services_path(other_agent.id), listing())

    assert response.status_code == 403
    assert response.body["code"] == "not_your_agent"
    assert not Service.objects.exists()


def test_creating_a_service_needs_an_agent_key(agent, anonymous, buyer):
    for api in (anonymous, buyer.api):
        response = api.post(services_path(agent.id), listing())
        assert response.status_code == 401
    assert not Service.objects.exists()


# --- list one agent's services ---------------------------------------------------------------


def test_the_public_sees_an_agents_active_services_and_the_owner_also_sees_inactive(agent, other_agent, anonymous):
    live = make_service(agent.agent, title="Live service")
    withdrawn = make_service(agent.agent, title="Withdrawn service")
    Service.objects.filter(pk=withdrawn.pk).update(active=False)
    make_service(other_agent.agent, title="Not this agent's")

    public = anonymous.get(services_path(agent.id))
    stranger = other_agent.api.get(services_path(agent.id))
    owner = agent.api.get(services_path(agent.id))

    assert public.status_code == stranger.status_code == owner.status_code == 200
    assert [s["id"] for s in public.body["data"]] == [live.id]
    assert [s["id"] for s in stranger.body["data"]] == [live.id]
    assert [s["id"] for s in owner.body["data"]] == [withdrawn.id, live.id]  # newest first
    assert [s["active"] for s in owner.body["data"]] == [False, True]


def test_listing_services_of_an_unknown_agent_is_404(anonymous):
    response = anonymous.get(services_path("agt_1780278669252_000000000"))

    assert response.status_code == 404
    assert response.body["code"] == "agent_not_found"


# --- change ----------------------------------------------------------------------------------


def test_the_owner_patches_a_service(agent):
    service = make_service(agent.agent)

    response = agent.api.patch(
        f"/api/services/{service.id}", {"title": "Logo in five styles", "price_usd": "40.00", "max_revisions": 5}
    )

    assert response.status_code == 200, response.body
    assert (response.body["data"]["title"], response.body["data"]["price_usd"]) == ("Logo in five styles", "40.00")
    stored = row(service.id)
    assert (stored["title"], stored["price_usd"], stored["max_revisions"]) == (
        "Logo in five styles",
        Decimal("40.00"),
        5,
    )
    assert stored["description"] == service.description
    assert stored["updated_at"] > service.updated_at


def test_another_agent_patching_a_service_gets_404_and_nothing_changes(agent, other_agent):
    service = make_service(agent.agent)
    before = row(service.id)

    response = other_agent.api.patch(f"/api/services/{service.id}", {"title": "Hijacked listing"})

    assert response.status_code == 404
    assert response.body["code"] == "service_not_found"
    assert row(service.id) == before


def test_patch_checks_the_price_against_the_stored_price_type(agent):
    service = make_service(agent.agent, price_type="quote", price="0.00")
    before = row(service.id)

    response = agent.api.patch(f"/api/services/{service.id}", {"price_type": "fixed"})

    assert response.status_code == 400
    assert "price_usd" in response.body["details"]
    assert row(service.id) == before


@pytest.mark.parametrize(("field_name", "value"), [("title", "abcd"), ("description", "too short"), ("agent_id", "x")])
def test_patch_with_invalid_fields_is_400_and_changes_nothing(agent, field_name, value):
    service = make_service(agent.agent)
    before = row(service.id)

    response = agent.api.patch(f"/api/services/{service.id}", {field_name: value})

    assert response.status_code == 400
    assert field_name in response.body["details"]
    assert row(service.id) == before


def test_patching_an_unknown_service_is_404(agent):
    response = agent.api.patch("/api/services/svc_1780278669252_000000000", {"title": "Anything goes"})

    assert response.status_code == 404
    assert response.body["code"] == "service_not_found"


# --- withdraw --------------------------------------------------------------------------------


def test_delete_deactivates_the_service_and_orders_keep_pointing_at_it(agent, buyer, anonymous):
    service = make_service(agent.agent, price_type="quote", price="0.00")
    order = make_order(buyer, agent, Status.PENDING_QUOTE, service=service)
    assert [s["id"] for s in anonymous.get("/api/services").body["data"]] == [service.id]

    response = agent.api.delete(f"/api/services/{service.id}")

    assert response.status_code == 200, response.body
    assert response.body["data"]["active"] is False
    assert Service.objects.filter(pk=service.id, active=False).exists()
    assert Order.objects.get(pk=order.id).service_id == service.id
    assert anonymous.get("/api/services").body["data"] == []
    assert anonymous.get(services_path(agent.id)).body["data"] == []
    assert [s["id"] for s in agent.api.get(services_path(agent.id)).body["data"]] == [service.id]
    # The buyer still sees what was bought.
    seen = buyer.api.get(f"/api/orders/{order.id}")
    assert seen.status_code == 200
    assert (seen.body["data"]["service_id"], seen.body["data"]["service_title"]) == (service.id, service.title)


def test_deleting_twice_is_harmless(agent):
    service = make_service(agent.agent)

    assert agent.api.delete(f"/api/services/{service.id}").status_code == 200
    again = agent.api.delete(f"/api/services/{service.id}")

    assert again.status_code == 200
    assert again.body["data"]["active"] is False
    assert Service.objects.filter(pk=service.id).count() == 1


def test_another_agent_cannot_delete_a_service(agent, other_agent):
    service = make_service(agent.agent)

    response = other_agent.api.delete(f"/api/services/{service.id}")

    assert response.status_code == 404
    assert Service.objects.get(pk=service.id).active is True


def test_a_withdrawn_service_can_be_reactivated_by_its_owner(agent, anonymous):
    service = make_service(agent.agent)
    agent.api.delete(f"/api/services/{service.id}")

    response = agent.api.patch(f"/api/services/{service.id}", {"active": True})

    assert response.status_code == 200
    assert Service.objects.get(pk=service.id).active is True
    assert [s["id"] for s in anonymous.get("/api/services").body["data"]] == [service.id]


# --- the catalogue ---------------------------------------------------------------------------


@pytest.fixture
def catalogue(db: None) -> dict[str, Any]:
    forge, wright = make_agent("Pixel Forge"), make_agent("Codewright")
    Agent.objects.filter(pk=forge.id).update(avg_rating=Decimal("4.50"), rating_count=2)
    services = {
        "logo": make_service(forge.agent, title="Logo in three styles", category="design", description=DESCRIPTION),
        "poster": make_service(
            forge.agent,
            title="Event poster",
            category="design",
            price_type="quote",
            price="0.00",
            description="A poster for your event, with typography that matches your LOGO.",
        ),
        "feed": make_service(
            forge.agent, title="Weekly social feed", category="social", price_type="weekly", description=OTHER
        ),
        "review": make_service(wright.agent, title="Code review", category="code", price="60.00", description=OTHER),
        "audit": make_service(
            wright.agent, title="Security audit", category="code", price_type="monthly", description=OTHER
        ),
    }
    hidden = make_service(wright.agent, title="Withdrawn listing", category="code", description=OTHER)
    Service.objects.filter(pk=hidden.pk).update(active=False)
    retired = make_agent("Retired Agent")
    make_service(retired.agent, title="From a deactivated agent", category="design", description=DESCRIPTION)
    Agent.objects.filter(pk=retired.id).update(active=False)
    return {"forge": forge, "wright": wright, **services}


def ids_of(response: Any) -> list[str]:
    assert response.status_code == 200, response.body
    return [service["id"] for service in response.body["data"]]


def test_the_catalogue_lists_active_services_of_active_agents_newest_first(catalogue, anonymous):
    response = anonymous.get("/api/services")

    expected = [catalogue[name].id for name in ("audit", "review", "feed", "poster", "logo")]
    assert ids_of(response) == expected
    assert expected == list(
        Service.objects.filter(active=True, agent__active=True).order_by("-id").values_list("id", flat=True)
    )
    assert response.body["next_cursor"] is None


def test_the_catalogue_includes_the_agents_avg_rating(catalogue, anonymous):
    response = anonymous.get(f"/api/services?agent_id={catalogue['forge'].id}")

    agents = {service["agent"]["id"]: service["agent"] for service in response.body["data"]}
    assert agents == {
        catalogue["forge"].id: {
            "id": catalogue["forge"].id,
            "name": "Pixel Forge",
            "avg_rating": "4.50",
            "rating_count": 2,
        }
    }
    wright = anonymous.get(f"/api/services?agent_id={catalogue['wright'].id}").body["data"][0]["agent"]
    assert (wright["avg_rating"], wright["rating_count"]) == ("0.00", 0)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"category": "design"}, ["poster", "logo"]),
        ({"category": "code"}, ["audit", "review"]),
        ({"category": "nothing"}, []),
        ({"price_type": "fixed"}, ["review", "logo"]),
        ({"price_type": "quote"}, ["poster"]),
        ({"price_type": "weekly"}, ["feed"]),
        ({"price_type": "monthly"}, ["audit"]),
        ({"q": "logo"}, ["poster", "logo"]),  # title or description, any case
        ({"q": "AUDIT"}, ["audit"]),
        ({"q": "withdrawn"}, []),
        ({"category": "design", "price_type": "fixed"}, ["logo"]),
        ({"category": "code", "q": "review"}, ["review"]),
    ],
)
def test_the_catalogue_filters(catalogue, anonymous, params, expected):
    response = anonymous.get("/api/services?" + urlencode(params))

    assert ids_of(response) == [catalogue[name].id for name in expected]


def test_the_catalogue_filters_by_agent(catalogue, anonymous):
    forge = anonymous.get(f"/api/services?agent_id={catalogue['forge'].id}")
    wright = anonymous.get(f"/api/services?agent_id={catalogue['wright'].id}&category=code")

    assert ids_of(forge) == [catalogue[name].id for name in ("feed", "poster", "logo")]
    assert ids_of(wright) == [catalogue[name].id for name in ("audit", "review")]


def test_the_catalogue_paginates_with_limit_and_next_cursor(catalogue, anonymous):
    seen: list[str] = []
    path = "/api/services?limit=2"
    pages = 0
    while path:
        response = anonymous.get(path)
        page = ids_of(response)
        assert len(page) <= 2
        seen += page
        pages += 1
        cursor = response.body["next_cursor"]
        path = f"/api/services?limit=2&before={cursor}" if cursor else ""

    assert pages == 3
    assert seen == list(
        Service.objects.filter(active=True, agent__active=True).order_by("-id").values_list("id", flat=True)
    )


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=ten", "price_type=hourly", "colour=red"])
def test_the_catalogue_refuses_bad_parameters(catalogue, anonymous, query):
    response = anonymous.get(f"/api/services?{query}")

    assert response.status_code == 400
    assert response.body["success"] is False


# --- public agent profile --------------------------------------------------------------------


def test_an_agents_public_profile_shows_no_private_fields(agent, anonymous):
    Agent.objects.filter(pk=agent.id).update(
        avg_rating=Decimal("4.00"), rating_count=1, completed_orders=3, endpoint_url="https://agent.example.com/h"
    )

    response = anonymous.get(f"/api/agents/{agent.id}")

    assert response.status_code == 200, response.body
    data = response.body["data"]
    assert data["id"] == agent.id
    assert (data["name"], data["slug"]) == ("Pixel Forge", agent.agent.slug)
    assert (data["avg_rating"], data["rating_count"], data["completed_orders"]) == ("4.00", 1, 3)
    for private in ("endpoint_url", "webhook_secret", "payout_wallet", "payout_address_base", "last_poll_at"):
        assert private not in data
    assert agent.agent.webhook_secret not in response.content.decode()


@pytest.mark.parametrize("agent_id", ["agt_1780278669252_000000000", "nonsense"])
def test_an_unknown_agent_is_404(anonymous, agent_id):
    response = anonymous.get(f"/api/agents/{agent_id}")

    assert response.status_code == 404
    assert response.body["code"] == "agent_not_found"


def test_a_deactivated_agent_is_404(agent, anonymous):
    Agent.objects.filter(pk=agent.id).update(active=False)

    response = anonymous.get(f"/api/agents/{agent.id}")

    assert response.status_code == 404


def test_the_public_profile_is_readable_with_any_valid_credentials(agent, other_agent):
    buyer = make_buyer("base")

    for api in (buyer.api, other_agent.api, agent.api):
        response = api.get(f"/api/agents/{agent.id}")
        assert response.status_code == 200
        assert response.body["data"]["id"] == agent.id
