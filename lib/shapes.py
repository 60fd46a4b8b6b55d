"""Output shapes as types: a TypedDict is both what mypy checks a to-dict function against and,
through `schemas`, the JSON Schema (OpenAPI 3.1) the API documents for it.

    class ReviewData(TypedDict):
        id: str
        rating: Annotated[int, {"minimum": 1, "maximum": 5}]
        comment: Annotated[str, "What the buyer wrote; may be empty."]
        created_at: Time

How a type becomes a schema: str, int, bool, float; `Literal` -> const (one value) or enum;
`X | None` -> nullable; `list[T]` -> array; `dict[...]` / `Any` -> any object / anything; a nested
TypedDict -> a `$ref` to its own component, named after the class. `Annotated` metadata adds to the
schema: a str is the field's description, a dict extra keywords (pattern, format...), a Django
choices class (or any Enum) or a tuple the allowed values. Every key is required unless it is
`NotRequired`; no other key is allowed (additionalProperties: false).
"""

from __future__ import annotations

import enum
import types
from collections.abc import Mapping
from typing import (
    Annotated,
    Any,
    Literal,
    NotRequired,
    Required,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

Schema = dict[str, Any]

# Shared field types. Money: USD with cents as a string ("45.00"); Time: ISO 8601 with its offset.
Money = Annotated[str, {"pattern": r"^\d+\.\d{2}$"}]
Time = Annotated[str, {"format": "date-time"}]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def schemas(*roots: type) -> dict[str, Schema]:
    """The component schema of each TypedDict in `roots` and of every TypedDict nested in them."""
    found: dict[str, Schema] = {}
    named: dict[str, type] = {}
    pending = list(roots)
    while pending:
        shape = pending.pop(0)
        if named.setdefault(shape.__name__, shape) is not shape:
            raise TypeError(f"two shapes named {shape.__name__}: {named[shape.__name__]!r} and {shape!r}")
        if shape.__name__ in found:
            continue
        nested: list[type] = []
        found[shape.__name__] = object_of(shape, nested)
        pending.extend(nested)
    return found


def object_of(shape: type, nested: list[type] | None = None) -> Schema:
    """The object schema of one TypedDict; the TypedDicts it refers to are appended to `nested`."""
    if not is_typeddict(shape):
        raise TypeError(f"{shape!r} is not a TypedDict")
    seen = nested if nested is not None else []
    properties: dict[str, Schema] = {}
    required: list[str] = []
    total = getattr(shape, "__total__", True)
    for name, hint in get_type_hints(shape, include_extras=True).items():
        is_required, hint = _requiredness(hint, default=total)
        properties[name] = _schema(hint, seen)
        if is_required:
            required.append(name)
    schema: Schema = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
    if shape.__doc__:
        schema["description"] = " ".join(shape.__doc__.split())
    return schema


def _requiredness(hint: Any, *, default: bool) -> tuple[bool, Any]:
    # Read from the hints, not __required_keys__: under `from __future__ import annotations` the
    # class sees strings and cannot tell a NotRequired key.
    origin = get_origin(hint)
    if origin is NotRequired:
        return False, get_args(hint)[0]
    if origin is Required:
        return True, get_args(hint)[0]
    return default, hint


def _schema(hint: Any, nested: list[type]) -> Schema:
    origin = get_origin(hint)
    if origin is None:
        return _plain(hint, nested)
    args = get_args(hint)
    if origin is Annotated:
        schema = _schema(args[0], nested)
        for item in args[1:]:
            _annotate(schema, item)
        return schema
    if origin in (Union, types.UnionType):
        return _union(args, nested)
    if origin is Literal:
        return {"const": args[0]} if len(args) == 1 else {"enum": list(args)}
    if origin is list:
        return {"type": "array", "items": _schema(args[0], nested)}
    if origin in (dict, Mapping):
        return {"type": "object"}
    raise TypeError(f"no JSON Schema for {hint!r}")


def _plain(hint: Any, nested: list[type]) -> Schema:
    """A type with no arguments: a TypedDict (a reference to its component), a scalar, or anything."""
    if is_typeddict(hint):
        nested.append(hint)
        return ref(hint.__name__)
    if hint in (Any, object):
        return {}
    if hint in (dict, Mapping):
        return {"type": "object"}
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    raise TypeError(f"no JSON Schema for {hint!r}")


_SCALARS: dict[Any, str] = {str: "string", bool: "boolean", int: "integer", float: "number"}


def _union(members: tuple[Any, ...], nested: list[type]) -> Schema:
    present = [member for member in members if member is not type(None)]
    if len(present) != 1:
        return {"oneOf": [_schema(member, nested) for member in members]}
    schema = _schema(present[0], nested)
    return nullable(schema) if len(present) < len(members) else schema


def nullable(schema: Schema) -> Schema:
    """`schema`, or null."""
    schema = dict(schema)
    if "$ref" in schema or "oneOf" in schema:
        return {"oneOf": [schema, {"type": "null"}]}
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]
    if "enum" in schema and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        schema["type"] = [*kinds, "null"] if "null" not in kinds else kinds
    return schema


def _annotate(schema: Schema, item: Any) -> None:
    if isinstance(item, str):
        schema["description"] = item
    elif isinstance(item, Mapping):
        schema.update(item)
    elif isinstance(item, type) and issubclass(item, enum.Enum):
        _allow(schema, [member.value for member in item])
    elif isinstance(item, tuple):
        _allow(schema, list(item))
    else:
        raise TypeError(f"no JSON Schema meaning for the annotation {item!r}")


def _allow(schema: Schema, values: list[Any]) -> None:
    """Restrict a (possibly nullable) schema to `values`, keeping null where it was allowed."""
    kinds = schema.get("type")
    null = isinstance(kinds, list) and "null" in kinds
    if "oneOf" in schema:  # a nullable $ref cannot carry values
        raise TypeError("allowed values on a reference")
    schema["enum"] = [*values, None] if null else values
