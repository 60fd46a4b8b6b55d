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


@pytest.fixture
def reconciled(settings: Any, chains_up: Devchains, db: None) -> Iterator[None]:
    """After the test, on the devchains it used: every transfer into escrow during the test is
    decided by the escrow scan, and escrow on chain matches the ledger (payments.reconcile), from
    what the escrow held when the test began. The session's devchains are shared by the tests of one
    worker while the database is not, hence the opening balance and the scan starting at the head."""
    from orders.checkout.escrow_scan import escrow_scan
    from payments import chains
    from payments.models import ScanCursor
    from payments.reconcile import reconcile, report

    opening = {}
    for chain in ("solana", "base"):
        client = chains.client(chain)
        opening[chain] = client.token_balance(client.payment_instructions().escrow_address)
    newest = solana_helpers.rpc(
        chains_up.solana.url,
        "getSignaturesForAddress",
        chains.client("solana").payment_instructions().token_account,
        {"limit": 1},
    )
    ScanCursor.objects.create(chain="solana", position=newest[0]["signature"] if newest else "")
    ScanCursor.objects.create(
        chain="base", position=str(int(evm_helpers.rpc(chains_up.evm.url, "eth_blockNumber"), 16))
    )
    yield
    # A test may have pointed the app at a dead node: reconcile against the devchains themselves.
    solana_helpers.use_devchain(settings, chains_up.solana)
    evm_helpers.point_settings(settings, chains_up.evm, confirmations=settings.BASE_CONFIRMATIONS)
    for chain in ("solana", "base"):
        result = reconcile(chain, inbound_in_flight=escrow_scan(chain), opening=opening[chain])
        assert result.is_clean, "\n".join(report(result))
