from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from orders.models import Order, OrderEvent, Status, WorkspaceKind
from payments.models import WHOLE_TRANSACTION, Payment
from tests.conftest import make_order, make_service


@pytest.mark.django_db
def test_the_models_and_migrations_agree() -> None:
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_orders_placed_before_the_terms_moved_get_their_services_terms(buyer, agent) -> None:
    """orders 0005 and 0006 on real rows: back to 0004 (the columns go), forward again (they are
    filled from each order's service and its events)."""
    revised = make_order(buyer, agent, Status.REVISION_REQUESTED, service=make_service(agent.agent, max_revisions=2))
    pack = make_order(buyer, agent, Status.IN_PROGRESS, service=make_service(agent.agent, quota_limit=4))
    plain = make_order(buyer, agent, Status.IN_PROGRESS, service=make_service(agent.agent, turnaround_hours=6))
    asked_at = OrderEvent.objects.get(order=revised, action="revision").created_at - timedelta(hours=1)
    OrderEvent.objects.filter(order=revised, action="revision").update(created_at=asked_at)

    executor = MigrationExecutor(connection)
    executor.migrate([("orders", "0004_widen_platform_fee_to_base_units")])
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    rows = {row["id"]: row for row in Order.objects.values()}
    assert (rows[revised.id]["max_revisions"], rows[revised.id]["revision_requested_at"]) == (2, asked_at)
    assert (rows[pack.id]["workspace_kind"], rows[pack.id]["quota_total"]) == (WorkspaceKind.QUOTA_PACK, 4)
    assert (rows[plain.id]["workspace_kind"], rows[plain.id]["turnaround_hours"]) == (WorkspaceKind.NONE, 6)
    assert rows[plain.id]["revision_requested_at"] is None
    assert {row["price_type"] for row in rows.values()} == {"fixed"}


@pytest.mark.django_db(transaction=True)
def test_payments_recorded_per_transaction_count_for_the_whole_transaction_once_logs_bind() -> None:
    """payments 0003 on real rows: a Base row made before payments were bound per Transfer log has
    no known log, so it stands for its whole transaction (no log of it pays again); a Solana
    transaction is one transfer, at 0."""
    for chain, tx_hash in (("base", "0x" + "ab" * 32), ("solana", "5" * 88)):
        Payment.objects.create(
            chain=chain,
            tx_hash=tx_hash,
            status="unapplied",
            reason="unclaimed",
            payer="someone",
            amount_base_units=1,
            verified_at=timezone.now(),
        )
    executor = MigrationExecutor(connection)
    executor.migrate([("payments", "0002_unapplied_transfers_and_reconciliation")])
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert dict(Payment.objects.values_list("chain", "log_index")) == {"base": WHOLE_TRANSACTION, "solana": 0}
