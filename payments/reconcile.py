"""Reconciliation: the escrow wallet's USDC on chain against the ledger, per chain.

The ledger's `escrow_wallet` account says what the escrow should hold. The chain may differ only
by transfers in flight, each of which is named: inbound transfers the escrow scan has not decided
yet (in escrow, not in the ledger), and payouts, refunds and returns the chain has confirmed but the
worker has not recorded yet (out of escrow, still in the ledger). Anything else is unexplained.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import Sum

from payments import chains, ledger
from payments.models import (
    LedgerAccount,
    LedgerEntry,
    OutgoingTransfer,
    Reconciliation,
    ScanCursor,
    TransferStatus,
)


class LedgerAlreadyBegun(Exception):
    """The chain's ledger has entries: an opening balance now would double count them."""


def record_opening(chain: str) -> int:
    """An escrow funded before the ledger began (a float for fees, a migration): book what it holds
    as the opening balance, and start the escrow scan after it, so the funding transfers are not
    taken for payments to return. Only on a chain whose ledger is empty. Returns the amount."""
    client = chains.client(chain)
    position, balance = client.opening_point()  # network I/O, outside the transaction
    with transaction.atomic():
        cursor, _ = ScanCursor.objects.select_for_update().get_or_create(chain=chain)
        if LedgerEntry.objects.filter(chain=chain).exists() or cursor.position:
            raise LedgerAlreadyBegun(
                f"{chain}: the ledger has begun (entries, or a scan cursor): a correction is a new journal"
            )
        if balance:
            ledger.opening(chain, balance)
        cursor.position = position
        cursor.save(update_fields=["position", "updated_at"])
    return balance


def reconcile(chain: str, *, inbound_in_flight: list[chains.InboundTransfer], opening: int = 0) -> Reconciliation:
    """Compare and store the result. `inbound_in_flight`: what the escrow scan left undecided;
    `opening`: what the escrow held before the ledger began (a shared test chain, a funded float).
    Network I/O (balance and transfer status reads); raises ChainUnavailable if the chain cannot answer."""
    client = chains.client(chain)
    on_chain = client.token_balance(client.payment_instructions().escrow_address) - opening
    booked = (
        LedgerEntry.objects.filter(chain=chain, account=LedgerAccount.ESCROW_WALLET).aggregate(total=Sum("amount"))[
            "total"
        ]
        or 0
    )
    explained: list[dict[str, object]] = [
        {
            # A Base transaction may carry several transfers into escrow (a bundle): one line per log.
            "tx_hash": f"{item.tx_hash}#{item.log_index}" if chain == "base" else item.tx_hash,
            "amount": item.amount,
            "why": "received, not decided yet (waiting for a claim)",
        }
        for item in inbound_in_flight
    ]
    for transfer in OutgoingTransfer.objects.filter(chain=chain, status=TransferStatus.SIGNED).order_by("pk"):
        signed = chains.SignedTransfer(
            tx_hash=transfer.tx_hash, raw=b"", valid_until=transfer.valid_until, nonce=transfer.nonce
        )
        if client.transfer_status(signed) == "confirmed":
            explained.append(
                {
                    "tx_hash": transfer.tx_hash,
                    "amount": -transfer.amount_base_units,
                    "why": f"{transfer.kind} sent, not recorded yet",
                }
            )
    unexplained = on_chain - booked - sum(int(str(line["amount"])) for line in explained)
    return Reconciliation.objects.create(
        chain=chain,
        on_chain=on_chain,
        ledger=booked,
        explained=explained,
        unexplained=unexplained,
        fee_balance=client.fee_balance(),
    )


def report(result: Reconciliation) -> list[str]:
    """The result as lines a person reads."""

    def usdc(amount: int) -> str:
        return f"{amount / 10**6:,.6f} USDC"

    lines = [
        f"{result.chain}: on chain {usdc(result.on_chain)}, ledger {usdc(result.ledger)}, "
        f"difference {usdc(result.on_chain - result.ledger)}"
    ]
    lines += [f"  {usdc(int(str(line['amount']))):>20}  {line['tx_hash']}  {line['why']}" for line in result.explained]
    lines.append("  clean" if result.is_clean else f"  UNEXPLAINED: {usdc(result.unexplained)}")
    if fee_balance_low(result):
        lines.append(f"  WARNING: the hot wallet holds {result.fee_balance} {FEE_UNITS[result.chain]} for fees")
    return lines


FEE_UNITS = {"solana": "lamports", "base": "wei"}


def fee_balance_low(result: Reconciliation) -> bool:
    floor = settings.HOT_WALLET_FEE_FLOOR.get(result.chain, 0)
    return result.fee_balance is not None and result.fee_balance < floor
