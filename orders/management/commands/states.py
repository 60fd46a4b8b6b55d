"""`manage.py states` (`make states`): the order transition table as Markdown and as a Mermaid state
diagram, written to docs/states.md (or printed with --stdout). tests/orders/test_transitions.py
fails when the committed file is stale, so the picture is always the table's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from orders.core.transitions import TABLE

TARGET = Path(settings.BASE_DIR) / "docs" / "states.md"


def document() -> str:
    """docs/states.md, from TABLE alone."""
    lines = [
        "# The order state machine",
        "",
        "Generated from `orders/core/table.py` (`TABLE`) by `make states`; do not edit by hand.",
        "",
        "```mermaid",
        "stateDiagram-v2",
        "    [*] --> pending_quote: create (quote-priced)",
        "    [*] --> quoted: create (listed price)",
    ]
    arrows: dict[tuple[str, str], list[str]] = {}
    for rule in TABLE:
        label = f"{rule.action} ({', '.join([rule.actor, *rule.conditions])})"
        for source in sorted(rule.sources):
            arrows.setdefault((source, rule.target), []).append(label)
    lines += [f"    {source} --> {target}: {' / '.join(labels)}" for (source, target), labels in arrows.items()]
    lines += ["    completed --> [*]", "    cancelled --> [*]", "```", ""]
    lines += ["| action | actor | from | to | only | when |", "|---|---|---|---|---|---|"]
    for rule in TABLE:
        sources = ", ".join(sorted(rule.sources))
        only, when = rule.only or "", rule.when or ""
        lines.append(f"| {rule.action} | {rule.actor} | {sources} | {rule.target} | {only} | {when} |")
    return "\n".join(lines) + "\n"


class Command(BaseCommand):
    help = "Write the order transition table and its state diagram to docs/states.md (--stdout: print them)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--stdout", action="store_true", help="Print instead of writing docs/states.md.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["stdout"]:
            self.stdout.write(document(), ending="")
            return
        TARGET.write_text(document())
        self.stdout.write(f"wrote {TARGET.relative_to(settings.BASE_DIR)}")
