"""What an order shows beside its own row, for a page of orders in one query.

The API's order (`queries.order_to_dict`) and the order page show its current deliverables, the
payments waiting to be final or that paid nothing (with their return), its outgoing transfers and
staff's decisions on a dispute. Four prefetches read these in four queries, each built by the ORM on
every request: most of an agent poll's time (BENCHMARKS.md, issue 16). Here they are one UNION ALL.
Each part's filter is still written as a queryset, compiled to SQL once per process; each row comes
back as one JSON object built by the database (`json_build_object` on PostgreSQL, `json_object` on
SQLite) and is turned back into a model instance.

    orders = list(Order.objects.filter(...)[:20])
    attach(orders)  # order.current_deliverables, .open_payments, .transfer_list, .decision_events
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from functools import cache
from operator import attrgetter
from typing import Any

from django.db import connection, models
from django.utils.dateparse import parse_datetime

from orders.disputes import DECIDING
from orders.models import Deliverable, Order, OrderEvent
from payments.models import OutgoingTransfer, Payment, PaymentStatus


@dataclass(frozen=True)
class Part:
    attr: str  # the list set on each order
    queryset: models.QuerySet[Any]  # which rows of the model (a filter; `order_id` is added)
    sort: tuple[str, ...]  # attnames the list is sorted by


PARTS = (
    Part("current_deliverables", Deliverable.objects.filter(superseded=False), ("id",)),
    Part(
        "open_payments",
        Payment.objects.filter(status__in=[PaymentStatus.PENDING, PaymentStatus.UNAPPLIED]),
        ("created_at", "id"),
    ),
    Part("transfer_list", OutgoingTransfer.objects.all(), ("id",)),
    Part("decision_events", OrderEvent.objects.filter(DECIDING), ("id",)),
)


def attach(orders: Sequence[Order]) -> None:
    """Set each part's list on every order (empty lists included) in one query; a payment's return
    transfer comes from its order's transfers, so `payment.return_transfer` reads no more."""
    if not orders:
        return
    found: dict[str, dict[str, list[Any]]] = {order.id: {part.attr: [] for part in PARTS} for order in orders}
    ids = list(found)
    placeholders = ", ".join(["%s"] * len(ids))
    sql, params = [], []
    for branch, branch_params in _branches(connection.vendor):
        sql.append(f"{branch} IN ({placeholders})")
        params += [*branch_params, *ids]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(sql), params)
        rows = cursor.fetchall()
    for index, order_id, data in rows:
        part = PARTS[index]
        found[order_id][part.attr].append(_instance(part.queryset.model, data))
    for order in orders:
        lists = found[order.id]
        for part in PARTS:
            lists[part.attr].sort(key=attrgetter(*part.sort))
            for row in lists[part.attr]:
                row._state.fields_cache["order"] = order
            setattr(order, part.attr, lists[part.attr])
        returns = {transfer.payment_id: transfer for transfer in lists["transfer_list"] if transfer.payment_id}
        for payment in lists["open_payments"]:
            Payment.return_transfer.related.set_cached_value(payment, returns.get(payment.id))


@cache
def _branches(vendor: str) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """Each part's SELECT up to its `order_id IN`: (part index, order id, the row as JSON), and the
    params of its filter."""
    out = []
    build = "json_build_object" if vendor == "postgresql" else "json_object"
    for index, part in enumerate(PARTS):
        model = part.queryset.model
        table = connection.ops.quote_name(model._meta.db_table)
        query = part.queryset.query
        where, where_params = (
            query.get_compiler(connection=connection).compile(query.where) if query.where else ("", [])
        )
        fields = _fields(model)  # type: ignore[arg-type]  # a model class is hashable
        pairs = ", ".join(f"'{field.attname}', {_json_value(table, field, vendor)}" for field in fields)
        sql = f'SELECT {index}, {table}."order_id", {build}({pairs}) FROM {table} WHERE '  # noqa: S608 - names from the models
        sql += f'({where}) AND {table}."order_id"' if where else f'{table}."order_id"'
        out.append((sql, tuple(where_params)))
    return tuple(out)


def _json_value(table: str, field: models.Field[Any, Any], vendor: str) -> str:
    column = f'{table}."{field.column}"'
    if vendor != "postgresql" and isinstance(field, models.JSONField):
        return f"json({column})"  # SQLite keeps JSON as text: embed it as JSON, not as a string
    return column


@cache
def _fields(model: type[models.Model]) -> tuple[models.Field[Any, Any], ...]:
    """The columns brought back: all but bytes (a transfer's signed transaction), left deferred."""
    return tuple(field for field in model._meta.concrete_fields if not isinstance(field, models.BinaryField))


def _instance(model: type[models.Model], data: Any) -> Any:
    if isinstance(data, str):  # SQLite returns the JSON as text; psycopg parses it
        import json

        data = json.loads(data)
    fields = _fields(model)
    values = [_python(field, data[field.attname]) for field in fields]
    return model.from_db(connection.alias, [field.attname for field in fields], values)


def _python(field: models.Field[Any, Any], value: Any) -> Any:
    if value is None:
        return None
    if isinstance(field, models.DateTimeField):
        moment = parse_datetime(value)
        if moment is not None and moment.tzinfo is None:  # SQLite stores UTC without an offset
            moment = moment.replace(tzinfo=UTC)
        return moment
    if isinstance(field, models.BooleanField):
        return bool(value)
    return value
