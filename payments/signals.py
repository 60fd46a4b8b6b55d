"""News from payments for the apps above it, which subscribe (orders writes it into the order's
timeline and webhooks). Sent inside the transaction of the change it reports, so a receiver's
writes commit or roll back with it."""

from __future__ import annotations

from django.dispatch import Signal

# A payout, refund or return was sent (`<kind>_sent`) or failed (`<kind>_failed`).
# Arguments: transfer (OutgoingTransfer), action (str), data (dict).
transfer_changed = Signal()
