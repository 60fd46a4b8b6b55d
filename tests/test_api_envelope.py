"""Every /api/ response is the JSON envelope in any mode: unknown paths (404), wrong methods (405),
and errors (500) outside DEBUG. `make run` serves with DEBUG on, where Django would answer its HTML
debug pages."""

from __future__ import annotations

import pytest
from django.test import Client

from agents import api as agents_api


def assert_envelope(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = response.json()
    assert body["success"] is False
    assert body["code"] == code
    assert body["error"]


@pytest.fixture(params=[True, False], ids=["debug", "no-debug"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


@pytest.mark.parametrize(
    "path",
    ["/api/nope", "/api/", "/api", "/api/orders/ord_1/nope", "/api/agents/register/", "/api/openapi.json/x"],
)
def test_an_unknown_api_path_is_a_json_404(db, debug, path):
    assert_envelope(Client().get(path), 404, "unknown_endpoint")


def test_an_unknown_api_path_is_a_json_404_whatever_the_method(db, debug):
    assert_envelope(Client().post("/api/nope", {}, content_type="application/json"), 404, "unknown_endpoint")


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/agents/register"), ("delete", "/api/orders"), ("post", "/api/openapi.json")],
)
def test_a_wrong_method_is_a_json_405(db, debug, method, path):
    response = getattr(Client(), method)(path)
    assert_envelope(response, 405, "method_not_allowed")
    assert response["Allow"]


def test_pages_keep_djangos_404(db, debug):
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_an_error_outside_debug_is_a_json_500(db, settings, monkeypatch):
    settings.DEBUG = False

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(agents_api, "page", broken)
    response = Client(raise_request_exception=False).get("/api/services")

    assert_envelope(response, 500, "server_error")
    assert "boom" not in response.content.decode()
