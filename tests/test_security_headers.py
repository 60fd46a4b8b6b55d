"""Browser security: a strict CSP with per-response nonces, no inline script without one, no inline
event handlers, the usual headers, CSRF on forms; `check --deploy` clean with production settings."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from orders.models import Status
from tests.conftest import make_order, make_service

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"


def pages(buyer, agent) -> list[tuple[Client, str]]:
    service = make_service(agent.agent)
    order = make_order(buyer, agent, Status.DELIVERED)
    client = Client()
    session = client.session
    session["buyer_wallet"], session["buyer_chain"] = buyer.wallet, buyer.chain
    session.save()
    anonymous = Client()
    return [
        (anonymous, "/"),
        (anonymous, f"/services/{service.id}/"),
        (anonymous, f"/agents/{agent.agent.slug}/"),
        (anonymous, "/signin/"),
        (anonymous, "/signin/agent"),
        (client, "/orders/"),
        (client, f"/orders/{order.id}/"),
    ]


def test_every_page_has_a_strict_csp_and_every_script_carries_its_nonce(buyer, agent):
    for client, path in pages(buyer, agent):
        response = client.get(path)
        assert response.status_code == 200, path
        policy = response["Content-Security-Policy"]
        nonce = re.search(r"'nonce-([^']+)'", policy)
        assert nonce, (path, policy)
        assert "script-src 'self' 'nonce-" in policy
        assert "unsafe-inline" not in policy
        assert "unsafe-eval" not in policy
        assert "frame-ancestors 'none'" in policy
        assert "object-src 'none'" in policy
        body = response.content.decode()
        scripts = re.findall(r"<script\b[^>]*>", body)
        assert scripts, path
        for tag in scripts:
            assert f'nonce="{nonce.group(1)}"' in tag, (path, tag)
            assert "src=" in tag, (path, tag)  # no inline script bodies at all
        assert not re.search(r"\son[a-z]+\s*=", body, re.IGNORECASE), path  # no inline event handlers
        assert "style=" not in body, path  # no inline styles (style-src 'self')
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"
        assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_nonces_differ_per_response(db):
    first = Client().get("/")["Content-Security-Policy"]
    second = Client().get("/")["Content-Security-Policy"]
    assert first != second


def test_the_body_carries_the_csrf_token_for_htmx(buyer, agent):
    client, path = pages(buyer, agent)[-1]
    body = client.get(path).content.decode()
    token = client.cookies["csrftoken"].value
    assert re.search(r'<body hx-headers=\'\{"X-CSRFToken": "[^"]+"\}\'>', body)
    assert token  # the cookie exists; the masked token in hx-headers is checked by CsrfViewMiddleware


def test_every_post_form_in_the_templates_has_a_csrf_token():
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        for form in re.findall(r"<form\b[^>]*method=\"post\"[^>]*>.*?</form>", text, re.DOTALL | re.IGNORECASE):
            assert "{% csrf_token %}" in form, (template.name, form[:120])


def _check_deploy(extra: dict[str, str], command: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    cleared = ("DJANGO_", "DEBUG", "SECRET_KEY", "CHAIN_MODE", "ALLOW_LOCAL_CHAIN")
    env = {key: value for key, value in os.environ.items() if not key.startswith(cleared)}
    env.update(extra)
    return subprocess.run(  # noqa: S603 (manage.py with fixed arguments)
        [sys.executable, "manage.py", *(command or ("check", "--deploy", "--fail-level", "WARNING"))],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "k8$2vQ!x7Lm#pR4tZ9wYc@1nB6hF0jE3sD5gA*uV-oI+eK^lN%rT8yU",
    "PUBLIC_URL": "https://atelier.example.com",
    "ALLOWED_HOSTS": "atelier.example.com",
    "CHAIN_MODE": "rpc",
}


@pytest.mark.slow
def test_check_deploy_is_clean_with_production_settings(tmp_path):
    # Its own database: the suite's may be PostgreSQL, whose test database this process cannot see.
    env = {**PRODUCTION, "ATELIER_DATA_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    migrated = _check_deploy(env, ("migrate", "--noinput", "-v", "0"))  # the rate limiter's table
    assert migrated.returncode == 0, migrated.stderr
    result = _check_deploy(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.slow
def test_a_deployment_without_a_secret_key_refuses_to_start(tmp_path):
    env = {key: value for key, value in PRODUCTION.items() if key != "SECRET_KEY"}
    result = _check_deploy({**env, "ATELIER_DATA_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.slow
def test_check_deploy_flags_the_development_defaults(tmp_path):
    """Outside DEBUG a key is required, but a weak one still starts: check --deploy names it, the
    plain-http defaults, the local chains (asked for) and the rate limiter without its table."""
    env = {"DEBUG": "false", "SECRET_KEY": "short", "CHAIN_MODE": "local", "ALLOW_LOCAL_CHAIN": "true"}
    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    result = _check_deploy({**env, "ATELIER_DATA_DIR": str(tmp_path), "DATABASE_URL": database})
    assert result.returncode != 0
    for warning in (
        "security.W004",
        "security.W008",
        "security.W009",
        "security.W012",
        "security.W016",
        "atelier.W001",
        "atelier.W002",
    ):
        assert warning in result.stdout + result.stderr
