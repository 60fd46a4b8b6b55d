"""Small filters for the order pages."""

from __future__ import annotations

from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def status_label(value: str) -> str:
    """`revision_requested` -> `revision requested`."""
    return str(value).replace("_", " ")


@register.filter
def usdc(base_units: int | None) -> str:
    """USDC base units (6 decimals) as a plain amount: 25000000 -> 25.00."""
    if base_units is None:
        return ""
    return f"{Decimal(base_units) / Decimal(10**6):,.2f}"
