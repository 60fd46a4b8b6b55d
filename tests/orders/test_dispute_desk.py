"""The dispute desk: one page per dispute with the evidence and a preview of what each decision
moves; bad input and repeated submissions change nothing; the decision is shown to the buyer and
the agent as the order's resolution; the queue, the order's money inlines and the transfers queue."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission
from django.db.models import F
from django.test import Client
from django.utils import timezone

from orders.core.services import message_post
from orders.core.transitions import Role, transition
from orders.disputes import decisions as disputes
from orders.models import Order, OrderEvent, Status
from payments.models import LedgerEntry, OutgoingTransfer, Reconciliation, TransferStatus
from tests.conftest import make_order, make_service

PAID = 45_000_000


@pytest.fixture
def resolver(django_user_model: Any) -> Any:
    user = django_user_model.objects.create_user("resolver", password="pw-resolver-123", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="resolve_dispute"), Permission.objects.get(codename="view_dispute")
    )
    return user


@pytest.fixture
def desk(resolver: Any) -> Client:
    client = Client()
    client.force_login(resolver)
    return client


@pytest.fixture
def disputed(buyer: Any, agent: Any) -> Order:
    """Delivered, sent back once, delivered again (two versions), talked about, then disputed."""
    agent.agent.payout_wallet = "7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
    agent.agent.save(update_fields=["payout_wallet"])
    order = make_order(buyer, agent, Status.REVISION_REQUESTED)
    Order.objects.filter(pk=order.pk).update(reference_urls=["https://example.com/moodboard"])
    message_post(order=order, role=Role.AGENT, actor=agent.principal, content="Second pass coming up.")
    second = [{"url": "https://cdn.example.com/second-pass.png", "media_type": "image"}]
    transition(order.id, "deliver", agent.principal, deliverables=second)
    message_post(order=order, role=Role.BUYER, actor=buyer.principal, content="Still no lab coat.")
    return transition(order.id, "dispute", buyer.principal, reason="The fox has no lab coat in either version.")


def url(order: Order) -> str:
    return f"/admin/orders/dispute/{order.id}/resolve/"


def row(order: Order) -> str:
    """How the queue links to the order (its id may break after the timestamp: <wbr>)."""
    return f"/admin/orders/dispute/{quote(order.id)}/change/"


def money(order: Order) -> tuple[int, int, int]:
    return (
        OutgoingTransfer.objects.filter(order=order).count(),
        LedgerEntry.objects.filter(order=order).count(),
        OrderEvent.objects.filter(order=order).count(),
    )


def test_the_resolve_page_shows_the_evidence_and_what_each_decision_moves(desk: Client, disputed: Order) -> None:
    page = desk.get(url(disputed)).content.decode()

    for evidence in (
        "The fox has no lab coat in either version.",  # the reason
        "Draw a fox in a lab coat, flat colours.",  # the brief
        "https://example.com/moodboard",
        "Version 2",
        "Version 1",
        "second-pass.png",
        "result.png",
        "Second pass coming up.",
        "Still no lab coat.",
        "Paid into escrow",  # the timeline
        f'title="tx{disputed.id}"',  # the payment into escrow
        f"1 of {disputed.max_revisions} used",  # the terms as bought
    ):
        assert evidence in page, evidence
    # Release: 90% to the agent, 10% kept; refund: everything back; send back: nothing moves.
    assert (
        "Agent gets <strong>40.50</strong> · buyer gets <strong>0.00</strong> · platform keeps <strong>4.50</strong>"
        in page
    )
    assert (
        "Agent gets <strong>0.00</strong> · buyer gets <strong>45.00</strong> · platform keeps <strong>0.00</strong>"
        in page
    )
    assert "Moves no money" in page


def test_a_dispute_opens_on_its_resolve_page_from_the_queue(desk: Client, disputed: Order) -> None:
    response = desk.get(row(disputed))
    assert response.status_code == 302
    assert response["Location"] == url(disputed)


def test_a_split_preview_shows_the_figures_and_moves_nothing(desk: Client, disputed: Order) -> None:
    before = money(disputed)

    response = desk.post(url(disputed), {"decision": "preview_split", "agent_amount_usd": "20", "note": ""})

    page = response.content.decode()
    assert response.status_code == 200
    assert (
        "For $20.00 of the price (gross): agent gets <strong>18.00</strong> net · buyer gets <strong>25.00</strong> · "
        "platform keeps <strong>2.00</strong>" in page
    )
    assert "The agent receives 18.000000 USDC" not in page  # cents, not base-unit precision
    assert "The agent receives 18.00 USDC (after the platform&#x27;s fee of 2.00 USDC)" in page
    assert "Confirm the split" in page
    assert money(disputed) == before


def test_the_preview_is_what_the_split_then_moves(desk: Client, disputed: Order) -> None:
    preview = disputes.decision_preview(disputed, "split", Decimal("33.33"))

    desk.post(
        url(disputed),
        {
            "decision": "split",
            "agent_amount_usd": "33.33",
            "previewed_amount": "33.33",
            "note": "A third was unusable.",
        },
    )

    sent = dict(OutgoingTransfer.objects.filter(order=disputed).values_list("kind", "amount_base_units"))
    fee = -LedgerEntry.objects.get(order=disputed, account="platform_revenue").amount
    assert (sent["payout"], sent["refund"], fee) == (preview.agent, preview.buyer, preview.platform)
    assert preview.agent + preview.buyer + preview.platform == PAID


def test_a_split_confirmed_for_another_amount_than_previewed_is_previewed_again(desk: Client, disputed: Order) -> None:
    before = money(disputed)
    response = desk.post(
        url(disputed),
        {"decision": "split", "agent_amount_usd": "30.00", "previewed_amount": "20.00", "note": "Two thirds."},
    )
    assert response.status_code == 400
    assert "The amount changed since the preview" in response.content.decode()
    assert "For $30.00" in response.content.decode()
    assert money(disputed) == before


@pytest.mark.parametrize("decision", ["release", "refund", "split", "send_back"])
def test_a_decision_without_a_note_changes_nothing(desk: Client, disputed: Order, decision: str) -> None:
    before = money(disputed)
    response = desk.post(
        url(disputed), {"decision": decision, "note": "   ", "agent_amount_usd": "20.00", "previewed_amount": "20.00"}
    )
    assert response.status_code == 400
    assert "Write a note" in response.content.decode()
    disputed.refresh_from_db()
    assert disputed.status == Status.DISPUTED
    assert money(disputed) == before


@pytest.mark.parametrize(
    ("amount", "says"),
    [
        ("", "dollars with at most two decimals"),
        ("abc", "dollars with at most two decimals"),
        ("20.005", "dollars with at most two decimals"),
        ("1e3", "less than the price"),
        ("NaN", "dollars with at most two decimals"),
        ("0", "more than 0"),
        ("-5", "more than 0"),
        ("45.00", "less than the price"),
        ("1000", "less than the price"),
    ],
)
@pytest.mark.parametrize("decision", ["preview_split", "split"])
def test_a_split_amount_out_of_range_or_malformed_changes_nothing(
    desk: Client, disputed: Order, amount: str, says: str, decision: str
) -> None:
    before = money(disputed)
    response = desk.post(
        url(disputed), {"decision": decision, "agent_amount_usd": amount, "previewed_amount": amount, "note": "Split."}
    )
    assert response.status_code == 400
    assert says in response.content.decode()
    assert "Confirm the split" not in response.content.decode()
    disputed.refresh_from_db()
    assert disputed.status == Status.DISPUTED
    assert money(disputed) == before


def test_a_decision_on_an_order_no_longer_disputed_changes_nothing(desk: Client, buyer: Any, agent: Any) -> None:
    order = make_order(buyer, agent, Status.DELIVERED)
    before = money(order)
    response = desk.post(url(order), {"decision": "refund", "note": "Refund it."})
    assert response.status_code == 409
    assert "not disputed" in response.content.decode()
    order.refresh_from_db()
    assert order.status == Status.DELIVERED
    assert money(order) == before


@pytest.mark.parametrize("second", ["split", "refund"])
def test_a_double_submitted_decision_moves_money_once(desk: Client, disputed: Order, second: str) -> None:
    form = {"decision": "split", "agent_amount_usd": "20.00", "previewed_amount": "20.00", "note": "Half."}
    first = desk.post(url(disputed), form)
    assert first.status_code == 302
    after_first = money(disputed)

    again = desk.post(url(disputed), {**form, "decision": second})

    assert again.status_code == 409
    assert "already decided (split" in again.content.decode()
    assert money(disputed) == after_first
    assert dict(OutgoingTransfer.objects.filter(order=disputed).values_list("kind", "amount_base_units")) == {
        "payout": 18_000_000,
        "refund": 25_000_000,
    }


def test_the_decision_is_recorded_with_the_staff_member_and_shown_to_buyer_and_agent(
    desk: Client, resolver: Any, disputed: Order, buyer: Any, agent: Any
) -> None:
    form = {"decision": "split", "agent_amount_usd": "20.00", "previewed_amount": "20.00", "note": "Half was usable."}
    landed = desk.post(url(disputed), form, follow=True).content.decode()
    assert "Split: recorded with your note; the order is completed." in landed
    assert "Decided: split" in landed
    assert "agent_payable" in landed  # the ledger lines the decision posted
    assert "Confirm the split" not in landed

    assert "The agent receives 18.00 USDC; the buyer gets back 25.00 USDC." in landed
    event = OrderEvent.objects.get(order=disputed, action="split")
    # Staff's note, then the net amounts it moved: the buyer and the agent read both.
    recorded = (
        "Half was usable.\n\nThe agent receives 18.00 USDC (after the platform's fee of 2.00 USDC); "
        "the buyer gets back 25.00 USDC."
    )
    assert (event.actor_kind, event.actor_id, event.data["note"]) == ("staff", f"user:{resolver.pk}", recorded)
    for party in (buyer, agent):
        shown = party.api.get(f"/api/orders/{disputed.id}").body["data"]["resolution"]
        assert shown == {
            "decision": "split",
            "note": recorded,
            "agent_amount_usd": "20.00",
            "agent_payout_base_units": 18_000_000,
            "refund_base_units": 25_000_000,
            "platform_fee_base_units": 2_000_000,
            "decided_at": event.created_at.isoformat(),
        }


def test_the_buyers_page_shows_the_resolution_and_the_note(desk: Client, disputed: Order, buyer: Any) -> None:
    from tests.orders.test_order_pages import browser_of

    desk.post(url(disputed), {"decision": "refund", "note": "Nothing matched the brief.", "confirmed": "refund"})

    page = browser_of(buyer).get(f"/orders/{disputed.id}/").content.decode()
    assert "Dispute resolved: refunded to the buyer" in page
    assert "Nothing matched the brief." in page
    assert "Back to you: <strong>45.00 USDC</strong>" in page


def test_an_undecided_or_never_disputed_order_has_no_resolution(buyer: Any, agent: Any, disputed: Order) -> None:
    assert buyer.api.get(f"/api/orders/{disputed.id}").body["data"]["resolution"] is None
    other = make_order(buyer, agent, Status.COMPLETED)
    assert buyer.api.get(f"/api/orders/{other.id}").body["data"]["resolution"] is None


def test_a_dispute_after_a_send_back_is_undecided_again(desk: Client, disputed: Order, buyer: Any, agent: Any) -> None:
    desk.post(url(disputed), {"decision": "send_back", "note": "Add the lab coat."})
    assert buyer.api.get(f"/api/orders/{disputed.id}").body["data"]["resolution"]["decision"] == "send_back"
    third = [{"url": "https://cdn.example.com/third.png", "media_type": "image"}]
    transition(disputed.id, "deliver", agent.principal, deliverables=third)
    transition(disputed.id, "dispute", buyer.principal, reason="Still no coat.")
    assert buyer.api.get(f"/api/orders/{disputed.id}").body["data"]["resolution"] is None


# --- the queue ----------------------------------------------------------------------------------


def test_the_queue_is_oldest_first_with_age_amount_agent_and_the_overdue_marker(
    desk: Client, disputed: Order, buyer: Any, agent: Any
) -> None:
    service = make_service(agent.agent, price_type="fixed", price="30.00", turnaround_hours=24)
    overdue = make_order(buyer, agent, Status.IN_PROGRESS, service=service)
    Order.objects.filter(pk=overdue.pk).update(paid_at=F("paid_at") - timedelta(hours=30))
    transition(overdue.id, "dispute", buyer.principal, reason="Nothing delivered in time.")
    # The overdue one was disputed two days ago: it waits longest, so it comes first.
    OrderEvent.objects.filter(order=overdue, action="dispute").update(created_at=timezone.now() - timedelta(days=2))

    page = desk.get("/admin/orders/dispute/").content.decode()

    assert page.index(row(overdue)) < page.index(row(disputed))
    assert "2 d 0 h" in page
    assert "$30.00" in page
    assert "$45.00" in page
    assert "Pixel Forge" in page
    assert page.count("overdue: nothing delivered") == 1
    assert "Nothing delivered in time." in page


@pytest.mark.parametrize(
    ("query", "shown"),
    [("amount=lt50", True), ("amount=gte500", False), ("age=lt1", True), ("age=gte3", False)],
)
def test_the_queue_filters_by_amount_and_age(desk: Client, disputed: Order, query: str, shown: bool) -> None:
    page = desk.get(f"/admin/orders/dispute/?{query}").content.decode()
    assert (row(disputed) in page) is shown


def test_the_queue_filters_by_chain(desk: Client, disputed: Order) -> None:
    assert row(disputed) in desk.get("/admin/orders/dispute/?payment_chain__exact=solana").content.decode()
    assert row(disputed) not in desk.get("/admin/orders/dispute/?payment_chain__exact=base").content.decode()


# --- money views ------------------------------------------------------------------------------------


def test_the_order_shows_its_payments_transfers_and_ledger_lines(
    django_user_model: Any, buyer: Any, agent: Any
) -> None:
    order = make_order(buyer, agent, Status.COMPLETED)
    root = django_user_model.objects.create_superuser("root", password="pw-root-12345")
    client = Client()
    client.force_login(root)

    page = client.get(f"/admin/orders/order/{order.id}/change/").content.decode()

    for heading in (
        "payments (claims and verified)",
        "unapplied inbound transfers",
        "outgoing transfers",
        "ledger lines",
    ):
        assert heading.lower() in page.lower(), heading
    assert f"tx{order.id}" in page
    assert "agent_payable" in page


def test_the_transfer_queue_lists_failed_first_under_the_last_reconciliation_per_chain(
    django_user_model: Any, buyer: Any, agent: Any
) -> None:
    done = make_order(buyer, agent, Status.COMPLETED)
    failed = make_order(buyer, agent, Status.COMPLETED)
    OutgoingTransfer.objects.filter(order=done).update(status=TransferStatus.CONFIRMED)
    OutgoingTransfer.objects.filter(order=failed).update(status=TransferStatus.FAILED, last_error="no payout wallet")
    Reconciliation.objects.create(chain="solana", on_chain=10, ledger=10, unexplained=0)
    Reconciliation.objects.create(chain="solana", on_chain=10, ledger=7, unexplained=3_000_000)
    root = django_user_model.objects.create_superuser("root", password="pw-root-12345")
    client = Client()
    client.force_login(root)

    page = client.get("/admin/payments/outgoingtransfer/").content.decode()

    assert page.index(failed.id) < page.index(done.id)
    assert "3.00 USDC unexplained" in page  # the latest Solana run, not the clean one before it
    assert "never reconciled" in page  # Base


@pytest.mark.parametrize(
    ("decision", "net"),
    [
        (
            "release",
            "The agent receives 40.50 USDC (after the platform&#x27;s fee of 4.50 USDC); the buyer gets back 0.00",
        ),
        (
            "refund",
            "The agent receives 0.00 USDC (after the platform&#x27;s fee of 0.00 USDC); the buyer gets back 45.00",
        ),
    ],
)
def test_release_and_refund_are_previewed_in_net_amounts_then_confirmed(
    desk: Client, disputed: Order, decision: str, net: str
) -> None:
    before = money(disputed)

    previewed = desk.post(url(disputed), {"decision": decision, "note": "Decided on the evidence."})

    page = previewed.content.decode()
    assert previewed.status_code == 200
    assert net in page
    assert f'<input type="hidden" name="confirmed" value="{decision}">' in page
    assert "Confirm: " in page
    assert "Decided on the evidence." in page  # the note is kept for the confirmation
    disputed.refresh_from_db()
    assert disputed.status == Status.DISPUTED
    assert money(disputed) == before

    confirmed = desk.post(
        url(disputed), {"decision": decision, "note": "Decided on the evidence.", "confirmed": decision}
    )
    assert confirmed.status_code == 302
    disputed.refresh_from_db()
    assert disputed.status == (Status.COMPLETED if decision == "release" else Status.CANCELLED)


@pytest.mark.parametrize("amount", ["1e400", "1e26", "9" * 40, "-1e400", "1e-400"])
@pytest.mark.parametrize("decision", ["preview_split", "split"])
def test_a_huge_split_amount_is_a_400_with_a_sentence_not_a_500(
    desk: Client, disputed: Order, amount: str, decision: str
) -> None:
    before = money(disputed)
    response = desk.post(
        url(disputed), {"decision": decision, "agent_amount_usd": amount, "previewed_amount": amount, "note": "Split."}
    )
    assert response.status_code == 400
    assert "The agent&#x27;s amount must be" in response.content.decode()
    assert money(disputed) == before


def test_the_resolve_page_labels_its_header(desk: Client, disputed: Order) -> None:
    page = desk.get(url(disputed)).content.decode()
    for label in (
        "<dt>Buyer's wallet</dt>",
        "<dt>Disputed at</dt>",
        "<dt>Disputed from</dt>",
        "a person with a Solana wallet",
    ):
        assert label in page, label
    assert " UTC" in page


def test_the_order_page_names_staff_and_offers_no_save_over_read_only_fields(
    desk: Client, resolver: Any, disputed: Order, django_user_model: Any
) -> None:
    form = {"decision": "split", "agent_amount_usd": "20.00", "previewed_amount": "20.00", "note": "Half."}
    assert desk.post(url(disputed), form).status_code == 302
    admin = Client()
    admin.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123"))

    page = admin.get(f"/admin/orders/order/{quote(disputed.id)}/change/").content.decode()

    assert "staff resolver" in page
    assert f"user:{resolver.pk}" not in page
    assert 'name="_save"' not in page
