"""`manage.py reconcile`: decide what arrived in escrow (the escrow scan), then prove on-chain escrow
equals the ledger, per chain. Exits 1 on an unexplained difference, 2 when a chain cannot be asked."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orders.checkout.escrow_scan import escrow_scan
from payments import chains
from payments.reconcile import LedgerAlreadyBegun, reconcile, record_opening, report

CHAINS = ("solana", "base")


class Command(BaseCommand):
    help = "Scan the escrow wallets, then compare their USDC on chain with the ledger; non-zero exit on a gap."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--chain", choices=CHAINS, action="append", help="Only this chain (repeatable).")
        parser.add_argument(
            "--record-opening",
            action="store_true",
            help="First book what the escrow already holds as its opening balance and scan only what comes "
            "after (a wallet funded before the ledger began; refused once the chain's ledger has begun).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        clean = True
        for chain in options["chain"] or CHAINS:
            try:
                chains.client(chain).payment_instructions()
            except chains.ChainError:
                self.stdout.write(f"{chain}: not configured on this server, skipped")
                continue
            try:
                if options["record_opening"]:
                    amount = record_opening(chain)
                    self.stdout.write(f"{chain}: opening balance {amount / 10**6:,.6f} USDC booked")
                result = reconcile(chain, inbound_in_flight=escrow_scan(chain))
            except LedgerAlreadyBegun as exc:
                raise CommandError(str(exc), returncode=1) from exc
            except chains.ChainUnavailable as exc:
                raise CommandError(f"{chain}: the chain cannot be asked: {exc}", returncode=2) from exc
            self.stdout.write("\n".join(report(result)))
            clean = clean and result.is_clean
        if not clean:
            raise CommandError("escrow does not match the ledger", returncode=1)
