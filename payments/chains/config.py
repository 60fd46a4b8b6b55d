"""Where each chain's RPC, keys and token addresses come from.

In `CHAIN_MODE=local` anything not set in the environment is read from the state file that
`manage.py devchain` writes (DEVCHAIN_STATE), so a fresh `make run` needs no configuration.

Only a process that signs outgoing transfers holds the escrow's keys (settings.HOLDS_HOT_WALLET_KEYS;
off for app servers, ATELIER_ROLE=app). Without a key the escrow's public address (SOLANA_/BASE_ESCROW_ADDRESS,
or in local mode the devchain's) is enough to verify payments in, scan and reconcile.
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
    escrow_secret: str  # base58 of the 64-byte keypair; "" in a process that does not sign
    escrow_address: str = ""  # the escrow wallet's public key (derived from the secret when held)


@dataclass(frozen=True)
class BaseConfig:
    rpc_url: str
    usdc_address: str
    escrow_private_key: str  # "" in a process that does not sign
    chain_id: int
    confirmations: int
    escrow_address: str = ""


def solana_config() -> SolanaConfig:
    local = devchain_state().get("solana", {})
    local_secret = local.get("escrow_secret", "")
    address = settings.SOLANA_ESCROW_ADDRESS
    if not address and local_secret:  # the devchain's (its state file is a development artefact)
        from solders.keypair import Keypair

        address = str(Keypair.from_base58_string(local_secret).pubkey())
    return SolanaConfig(
        rpc_url=settings.SOLANA_RPC_URL,
        usdc_mint=settings.SOLANA_USDC_MINT or local.get("usdc_mint", ""),
        escrow_secret=(settings.SOLANA_ESCROW_SECRET or local_secret) if settings.HOLDS_HOT_WALLET_KEYS else "",
        escrow_address=address,
    )


def base_config() -> BaseConfig:
    local = devchain_state().get("base", {})
    local_key = local.get("escrow_private_key", "")
    address = settings.BASE_ESCROW_ADDRESS
    if not address and local_key:
        from eth_account import Account

        address = Account.from_key(local_key).address
    return BaseConfig(
        rpc_url=settings.BASE_RPC_URL,
        usdc_address=settings.BASE_USDC_ADDRESS or local.get("usdc_address", ""),
        escrow_private_key=(settings.BASE_ESCROW_PRIVATE_KEY or local_key) if settings.HOLDS_HOT_WALLET_KEYS else "",
        chain_id=int(local.get("chain_id", settings.BASE_CHAIN_ID)),
        confirmations=settings.BASE_CONFIRMATIONS,
        escrow_address=address,
    )
