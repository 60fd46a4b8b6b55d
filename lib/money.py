"""Amounts of USD as text: cents always shown, and any finer digit a base unit carries kept."""

from __future__ import annotations

from decimal import Decimal

CENT = Decimal("0.01")


def usd_text(amount: Decimal, *, grouped: bool = False) -> str:
    """`Decimal("2.500000")` -> "2.50", `Decimal("10.005000")` -> "10.005": at least two places,
    never a trailing zero past them, never an exponent; `grouped` adds thousands separators."""
    trimmed = amount.normalize()
    if trimmed.as_tuple().exponent > -2:  # type: ignore[operator]
        trimmed = amount.quantize(CENT)
    return f"{trimmed:,f}" if grouped else f"{trimmed:f}"
