"""Browser tests: Playwright drives the machine's Chromium (Debian's `chromium` package, never a
downloaded browser) against pytest-django's `live_server`, with a Solana devchain in-process.

They are marked `e2e`, left out of the default run (pyproject's addopts) and run with
`make e2e` (`pytest -m e2e`). Without Chromium or the playwright package they skip, saying why.
Screenshots go to artifacts/screenshots/ (gitignored).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.payments import evm_helpers, solana_helpers
from tests.payments.solana_helpers import Devchain

# Playwright's sync API runs an event loop in this thread; the test body's ORM calls are still
# plain synchronous code between browser steps, which Django would otherwise refuse.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TIMEOUT_MS = 15_000


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        pytest.skip("Chromium is not installed: `apt-get install -y chromium` (e2e tests use the machine's browser)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.skip("The playwright package is not installed: `pip install -r requirements-dev.txt`")
    # Assertions wait as long as actions do: a loaded CI machine is slower than Playwright's 5 s default.
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def solana_chain() -> Iterator[Devchain]:
    with solana_helpers.running_devchain() as chain:
        yield chain


@pytest.fixture(scope="session")
def base_chain() -> Iterator[evm_helpers.Devchain]:
    with evm_helpers.running_devchain() as chain:
        yield chain


@pytest.fixture
def site(live_server: Any, settings: Any, solana_chain: Devchain, tmp_path: Path) -> Any:
    """The live server, pointed at the devchain, in local chain mode, with private files in tmp."""
    solana_helpers.use_devchain(settings, solana_chain)
    settings.CHAIN_MODE = "local"
    settings.STORAGES = {
        **settings.STORAGES,
        "private": {"BACKEND": "lib.privatestorage.PrivateStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    settings.ALLOWED_HOSTS = ["*"]
    return live_server


@pytest.fixture
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def new_context(browser: Any, site: Any) -> Iterator[Any]:
    """Browser contexts on the live server, closed before the server stops (no request in flight)."""
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        context = browser.new_context(base_url=site.url, viewport={"width": 1280, "height": 900}, **options)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def axe_check(page: Any) -> None:
    """axe-core (vendored in axe-playwright-python, no CDN) on the page as it is: no serious or
    critical violation."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    bad = [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + ", ".join(str(node["target"]) for node in violation["nodes"][:3])
        for violation in results.response["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{page.url}:\n" + "\n".join(bad)
