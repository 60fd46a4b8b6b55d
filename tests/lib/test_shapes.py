"""lib.shapes: a TypedDict as the JSON Schema the OpenAPI document shows for it."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, TypedDict, get_type_hints

import pytest
from django.db import models
from jsonschema import Draft202012Validator

from lib.shapes import Money, Time, nullable, object_of, schemas
from orders.reads.shapes import OrderData


class Colour(models.TextChoices):
    RED = "red"
    BLUE = "blue"


class Inner(TypedDict):
    name: str


class Everything(TypedDict):
    """A shape with one of each rule."""

    text: str
    count: int
    flag: bool
    ratio: float
    maybe: str | None
    kind: Literal["a", "b"]
    only: Literal["x"]
    colour: Annotated[str, Colour]
    colour_or_none: Annotated[str | None, Colour]
    picked: Annotated[str, ("one", "two")]
    price: Money
    when: Annotated[Time | None, "When it happened."]
    tags: list[str]
    inner: Inner
    inners: list[Inner]
    inner_or_none: Inner | None
    extra: dict[str, Any]
    anything: Any
    later: NotRequired[int]


def test_each_rule():
    found = schemas(Everything)
    assert set(found) == {"Everything", "Inner"}
    schema = found["Everything"]
    properties = schema["properties"]
    assert schema["description"] == "A shape with one of each rule."
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == set(properties) - {"later"}
    assert properties["text"] == {"type": "string"}
    assert properties["count"] == {"type": "integer"}
    assert properties["flag"] == {"type": "boolean"}
    assert properties["ratio"] == {"type": "number"}
    assert properties["maybe"] == {"type": ["string", "null"]}
    assert properties["kind"] == {"enum": ["a", "b"]}
    assert properties["only"] == {"const": "x"}
    assert properties["colour"] == {"type": "string", "enum": ["red", "blue"]}
    assert properties["colour_or_none"] == {"type": ["string", "null"], "enum": ["red", "blue", None]}
    assert properties["picked"] == {"type": "string", "enum": ["one", "two"]}
    assert properties["price"] == {"type": "string", "pattern": r"^\d+\.\d{2}$"}
    assert properties["when"] == {"type": ["string", "null"], "format": "date-time", "description": "When it happened."}
    assert properties["tags"] == {"type": "array", "items": {"type": "string"}}
    assert properties["inner"] == {"$ref": "#/components/schemas/Inner"}
    assert properties["inners"] == {"type": "array", "items": {"$ref": "#/components/schemas/Inner"}}
    assert properties["inner_or_none"] == {"oneOf": [{"$ref": "#/components/schemas/Inner"}, {"type": "null"}]}
    assert properties["extra"] == {"type": "object"}
    assert properties["anything"] == {}
    assert properties["later"] == {"type": "integer"}
    for each in found.values():
        Draft202012Validator.check_schema(each)


def test_nullable_keeps_one_null():
    assert nullable({"type": ["string", "null"]}) == {"type": ["string", "null"]}
    assert nullable({"const": "x"}) == {"enum": ["x", None]}


def test_what_has_no_schema_is_refused():
    class Odd(TypedDict):
        moment: bytes

    class Meant(TypedDict):
        value: Annotated[str, 42]

    with pytest.raises(TypeError, match="no JSON Schema"):
        object_of(Odd)
    with pytest.raises(TypeError, match="no JSON Schema meaning"):
        object_of(Meant)
    with pytest.raises(TypeError, match="not a TypedDict"):
        object_of(dict)


def test_two_shapes_of_one_name_are_refused():
    """Components are named after their class: a second `Inner` elsewhere would replace the first."""

    class Inner(TypedDict):  # not this module's Inner, which Everything refers to
        other: int

    with pytest.raises(TypeError, match="two shapes named Inner"):
        schemas(Inner, Everything)


def test_a_field_added_to_the_order_type_is_in_its_schema_with_no_other_edit():
    """Adding a field to the order's answer: one line in OrderData (and the line of order_to_dict
    that fills it, which mypy demands); the document follows."""

    class OrderWithMore(OrderData):
        loyalty_points: Annotated[int, "A new field."]

    before = schemas(OrderData)["OrderData"]
    after = schemas(OrderWithMore)["OrderWithMore"]
    assert after["properties"] == {
        **before["properties"],
        "loyalty_points": {"type": "integer", "description": "A new field."},
    }
    assert after["required"] == [*before["required"], "loyalty_points"]
    assert list(before["properties"]) == list(get_type_hints(OrderData))
