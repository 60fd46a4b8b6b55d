"""atelier/settings.py read from the environment: what production refuses, what development derives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRINT = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps({name: str(getattr(settings, name)) for name in "
    "('DEBUG', 'SECRET_KEY', 'PUBLIC_URL', 'CHAIN_MODE', 'SOLANA_RPC_URL', 'BASE_RPC_URL', 'CSRF_TRUSTED_ORIGINS', "
    "'ALLOW_PRIVATE_WEBHOOKS')}))"
)
# What a developer's shell or the test run may have set, which these cases set themselves.
CLEARED: tuple[str, ...] = (
    "DJANGO_",
    "PYTEST_",
    "DEBUG",
    "SECRET_KEY",
    "CHAIN_MODE",
    "ALLOW_LOCAL_CHAIN",
    "PUBLIC_URL",
    "HOST",
    "PORT",
)
CLEARED += ("SOLANA_PORT", "BASE_PORT", "SOLANA_RPC_URL", "BASE_RPC_URL", "ALLOW_PRIVATE_WEBHOOKS")


def load(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(CLEARED)}
    clean.update({"DJANGO_SETTINGS_MODULE": "atelier.settings", "ATELIER_DATA_DIR": str(tmp_path), **env})
    return subprocess.run(  # noqa: S603 (this interpreter, a fixed script)
        [sys.executable, "-c", PRINT], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60, check=False
    )


def loaded(tmp_path: Path, **env: str) -> dict[str, Any]:
    result = load(tmp_path, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


KEY = "k8$2vQ!x7Lm#pR4tZ9wYc@1nB6hF0jE3sD5gA*uV-oI+eK^lN%rT8yU"


@pytest.mark.parametrize("public_url", ["http://127.0.0.1:8000", "https://atelier.example.com"])
def test_outside_debug_a_missing_secret_key_is_a_startup_error(tmp_path, public_url):
    result = load(tmp_path, DEBUG="false", PUBLIC_URL=public_url, CHAIN_MODE="rpc")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_in_debug_the_development_key_is_used(tmp_path):
    assert loaded(tmp_path, DEBUG="true")["SECRET_KEY"].startswith("django-insecure-")


def test_private_webhooks_are_allowed_only_when_asked_for_and_only_in_debug(tmp_path):
    assert loaded(tmp_path, DEBUG="true", ALLOW_PRIVATE_WEBHOOKS="true")["ALLOW_PRIVATE_WEBHOOKS"] == "True"
    assert loaded(tmp_path, DEBUG="true")["ALLOW_PRIVATE_WEBHOOKS"] == "False"
    outside = loaded(tmp_path, DEBUG="false", SECRET_KEY=KEY, CHAIN_MODE="rpc", ALLOW_PRIVATE_WEBHOOKS="true")
    assert outside["ALLOW_PRIVATE_WEBHOOKS"] == "False"


def test_chain_mode_defaults_to_local_in_debug_and_rpc_outside(tmp_path):
    assert loaded(tmp_path, DEBUG="true")["CHAIN_MODE"] == "local"
    assert loaded(tmp_path, DEBUG="false", SECRET_KEY=KEY)["CHAIN_MODE"] == "rpc"


def test_outside_debug_local_chain_mode_needs_to_be_asked_for(tmp_path):
    refused = load(tmp_path, DEBUG="false", SECRET_KEY=KEY, CHAIN_MODE="local")
    assert refused.returncode != 0
    assert "ImproperlyConfigured" in refused.stderr
    assert "ALLOW_LOCAL_CHAIN=true" in refused.stderr

    allowed = loaded(tmp_path, DEBUG="false", SECRET_KEY=KEY, CHAIN_MODE="local", ALLOW_LOCAL_CHAIN="true")
    assert allowed["CHAIN_MODE"] == "local"


def test_an_unknown_chain_mode_is_a_startup_error(tmp_path):
    result = load(tmp_path, DEBUG="true", CHAIN_MODE="mainnet")
    assert result.returncode != 0
    assert "CHAIN_MODE must be local or rpc" in result.stderr


def test_public_url_and_the_rpc_urls_follow_host_and_ports(tmp_path):
    found = loaded(tmp_path, DEBUG="true", HOST="127.0.0.1", PORT="8123", SOLANA_PORT="18899", BASE_PORT="18545")

    assert found["PUBLIC_URL"] == "http://127.0.0.1:8123"
    assert found["CSRF_TRUSTED_ORIGINS"] == "['http://127.0.0.1:8123']"
    assert found["SOLANA_RPC_URL"] == "http://127.0.0.1:18899"
    assert found["BASE_RPC_URL"] == "http://127.0.0.1:18545"


def test_an_explicit_public_url_wins(tmp_path):
    found = loaded(tmp_path, DEBUG="true", PORT="8123", PUBLIC_URL="https://atelier.example.com")
    assert found["PUBLIC_URL"] == "https://atelier.example.com"


def test_the_defaults_are_the_usual_ports(tmp_path):
    found = loaded(tmp_path, DEBUG="true")
    assert (found["PUBLIC_URL"], found["SOLANA_RPC_URL"], found["BASE_RPC_URL"]) == (
        "http://127.0.0.1:8000",
        "http://127.0.0.1:8899",
        "http://127.0.0.1:8545",
    )
