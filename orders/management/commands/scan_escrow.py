"""`manage.py scan_escrow [--every N]`: decide every transfer that arrived in escrow (orders.checkout.escrow_scan):
pay the order its memo names, or record it and return it to its sender. With --every, loop."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from orders.checkout.escrow_scan import escrow_scan
from payments import chains


class Command(BaseCommand):
    help = "Apply or return every transfer that arrived in the escrow wallets."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--every", type=float, default=0, help="Seconds between scans; 0 scans once.")

    def handle(self, *args: Any, **options: Any) -> None:
        while True:
            for chain in ("solana", "base"):
                try:
                    waiting = escrow_scan(chain)
                except chains.ChainError as exc:  # not configured, or down: try again next round
                    self.stderr.write(f"{chain}: {exc}")
                    continue
                if options["verbosity"] > 1:
                    self.stdout.write(f"{chain}: {len(waiting)} transfer(s) waiting for a claim")
            if not options["every"]:
                return
            time.sleep(options["every"])
