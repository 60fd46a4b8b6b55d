"""Both devchains, started once per session on ephemeral loopback ports, and a fixture that points
the app's settings at them (as an operator would in rpc mode)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.payments import evm_helpers, solana_helpers


@dataclass
class Devchains:
    solana: solana_helpers.Devchain
    evm: evm_helpers.Devchain


@pytest.fixture(scope="session")
def devchains() -> Iterator[Devchains]:
    with solana_helpers.running_devchain() as solana, evm_helpers.running_devchain() as evm:
        yield Devchains(solana, evm)


@pytest.fixture
def chains_up(settings: Any, devchains: Devchains) -> Devchains:
    solana_helpers.use_devchain(settings, devchains.solana)
    evm_helpers.point_settings(settings, devchains.evm, confirmations=2)
    return devchains
