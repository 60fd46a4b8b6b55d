"""Small filters for the order pages."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django import template
from django.conf import settings

from lib.money import usd_text

register = template.Library()


@register.filter
def status_label(value: str) -> str:
    """`revision_requested` -> `revision requested`."""
    return str(value).replace("_", " ")


@register.filter
def usdc(base_units: int | None) -> str:
    """USDC base units (6 decimals) as a plain amount, exact: 25000000 -> 25.00, 90045000 -> 90.045."""
    if base_units is None:
        return ""
    return usd_text(Decimal(base_units) / Decimal(10**6), grouped=True)


@register.filter
def usd(amount: Decimal | None) -> str:
    """A USD amount with its cents and any finer digit it has: 2.500000 -> 2.50, 10.005000 -> 10.005."""
    return "" if amount is None else usd_text(amount)


@register.filter
def iso_datetime(value: str | None) -> datetime | None:
    """An ISO 8601 string (as the API writes it) back to a datetime, for the `date` filter."""
    return datetime.fromisoformat(value) if value else None


@register.filter
def explorer_url(tx_hash: str, chain: str) -> str:
    """The block explorer's page of a transaction (SOLANA_/BASE_EXPLORER_TX_URL), or "" when none is set."""
    pattern = {"solana": settings.SOLANA_EXPLORER_TX_URL, "base": settings.BASE_EXPLORER_TX_URL}.get(chain, "")
    return pattern.replace("{tx}", tx_hash) if pattern and tx_hash else ""
