"""`manage.py devchain`: both chains on loopback for development and the demo.

Solana JSON-RPC on SOLANA_PORT (8899; solders LiteSVM, a test USDC mint) and Ethereum JSON-RPC on
BASE_PORT (8545; eth-tester, a 6-decimal test USDC), each with a `POST /faucet`. A port that is
taken is an error at once (exit 1), never a half-started pair. The escrow and hot-wallet keys
are generated on first start and kept in DEVCHAIN_STATE, so addresses survive a restart (balances
do not: the chains live in memory).
"""

from __future__ import annotations

import json
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devchain.evm import serve_evm
from devchain.solana_http import serve_solana


class Command(BaseCommand):
    help = "Serve local Solana (SOLANA_PORT) and Ethereum (BASE_PORT) JSON-RPC chains with test USDC and faucets."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--solana-port", type=int, default=settings.SOLANA_PORT)
        parser.add_argument("--evm-port", type=int, default=settings.BASE_PORT)
        parser.add_argument(
            "--finality-lag", type=int, default=0, help="Solana slots between confirmed and finalized (default 0)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.CHAIN_MODE != "local":
            raise CommandError("devchain runs only with CHAIN_MODE=local: it holds test keys, never real ones.")
        path = settings.DEVCHAIN_STATE
        saved: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        solana_keys = saved.get("solana", {})
        evm_keys = saved.get("base", {})
        host = options["host"]
        try:
            solana_server, _, solana = serve_solana(
                host,
                options["solana_port"],
                usdc_mint=solana_keys.get("usdc_mint"),
                escrow_secret=solana_keys.get("escrow_secret"),
                mint_authority_secret=solana_keys.get("mint_authority_secret"),
                finality_lag=options["finality_lag"],
            )
        except OSError as exc:
            raise CommandError(_taken(host, options["solana_port"], "--solana-port/SOLANA_PORT", exc)) from None
        try:
            evm_server, _, evm = serve_evm(
                host,
                options["evm_port"],
                escrow_private_key=evm_keys.get("escrow_private_key"),
                deployer_private_key=evm_keys.get("deployer_private_key"),
            )
        except OSError as exc:
            solana_server.shutdown()
            solana_server.server_close()
            raise CommandError(_taken(host, options["evm_port"], "--evm-port/BASE_PORT", exc)) from None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"solana": solana.state(), "base": evm.state()}, indent=2))
        path.chmod(0o600)  # test keys, but keys all the same
        self.stdout.write(f"Solana devchain: {solana_server.url}  (USDC mint {solana.state()['usdc_mint']})")
        self.stdout.write(f"EVM devchain:    {evm_server.url}  (USDC {evm.state()['usdc_address']})")
        self.stdout.write(f"Keys and addresses in {path}. Faucets: POST <url>/faucet. Ctrl-C stops.")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            for server in (solana_server, evm_server):
                server.shutdown()
                server.server_close()


def _taken(host: str, port: int, option: str, exc: OSError) -> str:
    return f"Cannot start the devchain: port {port} on {host} is taken ({exc.strerror}). Free it or choose another with {option}."
