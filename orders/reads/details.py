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

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from functools import cache
from operator import attrgetter
from typing import Any

from django.db import connection, models
from django.db.models.expressions import RawSQL
from django.utils.dateparse import parse_datetime

from orders.models import Deliverable, Order, OrderEvent
from orders.reads.resolution import DECIDING
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
    # Served by its own partial index (event_decision_idx): a busy order's messages are not walked.
    Part("decision_events", OrderEvent.objects.filter(DECIDING), ("id",)),
)


def attach(orders: Sequence[Order]) -> None:
    """Set each part's list on every order (empty lists included) in one query; a payment's return
    transfer comes from its order's transfers, so `payment.return_transfer` reads no more."""
    if not orders:
        return
    ids = [order.id for order in orders]
    # PostgreSQL: the ids as one array parameter, so the statement is the same text for any page
    # (psycopg caches its parsing, and prepares it, only under 50 parameters).
    postgresql = connection.vendor == "postgresql"
    match = " = ANY(%s)" if postgresql else f" IN ({', '.join(['%s'] * len(ids))})"
    branches = _branches(connection.vendor)
    sql = " UNION ALL ".join(branch + match for branch in branches)
    with connection.cursor() as cursor:
        cursor.execute(sql, ([ids] if postgresql else ids) * len(branches))
        _place(orders, cursor.fetchall())


def inline() -> RawSQL:
    """The same rows as one more column of a query on orders (`Order.objects.annotate(details=inline())`):
    a JSON array of [part, row] per order, read by `attach_inline` with no query of its own: one
    round trip fewer for a single order's read. (Not for lists: a generic plan computed it for every
    row before the LIMIT.)"""
    return RawSQL(_inline(connection.vendor), ())  # noqa: S611 - SQL built from the models and constants


def attach_inline(orders: Sequence[Order]) -> None:
    """`attach`, from the `details` column `inline()` added to each order."""
    rows = []
    for order in orders:
        items = order.details  # type: ignore[attr-defined]
        for index, data in json.loads(items) if isinstance(items, str) else items or []:
            rows.append((index, order.id, data))
    _place(orders, rows)


def _place(orders: Sequence[Order], rows: Sequence[tuple[int, str, Any]]) -> None:
    found: dict[str, dict[str, list[Any]]] = {order.id: {part.attr: [] for part in PARTS} for order in orders}
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
def _inline(vendor: str) -> str:
    order_id = f'{connection.ops.quote_name(Order._meta.db_table)}."id"'
    union = " UNION ALL ".join(f"{branch} = {order_id}" for branch in _branches(vendor))
    if vendor == "postgresql":
        return f"SELECT coalesce(json_agg(json_build_array(d.part, d.item)), '[]') FROM ({union}) AS d"  # noqa: S608
    return f"SELECT json_group_array(json_array(d.part, json(d.item))) FROM ({union}) AS d"  # noqa: S608


@cache
def _branches(vendor: str) -> tuple[str, ...]:
    """Each part's SELECT up to its `order_id` comparison: (part index, order id, the row as JSON)."""
    out = []
    build = "json_build_object" if vendor == "postgresql" else "json_object"
    for index, part in enumerate(PARTS):
        model = part.queryset.model
        table = connection.ops.quote_name(model._meta.db_table)
        query = part.queryset.query
        where, where_params = (
            query.get_compiler(connection=connection).compile(query.where) if query.where else ("", [])
        )
        # The filter's values are the code's own constants: written into the SQL, not sent as
        # parameters, so a prepared statement's generic plan still sees them and can use a partial
        # index (event_decision_idx) instead of walking every event of the order.
        where = _with_literals(where, where_params, vendor)
        fields = _fields(model)  # type: ignore[arg-type]  # a model class is hashable
        pairs = ", ".join(f"'{field.attname}', {_json_value(table, field, vendor)}" for field in fields)
        sql = f'SELECT {index} AS part, {table}."order_id" AS order_id, {build}({pairs}) AS item FROM {table} WHERE '  # noqa: S608 - names from the models
        sql += f'({where}) AND {table}."order_id"' if where else f'{table}."order_id"'
        out.append(sql)
    return tuple(out)


def _with_literals(sql: str, params: Sequence[Any], vendor: str) -> str:
    parts = sql.split("%s")
    if len(parts) != len(params) + 1:
        raise ValueError(f"{len(params)} values for {len(parts) - 1} placeholders in {sql!r}")
    out = [parts[0]]
    for value, part in zip(params, parts[1:], strict=True):
        out += [_literal(value, vendor), part]
    return "".join(out)


def _literal(value: Any, vendor: str) -> str:
    if isinstance(value, bool):
        return ("TRUE" if value else "FALSE") if vendor == "postgresql" else str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {value!r}")


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
