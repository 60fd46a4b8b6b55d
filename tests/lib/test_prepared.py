"""lib.prepared: a queryset compiled once gives what the ORM gives, row for row and field for
field, on SQLite and PostgreSQL (CI runs both): converters (JSON, decimals, times), one level of
select_related (a null one too), annotations, IN lists of any length, optional filters."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.test.utils import CaptureQueriesContext

from lib.prepared import Prepared, Slot
from orders.models import Order, OrderEvent, Status
from tests.conftest import AgentPersona, WalletBuyer, make_order

pytestmark = pytest.mark.django_db


def _same(got: list[Any], want: list[Any], related: tuple[str, ...] = ()) -> None:
    assert [row.pk for row in got] == [row.pk for row in want]
    for mine, theirs in zip(got, want, strict=True):
        for field in type(theirs)._meta.concrete_fields:
            if field.attname in theirs.get_deferred_fields():
                assert field.attname in mine.get_deferred_fields()
                continue
            assert getattr(mine, field.attname) == getattr(theirs, field.attname), field.attname
            assert type(getattr(mine, field.attname)) is type(getattr(theirs, field.attname)), field.attname
        for name in related:
            with CaptureQueriesContext(connection) as queries:
                mine_related, theirs_related = getattr(mine, name), getattr(theirs, name)
            assert not queries.captured_queries, f"{name} was read again"
            assert (mine_related.pk if mine_related else None) == (theirs_related.pk if theirs_related else None)


@pytest.fixture
def orders(buyer: WalletBuyer, agent: AgentPersona, other_agent: AgentPersona) -> list[Order]:
    made = [make_order(buyer, agent, status) for status in (Status.PAID, Status.IN_PROGRESS, Status.QUOTED)]
    made.append(make_order(other_agent, agent, Status.PAID))  # an agent buyer: buyer_agent set
    Order.objects.filter(pk=made[0].pk).update(reference_urls=["https://example.com/a.png"])
    return made


def test_rows_match_the_orm_with_converters_and_select_related(orders: list[Order], agent: AgentPersona) -> None:
    def build(slot: Slot, statuses: int) -> QuerySet[Order]:
        return (
            Order.objects.select_related("service", "buyer_agent")
            .filter(agent_id=slot("agent"), status__in=slot.many("status", statuses))
            .order_by("-id")
        )

    prepared = Prepared(build)
    for statuses in (["paid"], ["paid", "in_progress"], ["quoted", "paid", "in_progress"]):
        want = list(
            Order.objects.select_related("service", "buyer_agent")
            .filter(agent_id=agent.id, status__in=statuses)
            .order_by("-id")
        )
        got = prepared.fetch(len(statuses), agent=agent.id, status=statuses)
        assert got, statuses
        _same(got, want, related=("service", "buyer_agent"))
    first = prepared.fetch(1, agent=agent.id, status=["paid"])
    assert any(order.reference_urls == ["https://example.com/a.png"] for order in first)  # JSON, not text
    assert all(isinstance(order.quoted_price_usd, Decimal) for order in first)
    assert any(order.buyer_agent is None for order in first)
    assert any(order.buyer_agent for order in first)


def test_a_shape_compiles_once_and_runs_one_query(orders: list[Order], agent: AgentPersona) -> None:
    built = []

    def build(slot: Slot) -> QuerySet[Order]:
        built.append(1)
        return Order.objects.filter(pk=slot("id"))

    prepared = Prepared(build)
    for order in orders:
        with CaptureQueriesContext(connection) as queries:
            assert [found.pk for found in prepared.fetch(id=order.pk)] == [order.pk]
        assert len(queries.captured_queries) == 1
    assert len(built) == 1
    assert prepared.fetch(id="ord_nothing") == []


def test_only_and_annotations(orders: list[Order]) -> None:
    latest = Subquery(OrderEvent.objects.filter(order=OuterRef("pk")).order_by("-id").values("id")[:1])
    prepared = Prepared(
        lambda slot: (
            Order.objects.only("status", "buyer_wallet")
            .annotate(latest_event=latest, title=F("service__title"))
            .filter(pk=slot("id"))
        )
    )
    for order in orders:
        (got,) = prepared.fetch(id=order.pk)
        want = Order.objects.only("status", "buyer_wallet").annotate(latest_event=latest, title=F("service__title"))
        _same([got], [want.get(pk=order.pk)])
        newest = order.events.order_by("-id").first()
        assert newest is not None
        assert got.latest_event == newest.id
        assert got.title == order.service.title
        assert "brief" in got.get_deferred_fields()


def test_optional_filters_are_shapes(orders: list[Order], agent: AgentPersona) -> None:
    def build(slot: Slot, before: bool) -> QuerySet[Order]:
        queryset = Order.objects.filter(agent_id=slot("agent"))
        if before:
            queryset = queryset.filter(id__lt=slot("before"))
        return queryset.order_by("-id")[:2]

    prepared = Prepared(build)
    newest = prepared.fetch(False, agent=agent.id)
    assert [o.pk for o in newest] == list(
        Order.objects.filter(agent_id=agent.id).order_by("-id").values_list("pk", flat=True)[:2]
    )
    older = prepared.fetch(True, agent=agent.id, before=newest[-1].pk)
    assert [o.pk for o in older] == list(
        Order.objects.filter(agent_id=agent.id, id__lt=newest[-1].pk).order_by("-id").values_list("pk", flat=True)[:2]
    )


def test_deeper_select_related_is_refused(orders: list[Order]) -> None:
    prepared = Prepared(lambda slot: Order.objects.select_related("service__agent").filter(pk=slot("id")))
    with pytest.raises(ValueError, match="one level"):
        prepared.fetch(id=orders[0].pk)
