"""`manage.py runlocal` (what `make run` starts): the devchains, a worker, the escrow scan and the server, together.

Each part must come up before the banner says so: its ports must be free first, then answer (the
server's /healthz with 200) while its process is alive. When a part does not start, or stops
later, the others are stopped and the command exits 1 with a sentence saying which and why.
Ctrl-C stops them all (exit 0).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from agents.models import Agent

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")
START_SECONDS = 120.0  # eth-tester deploys its token on start: seconds on a slow machine


@dataclass
class Part:
    name: str
    command: list[str]
    ports: list[int] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None


def port_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Command(BaseCommand):
    help = "Start the devchains, a worker and the server (make run); exit 1 if any part fails to start or stops."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=settings.HOST)
        parser.add_argument("--port", type=int, default=settings.PORT)
        parser.add_argument("--solana-port", type=int, default=settings.SOLANA_PORT)
        parser.add_argument("--base-port", type=int, default=settings.BASE_PORT)

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        python = sys.executable
        parts = [
            Part(
                "the devchains",
                [
                    python,
                    MANAGE,
                    "devchain",
                    "--solana-port",
                    str(options["solana_port"]),
                    "--evm-port",
                    str(options["base_port"]),
                ],
                [options["solana_port"], options["base_port"]],
            ),
            Part("the worker", [python, MANAGE, "db_worker", "--queue-name", "*", "--interval", "1"]),
            # Decides what lands in escrow: pays the order a Solana memo names, returns the rest.
            Part("the escrow scan", [python, MANAGE, "scan_escrow", "--every", "5"]),
            Part("the server", [python, MANAGE, "runserver", "--noreload", f"{host}:{port}"], [port]),
        ]
        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            for part in parts:
                self._start(part, host if part.name == "the server" else "127.0.0.1")
            self._wait_healthy(parts, f"http://{host}:{port}/healthz")
            self._open_payout_accounts(options["solana_port"])
            self.stdout.write(
                f"\n  Atelier is running at {settings.PUBLIC_URL.rstrip('/')}/  "
                f"(API: {settings.PUBLIC_URL.rstrip('/')}/api/openapi.json)\n"
                f"  Local chains: Solana RPC http://127.0.0.1:{options['solana_port']}, "
                f"Base RPC http://127.0.0.1:{options['base_port']} (POST /faucet)\n"
            )
            while not stopping:
                for part in parts:
                    # Ctrl-C reaches the whole process group: a part exiting then is no failure.
                    if not stopping and part.process is not None and part.process.poll() is not None:
                        raise CommandError(f"{part.name} stopped (exit {part.process.returncode}); stopping the rest.")
                time.sleep(0.5)
        finally:
            self._stop(parts)

    def _start(self, part: Part, host: str) -> None:
        for port in part.ports:
            if port_answers(host, port):
                raise CommandError(
                    f"Cannot start {part.name}: port {port} on {host} is taken (another `make run`?). "
                    "Free it or choose other ports: make run PORT=... SOLANA_PORT=... BASE_PORT=..."
                )
        part.process = subprocess.Popen(part.command)  # noqa: S603 (manage.py with fixed arguments)
        deadline = time.monotonic() + START_SECONDS
        while not all(port_answers(host, port) for port in part.ports):
            if part.process.poll() is not None:
                raise CommandError(f"{part.name} did not start (exit {part.process.returncode}); see its error above.")
            if time.monotonic() > deadline:
                raise CommandError(f"{part.name} did not answer on ports {part.ports} within {START_SECONDS:.0f} s.")
            time.sleep(0.2)

    def _wait_healthy(self, parts: list[Part], url: str) -> None:
        """Every part still running, and the server's own checks pass (database, rate limiter)."""
        for part in parts:
            if part.process is not None and part.process.poll() is not None:
                raise CommandError(f"{part.name} did not start (exit {part.process.returncode}); see its error above.")
        try:
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (our own http URL)
                response.read()
        except urllib.error.HTTPError as exc:
            raise CommandError(f"The server is up but unhealthy ({url}): {exc.read().decode()[:500]}") from None
        except OSError as exc:
            raise CommandError(f"The server does not answer {url}: {exc}") from None

    def _open_payout_accounts(self, solana_port: int) -> None:
        """A payout lands only in a USDC account that exists (the escrow never pays rent for one): on
        the fresh devchain, give each local agent's Solana payout wallet its account, as any wallet
        that ever received USDC has."""
        wallets = (
            Agent.objects.filter(payout_chain="solana")
            .exclude(payout_wallet="")
            .values_list("payout_wallet", flat=True)
        )
        for wallet in wallets:
            body = json.dumps({"address": wallet, "token_account": True}).encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{solana_port}/faucet", data=body, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                    response.read()
            except OSError as exc:
                self.stderr.write(f"Could not open {wallet}'s USDC account on the devchain: {exc}")

    def _stop(self, parts: list[Part]) -> None:
        running = [part.process for part in reversed(parts) if part.process and part.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGINT if sys.platform != "win32" else signal.SIGTERM)
        for process in running:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
