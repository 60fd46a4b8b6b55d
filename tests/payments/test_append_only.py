"""Money records are append-only (issue 23): no delete or change in the admin for anyone, superusers
included; the models refuse UPDATE and DELETE of ledger lines and DELETE of payments, outgoing
transfers and reconciliations; on PostgreSQL, triggers refuse the same to raw SQL."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orders.models import Status
from payments.models import (
    AppendOnlyError,
    LedgerEntry,
    OutgoingTransfer,
    Payment,
    PaymentStatus,
    Reconciliation,
    TransferKind,
)
from tests.conftest import make_order

on_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="the triggers are PostgreSQL's")


@pytest.fixture
def paid(buyer: Any, agent: Any) -> Any:
    """A completed order: its payment, ledger journals and payout are on record."""
    return make_order(buyer, agent, Status.COMPLETED)


@pytest.fixture
def superuser_client(django_user_model: Any) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123"))
    return client


@pytest.mark.parametrize("model", [LedgerEntry, Payment, OutgoingTransfer, Reconciliation], ids=lambda m: m.__name__)
def test_a_superuser_can_neither_delete_nor_edit_money_records_in_the_admin(
    model: Any, paid: Any, superuser_client: Client
) -> None:
    Reconciliation.objects.create(chain="solana", on_chain=1, ledger=1, unexplained=0)
    row = model.objects.order_by("pk").first()
    assert row is not None
    info = (model._meta.app_label, model._meta.model_name)
    before = list(model.objects.order_by("pk").values())

    changelist = superuser_client.get(reverse("admin:{}_{}_changelist".format(*info)))
    assert changelist.status_code == 200
    assert b"delete_selected" not in changelist.content
    assert superuser_client.get(reverse("admin:{}_{}_delete".format(*info), args=[row.pk])).status_code == 403
    superuser_client.post(reverse("admin:{}_{}_delete".format(*info), args=[row.pk]), {"post": "yes"})
    superuser_client.post(
        reverse("admin:{}_{}_changelist".format(*info)),
        {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"},
    )
    change = superuser_client.get(reverse("admin:{}_{}_change".format(*info), args=[row.pk]))
    assert b'name="_save"' not in change.content
    assert b"deletelink" not in change.content
    superuser_client.post(reverse("admin:{}_{}_change".format(*info), args=[row.pk]), {"_save": "Save", "amount": 1})

    assert list(model.objects.order_by("pk").values()) == before


def test_the_models_refuse_to_edit_or_delete_a_ledger_line(paid: Any) -> None:
    line = LedgerEntry.objects.filter(order=paid).first()
    assert line is not None
    line.amount += 1
    with pytest.raises(AppendOnlyError, match="append-only"):
        line.save()
    with pytest.raises(AppendOnlyError):
        line.delete()
    with pytest.raises(AppendOnlyError):
        LedgerEntry.objects.filter(order=paid).update(amount=1)
    with pytest.raises(AppendOnlyError):
        LedgerEntry.objects.filter(order=paid).delete()
    assert LedgerEntry.objects.filter(order=paid).count() > 1


def test_the_models_refuse_to_delete_payments_transfers_and_reconciliations(paid: Any) -> None:
    Reconciliation.objects.create(chain="solana", on_chain=1, ledger=1, unexplained=0)
    for queryset in (
        Payment.objects.filter(order=paid),
        OutgoingTransfer.objects.filter(order=paid),
        Reconciliation.objects.all(),
    ):
        row = queryset.first()
        assert row is not None
        with pytest.raises(AppendOnlyError):
            row.delete()
        with pytest.raises(AppendOnlyError):
            queryset.delete()
        assert queryset.exists()
    # A status change goes through the table's own function: the row is still updatable.
    assert OutgoingTransfer.objects.filter(order=paid, kind=TransferKind.PAYOUT).update(attempts=5) == 1


def test_a_pending_claim_holds_no_money_and_may_still_be_dropped(buyer: Any, agent: Any) -> None:
    order = make_order(buyer, agent, Status.QUOTED)
    claim = Payment.objects.create(order=order, chain="solana", tx_hash="claimed", status=PaymentStatus.PENDING)
    assert Payment.objects.filter(pk=claim.pk).delete()[0] == 1


@on_postgres
@pytest.mark.parametrize(
    ("table", "statement"),
    [
        ("payments_ledgerentry", "UPDATE payments_ledgerentry SET amount = amount + 1 WHERE id = %s"),
        ("payments_ledgerentry", "DELETE FROM payments_ledgerentry WHERE id = %s"),
        ("payments_payment", "DELETE FROM payments_payment WHERE id = %s"),
        ("payments_outgoingtransfer", "DELETE FROM payments_outgoingtransfer WHERE id = %s"),
        ("payments_reconciliation", "DELETE FROM payments_reconciliation WHERE id = %s"),
    ],
)
def test_raw_sql_on_postgres_is_refused_by_the_triggers(table: str, statement: str, paid: Any) -> None:
    Reconciliation.objects.create(chain="solana", on_chain=1, ledger=1, unexplained=0)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {table} ORDER BY id LIMIT 1")  # noqa: S608 (a fixed table name)
        (row_id,) = cursor.fetchone()
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            cursor.execute(statement, [row_id])
        cursor.execute(f"SELECT count(*) FROM {table} WHERE id = %s", [row_id])  # noqa: S608
        assert cursor.fetchone() == (1,)


@on_postgres
def test_raw_sql_may_still_drop_a_pending_claim_on_postgres(buyer: Any, agent: Any) -> None:
    order = make_order(buyer, agent, Status.QUOTED)
    claim = Payment.objects.create(
        order=order, chain="solana", tx_hash="claimed", status=PaymentStatus.PENDING, verified_at=timezone.now()
    )
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM payments_payment WHERE id = %s", [claim.pk])
        assert cursor.rowcount == 1
