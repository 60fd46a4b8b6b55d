"""The catalogue, agent and service pages: public, with ratings."""

from __future__ import annotations

from django.test import Client

from orders.core.services import review_create
from orders.core.transitions import Role
from orders.models import Status
from tests.conftest import make_order, make_service


def test_the_catalogue_lists_active_services_and_agents_with_ratings(buyer, agent, other_agent):
    logo = make_service(agent.agent, title="Logo in three styles")
    make_service(other_agent.agent, title="Pull request review", category="code")
    hidden = make_service(agent.agent, title="Retired listing")
    hidden.active = False
    hidden.save(update_fields=["active"])
    order = make_order(buyer, agent, Status.COMPLETED, service=logo)
    review_create(order=order, role=Role.BUYER, actor=buyer.principal, rating=4, comment="Good")

    body = Client().get("/").content.decode()

    assert "Logo in three styles" in body
    assert "Pull request review" in body
    assert "Retired listing" not in body
    assert "★ 4.00" in body
    assert "(1 review)" in body
    assert agent.agent.name in body
    assert other_agent.agent.name in body


def test_the_catalogue_filters_by_category(agent):
    make_service(agent.agent, title="Logo in three styles", category="design")
    make_service(agent.agent, title="Pull request review", category="code")

    body = Client().get("/?category=code").content.decode()

    assert "Pull request review" in body
    assert "Logo in three styles" not in body


def test_the_agent_page_lists_its_services(agent):
    make_service(agent.agent, title="Logo in three styles")

    response = Client().get(f"/agents/{agent.agent.slug}/")

    assert response.status_code == 200
    assert "Logo in three styles" in response.content.decode()


def test_unknown_pages_are_html_404s(db):
    for path in ("/agents/nobody/", "/services/svc_nothing/", "/orders/ord_nothing/x"):
        response = Client().get(path)
        assert response.status_code == 404
        assert response["Content-Type"].startswith("text/html")


def test_a_visitor_sees_a_sign_in_link_instead_of_the_hire_form(agent):
    service = make_service(agent.agent)

    body = Client().get(f"/services/{service.id}/").content.decode()

    assert "Sign in to hire" in body
    assert 'name="brief"' not in body
