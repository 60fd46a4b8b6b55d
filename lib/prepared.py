"""Querysets built once per process and run again with new values: for the hottest reads.

An agent's poll spent more time in the ORM than in PostgreSQL: compiling the same query on every
request (about 1.4 ms) and building model instances through the generic iterator (about 2 ms for 20
orders; BENCHMARKS.md, issue 16). Here the queryset is written as usual, with named slots where the
request's values go; it is compiled once per shape, and each call sends the stored SQL with the
slots filled, then builds the instances from the rows as Django's own iterator would (the fields'
converters, one level of select_related, annotations).

    AGENT_ORDERS = Prepared(
        lambda slot, statuses: Order.objects.filter(agent_id=slot("agent"), status__in=slot.many("status", statuses))
    )
    rows = AGENT_ORDERS.fetch(agent="agt_...", status=["paid", "in_progress"])

Slots take strings only (ids, statuses, cursors): a sentinel string passes every text field's
preparation unchanged, and is found again in the compiled parameters. What changes the SQL's
shape (how many values an IN list has, a LIMIT, an optional filter) is part of the shape key.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.db.models import Model, QuerySet

_MARK = f"\x1eslot-{secrets.token_hex(4)}:"


class Slot:
    """Hands out the sentinels a queryset is built with."""

    def __call__(self, name: str) -> str:
        return f"{_MARK}{name}"

    def many(self, name: str, count: int) -> list[str]:
        return [f"{_MARK}{name}#{index}" for index in range(count)]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple[Any, ...]  # constants, or ("slot", name, index | None)
    model: type[Model]
    fields: tuple[int, int, tuple[str, ...]]  # the model's columns: start, end, attnames
    related: tuple[tuple[type[Model], int, int, tuple[str, ...], Callable[[Model, Any], None]], ...]
    annotations: tuple[tuple[str, int], ...]
    converters: tuple[tuple[int, tuple[Any, ...], Any], ...]  # (column, the field's converters, its expression)


class Prepared:
    """A queryset factory `build(slot, *shape)`, compiled once per database alias and shape."""

    def __init__(self, build: Callable[..., QuerySet[Any]], *, server_prepared: bool = True) -> None:
        """On PostgreSQL with server-side binding (settings), the statement is a prepared one: planned
        once per connection, not on every request. `server_prepared=False`: planned afresh each time,
        with the values at hand, for a query whose best plan depends on them (a generic plan for
        `agent_id = $1` expects an average agent, and read all 280 open orders of a busy one before
        sorting; BENCHMARKS.md)."""
        self.build = build
        self.server_prepared = server_prepared
        self._compiled: dict[tuple[str, Hashable], _Compiled] = {}

    def fetch(self, *shape: Hashable, using: str = "default", **values: str | Sequence[str]) -> list[Any]:
        compiled = self._compiled.get((using, shape))
        if compiled is None:
            compiled = self._compile(using, shape)
            self._compiled[(using, shape)] = compiled
        params = [_fill(param, values) for param in compiled.params]
        connection = connections[using]
        with connection.cursor() as cursor:
            prepare = self.server_prepared and connection.settings_dict["OPTIONS"].get("server_side_binding") is True
            if prepare:  # psycopg prepares (or reuses) this statement; other queries stay unprepared
                connection.connection.prepare_threshold = 0
            try:
                cursor.execute(compiled.sql, params)
                rows = cursor.fetchall()
            finally:
                if prepare:
                    connection.connection.prepare_threshold = None
        if compiled.converters:
            rows = [_convert(row, compiled.converters, connection) for row in rows]
        return [_instance(compiled, row, using) for row in rows]

    def _compile(self, using: str, shape: tuple[Hashable, ...]) -> _Compiled:
        queryset = self.build(Slot(), *shape)
        compiler = queryset.query.get_compiler(using=using)
        sql, raw_params = compiler.as_sql()
        select, klass_info = compiler.select, compiler.klass_info
        assert klass_info is not None  # noqa: S101 - a model queryset, not values()
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        related = []
        for info in klass_info.get("related_klass_infos", []):
            if info.get("related_klass_infos"):
                raise ValueError("Prepared follows one level of select_related.")
            first, last = info["select_fields"][0], info["select_fields"][-1] + 1
            names = tuple(column[0].target.attname for column in select[first:last])
            related.append((info["model"], first, last, names, info["local_setter"]))
        return _Compiled(
            sql=sql,
            params=tuple(_slot(param) for param in raw_params),
            model=queryset.model,
            fields=(start, end, tuple(column[0].target.attname for column in select[start:end])),
            related=tuple(related),
            annotations=tuple(compiler.annotation_col_map.items()),
            converters=tuple(
                (index, tuple(functions), expression)
                for index, (functions, expression) in compiler.get_converters([column[0] for column in select]).items()
            ),
        )


def _slot(param: Any) -> Any:
    if isinstance(param, str) and param.startswith(_MARK):
        name, _, index = param.removeprefix(_MARK).partition("#")
        return ("slot", name, int(index) if index else None)
    return param


def _fill(param: Any, values: dict[str, str | Sequence[str]]) -> Any:
    if not (isinstance(param, tuple) and len(param) == 3 and param[0] == "slot"):
        return param
    _kind, name, index = param
    value = values[name]
    return value if index is None else value[index]


def _convert(
    row: Sequence[Any], converters: tuple[tuple[int, tuple[Any, ...], Any], ...], connection: Any
) -> list[Any]:
    """What the ORM's iterator does to each row: the fields' from_db_value and the backend's own."""
    values = list(row)
    for index, functions, expression in converters:
        value = values[index]
        for function in functions:
            value = function(value, expression, connection)
        values[index] = value
    return values


def _instance(compiled: _Compiled, row: Sequence[Any], using: str) -> Any:
    start, end, names = compiled.fields
    obj = compiled.model.from_db(using, names, row[start:end])
    for model, first, last, related_names, setter in compiled.related:
        values = row[first:last]
        setter(obj, model.from_db(using, related_names, values) if values[0] is not None else None)
    for name, index in compiled.annotations:
        setattr(obj, name, row[index])
    return obj
