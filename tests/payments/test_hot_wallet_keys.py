"""Least privilege for the hot wallet (issue 23): only the processes that sign outgoing transfers
(the workers) hold the escrow's keys. An app server (ATELIER_ROLE=app, set by deploy/gunicorn.conf.py)
runs on the public addresses alone and refuses to start with a key unless told to."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from solders.keypair import Keypair

from payments import chains
from payments.chains import ChainUnavailable
from payments.chains.config import base_config, solana_config
from tests.payments.conftest import Devchains

ROOT = Path(__file__).resolve().parents[2]
START = "import django; django.setup(); from django.conf import settings; print(settings.HOLDS_HOT_WALLET_KEYS)"


def start(**env: str) -> subprocess.CompletedProcess[str]:
    """Load the settings as a process would at start, with `env` on top of a clean environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SOLANA_ESCROW", "BASE_ESCROW", "ATELIER_ROLE"))}
    return subprocess.run(  # noqa: S603
        [sys.executable, "-c", START],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "atelier.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_app_server_refuses_to_start_with_a_hot_wallet_key() -> None:
    refused = start(ATELIER_ROLE="app", SOLANA_ESCROW_SECRET=str(Keypair()))
    assert refused.returncode != 0
    assert "only the workers that sign outgoing transfers hold them" in refused.stderr

    told = start(ATELIER_ROLE="app", SOLANA_ESCROW_SECRET=str(Keypair()), APP_SERVER_HOLDS_KEYS="true")
    assert (told.returncode, told.stdout.strip()) == (0, "True")

    public_only = start(ATELIER_ROLE="app", SOLANA_ESCROW_ADDRESS=str(Keypair().pubkey()))
    assert (public_only.returncode, public_only.stdout.strip()) == (0, "False")
    worker = start(SOLANA_ESCROW_SECRET=str(Keypair()))
    assert (worker.returncode, worker.stdout.strip()) == (0, "True")


def test_without_the_keys_a_process_verifies_and_reads_but_never_signs(settings: Any, chains_up: Devchains) -> None:
    signer = {chain: chains.client(chain) for chain in ("solana", "base")}
    addresses = {chain: client.payment_instructions().escrow_address for chain, client in signer.items()}

    settings.HOLDS_HOT_WALLET_KEYS = False  # an app server
    settings.SOLANA_ESCROW_ADDRESS, settings.BASE_ESCROW_ADDRESS = addresses["solana"], addresses["base"]
    assert (solana_config().escrow_secret, base_config().escrow_private_key) == ("", "")
    for chain in ("solana", "base"):
        client = chains.client(chain)
        assert client.payment_instructions() == signer[chain].payment_instructions()
        assert client.fee_balance() == signer[chain].fee_balance()
        with pytest.raises(ChainUnavailable, match="holds no hot-wallet key"):
            client.sign_transfer(to=addresses[chain], amount=1, memo="never")
