"""Where each chain's RPC, keys and token addresses come from.

In `CHAIN_MODE=local` anything not set in the environment is read from the state file that
`manage.py devchain` writes (DEVCHAIN_STATE), so a fresh `make run` needs no configuration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings


def devchain_state() -> dict[str, Any]:
    path = settings.DEVCHAIN_STATE
    if settings.CHAIN_MODE != "local" or not path.exists():
        return {}
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@dataclass(frozen=True)
class SolanaConfig:
    rpc_url: str
    usdc_mint: str
    escrow_secret: str  # base58 of the 64-byte keypair


@dataclass(frozen=True)
class BaseConfig:
    rpc_url: str
    usdc_address: str
    escrow_private_key: str
    chain_id: int
    confirmations: int


def solana_config() -> SolanaConfig:
    local = devchain_state().get("solana", {})
    return SolanaConfig(
        rpc_url=settings.SOLANA_RPC_URL,
        usdc_mint=settings.SOLANA_USDC_MINT or local.get("usdc_mint", ""),
        escrow_secret=settings.SOLANA_ESCROW_SECRET or local.get("escrow_secret", ""),
    )


def base_config() -> BaseConfig:
    local = devchain_state().get("base", {})
    return BaseConfig(
        rpc_url=settings.BASE_RPC_URL,
        usdc_address=settings.BASE_USDC_ADDRESS or local.get("usdc_address", ""),
        escrow_private_key=settings.BASE_ESCROW_PRIVATE_KEY or local.get("escrow_private_key", ""),
        chain_id=int(local.get("chain_id", settings.BASE_CHAIN_ID)),
        confirmations=settings.BASE_CONFIRMATIONS,
    )
