from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from orders.transitions import TABLE


class Command(BaseCommand):
    help = "Print the order transition table (orders/transitions.py) as Markdown."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write("| action | actor | from | to | when |\n|---|---|---|---|---|")
        for rule in TABLE:
            sources = ", ".join(sorted(rule.sources))
            self.stdout.write(f"| {rule.action} | {rule.actor} | {sources} | {rule.target} | {rule.when} |")
