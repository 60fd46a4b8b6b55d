"""Staff resolve disputes in admin; each decision goes through transition(), needs the
resolve_dispute permission, is recorded with the staff member and a note, and money follows it."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission
from django.db.models import Sum
from django.test import Client
from django_tasks_db.models import DBTaskResult

from orders.models import Order, OrderEvent, Status
from payments.models import LedgerEntry, OutgoingTransfer
from tests.conftest import make_order

PAID = 45_000_000  # the factory's quote is 45.00


@pytest.fixture
def resolver(django_user_model: Any) -> Any:
    user = django_user_model.objects.create_user("resolver", password="pw-resolver-123", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="resolve_dispute"), Permission.objects.get(codename="view_dispute")
    )
    return user


@pytest.fixture
def disputed(buyer: Any, agent: Any) -> Order:
    agent.agent.payout_wallet = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
    agent.agent.save(update_fields=["payout_wallet"])
    return make_order(buyer, agent, Status.DISPUTED)


def resolve(user: Any, order: Order, action: str, **fields: str) -> Any:
    """Press a decision on the dispute's resolve page (release, refund and split are previewed, then confirmed)."""
    client = Client()
    client.force_login(user)
    url = f"/admin/orders/dispute/{order.id}/resolve/"
    if action == "split" and "agent_amount_usd" in fields:
        client.post(url, {"decision": "preview_split", **fields})
        fields = {**fields, "previewed_amount": fields["agent_amount_usd"]}
    if action in ("release", "refund"):
        client.post(url, {"decision": action, **fields})
        fields = {**fields, "confirmed": action}
    return client.post(url, {"decision": action, **fields}, follow=True)


def transfers(order: Order) -> dict[str, int]:
    return dict(OutgoingTransfer.objects.filter(order=order).values_list("kind", "amount_base_units"))


def assert_balanced(order: Order) -> None:
    sums = LedgerEntry.objects.filter(order=order).values("journal").annotate(total=Sum("amount"))
    assert all(row["total"] == 0 for row in sums)


def test_release_completes_and_pays_the_agent(resolver: Any, disputed: Order) -> None:
    resolve(resolver, disputed, "release", note="The delivery matches the brief.")
    disputed.refresh_from_db()
    assert disputed.status == Status.COMPLETED
    assert transfers(disputed) == {"payout": PAID * 9 // 10}
    event = OrderEvent.objects.filter(order=disputed, action="release").get()
    assert (event.actor_kind, event.actor_id) == ("staff", f"user:{resolver.pk}")
    assert event.data["note"] == (
        "The delivery matches the brief.\n\nThe agent receives 40.50 USDC (after the platform's fee of 4.50 USDC); "
        "the buyer gets back 0.00 USDC."
    )
    assert_balanced(disputed)


def test_refund_cancels_and_returns_everything_to_the_buyer(resolver: Any, disputed: Order) -> None:
    resolve(resolver, disputed, "refund", note="Nothing usable was delivered.")
    disputed.refresh_from_db()
    assert disputed.status == Status.CANCELLED
    assert transfers(disputed) == {"refund": PAID}
    assert_balanced(disputed)


def test_split_moves_money_to_both_sides(resolver: Any, disputed: Order) -> None:
    resolve(resolver, disputed, "split", note="Half was usable.", agent_amount_usd="20.00")
    disputed.refresh_from_db()
    assert disputed.status == Status.COMPLETED
    assert transfers(disputed) == {"payout": 18_000_000, "refund": 25_000_000}
    fee = LedgerEntry.objects.get(order=disputed, account="platform_revenue").amount
    assert fee == -2_000_000
    assert_balanced(disputed)


def test_split_without_an_amount_changes_nothing(resolver: Any, disputed: Order) -> None:
    response = resolve(resolver, disputed, "split", note="Half was usable.")
    assert response.status_code == 400
    assert b"dollars with at most two decimals" in response.content
    disputed.refresh_from_db()
    assert disputed.status == Status.DISPUTED
    assert not OutgoingTransfer.objects.exists()


def test_send_back_asks_the_agent_for_a_revision(resolver: Any, disputed: Order) -> None:
    resolve(resolver, disputed, "send_back", note="One more pass on the colours.")
    disputed.refresh_from_db()
    assert disputed.status == Status.REVISION_REQUESTED
    assert disputed.revision_count == 0  # staff sending it back does not use the buyer's revisions
    assert not OutgoingTransfer.objects.exists()


def test_staff_without_the_permission_cannot_resolve(django_user_model: Any, disputed: Order) -> None:
    viewer = django_user_model.objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_dispute"))
    response = resolve(viewer, disputed, "release", note="Trying.")
    assert response.status_code == 403
    disputed.refresh_from_db()
    assert disputed.status == Status.DISPUTED
    assert not OrderEvent.objects.filter(order=disputed, action="release").exists()


def test_the_queue_lists_only_disputed_orders(resolver: Any, disputed: Order, buyer: Any, agent: Any) -> None:
    other = make_order(buyer, agent, Status.DELIVERED)
    client = Client()
    client.force_login(resolver)
    page = client.get("/admin/orders/dispute/").content.decode()
    assert f"/admin/orders/dispute/{quote(disputed.id)}/change/" in page
    assert other.id not in page


def test_a_payout_without_a_wallet_is_visible_and_retryable(django_user_model: Any, buyer: Any, agent: Any) -> None:
    from payments.tasks import process_transfer

    order = make_order(buyer, agent, Status.COMPLETED)  # the agent has no payout wallet
    transfer = OutgoingTransfer.objects.get(order=order)
    assert process_transfer(transfer.pk) == "failed"
    transfer.refresh_from_db()
    assert "no payout wallet" in transfer.last_error
    view = buyer.api.get(f"/api/orders/{order.id}").body["data"]
    assert view["transfers"][0]["status"] == "failed"
    assert "no payout wallet" in view["transfers"][0]["error"]
    assert OrderEvent.objects.filter(order=order, action="payout_failed").exists()

    admin_user = django_user_model.objects.create_superuser("root", password="pw-root-12345")
    client = Client()
    client.force_login(admin_user)
    assert transfer.tx_hash == ""
    listing = client.get("/admin/payments/outgoingtransfer/").content.decode()
    assert "failed" in listing
    queued = DBTaskResult.objects.ready().filter(task_path="payments.tasks.send_transfer")
    before = queued.count()
    client.post("/admin/payments/outgoingtransfer/", {"action": "retry", "_selected_action": [transfer.pk], "index": 0})
    transfer.refresh_from_db()
    assert transfer.status == "pending"
    assert queued.count() == before + 1  # the send task is queued again, with the change
