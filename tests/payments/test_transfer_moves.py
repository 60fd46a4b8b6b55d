"""The outgoing-transfer table, cell by cell: each (status, action) either moves as the table says
or is refused, and the refusal writes nothing."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from payments.models import OutgoingTransfer, TransferStatus
from payments.transfers import TABLE, transfer_move
from tests.conftest import make_order


@pytest.mark.parametrize("status", TransferStatus.values)
@pytest.mark.parametrize("move", TABLE, ids=[move.action for move in TABLE])
def test_every_cell_of_the_transfer_table(buyer: Any, agent: Any, status: str, move: Any) -> None:
    order = make_order(buyer, agent, "completed")
    transfer = OutgoingTransfer.objects.get(order=order, kind="payout")
    OutgoingTransfer.objects.filter(pk=transfer.pk).update(status=status)
    transfer.refresh_from_db()
    if status in move.sources:
        transfer_move(transfer, move.action, last_error="noted")
        transfer.refresh_from_db()
        assert (transfer.status, transfer.last_error) == (move.target, "noted")
    else:
        with pytest.raises(ValueError, match=f"cannot {move.action} from {status}"):
            transfer_move(transfer, move.action, last_error="noted")
        transfer.refresh_from_db()
        assert (transfer.status, transfer.last_error) == (status, "")


def test_nothing_but_the_table_assigns_a_transfer_status() -> None:
    root = pathlib.Path(__file__).resolve().parents[2]
    writers = [
        path.relative_to(root).as_posix()
        for path in (root / "payments").rglob("*.py")
        if ".status = " in path.read_text() and "transfer" in path.read_text()
    ]
    assert writers == ["payments/transfers.py"]
