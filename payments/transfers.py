"""The lifecycle of a payout, refund or return: one table of the moves it may make, and the one
function that makes them. Nothing else assigns `OutgoingTransfer.status` (payments.tasks drives it).

    pending --sign--> signed --confirm--> confirmed
       ^                 |
       |-----expire------|        (never landed and never can: sign anew)
    pending, signed --fail--> failed --retry--> pending   (staff: sign anew)
    pending --hold--> held --retry--> pending   (the recipient has an account now, or staff decided)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from payments.models import OutgoingTransfer
from payments.models import TransferStatus as T


@dataclass(frozen=True)
class Move:
    action: str
    sources: frozenset[T]
    target: T


TABLE: tuple[Move, ...] = (
    Move("sign", frozenset({T.PENDING}), T.SIGNED),  # the signed bytes are stored before any send
    Move("confirm", frozenset({T.SIGNED}), T.CONFIRMED),  # final on chain, and succeeded
    Move("expire", frozenset({T.SIGNED}), T.PENDING),  # its blockhash expired unseen: it can never land
    Move("fail", frozenset({T.PENDING, T.SIGNED}), T.FAILED),  # cannot be signed, or landed and failed
    # Sending would cost rent (no USDC account to land in) or could reach the wrong person (the
    # paying account's owner did not sign): nothing is signed until someone decides.
    Move("hold", frozenset({T.PENDING}), T.HELD),
    # staff, or the scheduler once the recipient has an account: neither failures nor holds moved money
    Move("retry", frozenset({T.FAILED, T.HELD}), T.PENDING),
)
MOVES = {move.action: move for move in TABLE}


def transfer_move(transfer: OutgoingTransfer, action: str, **fields: Any) -> None:
    """Move a transfer the caller has locked by `action`, saving `fields` with the new status.
    A move the table does not allow is a programming error, not a user's: ValueError."""
    move = MOVES[action]
    if transfer.status not in move.sources:
        raise ValueError(f"transfer {transfer.pk}: cannot {action} from {transfer.status}")
    transfer.status = move.target
    for name, value in fields.items():
        setattr(transfer, name, value)
    transfer.save(update_fields=["status", "updated_at", *fields])
