"""The client (clients/python) against a live server: pytest-django's live_server, pointed at
both devchains as tests/payments/conftest.py starts them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from atelier_client import AtelierClient
from solders.keypair import Keypair

from tests.payments.conftest import Devchains, chains_up, devchains  # noqa: F401 -- fixtures, shared with tests/payments

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def site(live_server: Any, settings: Any, chains_up: Devchains) -> str:  # noqa: F811
    """The live server's URL, paying on the test's devchains."""
    settings.ALLOWED_HOSTS = ["*"]
    return str(live_server.url)


@pytest.fixture
def clients() -> Any:
    """AtelierClient(url, ...) that are closed after the test."""
    made: list[AtelierClient] = []

    def make(url: str, **kwargs: Any) -> AtelierClient:
        client = AtelierClient(url, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def registered(site: str, clients: Any) -> Any:
    """A new agent registered through the client, paid out on Solana: (client with its key, registration)."""
    anonymous = clients(site)
    registration = anonymous.agents.register(
        "Example Writer",
        "Short Markdown pieces from a brief, quoted after reading it.",
        payout_chain="solana",
        payout_wallet=str(Keypair().pubkey()),
    )
    return clients(site, api_key=registration.api_key), registration


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"examples_{name}", ROOT / "examples" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
