"""Strict, typed validation of JSON input.

A spec is a dict of field name to `Field`. `validate(data, spec)` rejects unknown fields, wrong
types, empty or too long strings and out-of-range numbers, and names every bad field in
`details`, with the first problem as the sentence a person reads. Each field also describes
itself as JSON Schema, so the OpenAPI document is built from the very specs the views enforce.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from lib.errors import ValidationFailed

Schema = dict[str, Any]


class Invalid(Exception):
    """One field's problem, in words."""


@dataclass
class Field(ABC):
    required: bool = True
    description: str = ""

    @abstractmethod
    def clean(self, value: Any) -> Any:
        """Return the normalized value or raise Invalid."""

    @abstractmethod
    def schema(self) -> Schema:
        """This field as JSON Schema."""

    def _described(self, schema: Schema) -> Schema:
        if self.description:
            schema["description"] = self.description
        return schema


@dataclass
class Str(Field):
    min_length: int = 1
    max_length: int = 200
    strip: bool = True

    def clean(self, value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid("must be a string")
        # The maximum holds for the value as sent, as the document's maxLength says (the API fuzzer found
        # 2,001 characters accepted when the first was whitespace); the minimum for what is left after strip.
        if len(value) > self.max_length:
            raise Invalid(f"must be at most {self.max_length} characters")
        text = value.strip() if self.strip else value
        if "\x00" in text:
            raise Invalid("must not contain NUL characters")
        if len(text) < self.min_length:
            raise Invalid(
                "must not be empty" if self.min_length == 1 else f"must be at least {self.min_length} characters"
            )
        return text

    def schema(self) -> Schema:
        return self._described({"type": "string", "minLength": self.min_length, "maxLength": self.max_length})


@dataclass
class Choice(Field):
    choices: Sequence[str] = ()

    def clean(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.choices:
            raise Invalid(f"must be one of {', '.join(self.choices)}")
        return value

    def schema(self) -> Schema:
        return self._described({"type": "string", "enum": list(self.choices)})


@dataclass
class Int(Field):
    minimum: int = 0
    maximum: int = 2**31 - 1

    def clean(self, value: Any) -> int:
        # bool is an int in Python; JSON true is not a number.
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid("must be an integer")
        if not self.minimum <= value <= self.maximum:
            raise Invalid(f"must be between {self.minimum} and {self.maximum}")
        return value

    def schema(self) -> Schema:
        return self._described({"type": "integer", "minimum": self.minimum, "maximum": self.maximum})


@dataclass
class Bool(Field):
    def clean(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise Invalid("must be true or false")
        return value

    def schema(self) -> Schema:
        return self._described({"type": "boolean"})


# [0-9], not \d: Python's \d (and Rust's, in schemathesis) also matches other scripts' digits.
MONEY_TEXT = re.compile(r"[0-9]{1,7}(\.[0-9]{1,2})?")


@dataclass
class Money(Field):
    """USD as a decimal string with at most 2 places: "45.00". Numbers are refused: floats lose cents."""

    minimum: Decimal = Decimal("0.01")
    maximum: Decimal = Decimal("1000000")

    def clean(self, value: Any) -> Decimal:
        if not isinstance(value, str):
            raise Invalid('must be a string such as "45.00"')
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise Invalid('must be a decimal amount such as "45.00"') from None
        if not amount.is_finite():
            raise Invalid('must be a decimal amount such as "45.00"')
        if amount.as_tuple().exponent < -2:  # type: ignore[operator]
            raise Invalid("must have at most 2 decimal places")
        if amount < self.minimum:
            raise Invalid(f"must be at least {self.minimum}")
        if amount > self.maximum:
            raise Invalid(f"must be at most {self.maximum:,}")
        # Decimal() also takes " 45", "1e2", ".5", "4_5" and non-ASCII digits; the document's pattern
        # does not, and the server keeps to the document.
        if not MONEY_TEXT.fullmatch(value):
            raise Invalid('must be plain digits with at most 2 decimal places, such as "45.00"')
        return amount.quantize(Decimal("0.01"))

    def schema(self) -> Schema:
        return self._described({"type": "string", "pattern": f"^{MONEY_TEXT.pattern}$", "examples": ["45.00"]})


@dataclass
class Url(Field):
    max_length: int = 2000

    def clean(self, value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid("must be a string")
        # Not stripped: the document's pattern (^https?://) refuses surrounding whitespace, and so do we.
        if not value:
            raise Invalid("must not be empty")
        if len(value) > self.max_length:
            raise Invalid(f"must be at most {self.max_length} characters")
        if any(ch.isspace() or ord(ch) < 32 for ch in value):
            raise Invalid("must not contain spaces or control characters")
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018  (raises on a bad port)
        except ValueError:
            raise Invalid("must be a valid http or https URL") from None
        # urlsplit lowercases the scheme; the document's pattern does not accept HTTPS://, nor do we.
        if not value.startswith(("http://", "https://")) or not parts.hostname:
            raise Invalid("must be an http or https URL")
        return value

    def schema(self) -> Schema:
        return self._described(
            {"type": "string", "format": "uri", "maxLength": self.max_length, "pattern": "^https?://"}
        )


@dataclass
class ListOf(Field):
    item: Field = field(default_factory=Str)
    min_items: int = 0
    max_items: int = 20

    def clean(self, value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise Invalid("must be a list")
        if not self.min_items <= len(value) <= self.max_items:
            raise Invalid(f"must have between {self.min_items} and {self.max_items} items")
        cleaned = []
        for index, item in enumerate(value):
            try:
                cleaned.append(self.item.clean(item))
            except Invalid as exc:
                raise Invalid(f"item {index} {exc}") from None
            except ValidationFailed as exc:
                first = next(iter(exc.details.items()), ("", str(exc)))
                raise Invalid(f"item {index}: {first[0]} {first[1]}".replace(":  ", ": ")) from None
        return cleaned

    def schema(self) -> Schema:
        return self._described(
            {"type": "array", "items": self.item.schema(), "minItems": self.min_items, "maxItems": self.max_items}
        )


@dataclass
class Object(Field):
    spec: Mapping[str, Field] = field(default_factory=dict)

    def clean(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise Invalid("must be an object")
        return validate(value, self.spec)

    def schema(self) -> Schema:
        return self._described(object_schema(self.spec))


@dataclass
class Custom(Field):
    """A string checked by a function that raises `Invalid` and returns the normalized value."""

    check: Callable[[str], Any] = str
    max_length: int = 200
    json_schema: Schema = field(default_factory=dict)

    def clean(self, value: Any) -> Any:
        value = Str(max_length=self.max_length).clean(value)
        return self.check(value)

    def schema(self) -> Schema:
        return self._described({"type": "string", "maxLength": self.max_length, **self.json_schema})


def validate(data: Any, spec: Mapping[str, Field]) -> dict[str, Any]:
    """Return the cleaned fields of `data`; raise ValidationFailed naming every bad field."""
    if not isinstance(data, dict):
        raise ValidationFailed("The request body must be a JSON object.", code="invalid_body")
    errors: dict[str, str] = {}
    for name in data:
        if name not in spec:
            errors[name] = "is not a known field"
    cleaned: dict[str, Any] = {}
    for name, rule in spec.items():
        if name not in data or data[name] is None:
            if rule.required:
                errors[name] = "is required"
            continue
        try:
            cleaned[name] = rule.clean(data[name])
        except Invalid as exc:
            errors[name] = str(exc)
    if errors:
        name, problem = next(iter(errors.items()))
        code = "unknown_field" if problem == "is not a known field" and len(errors) == 1 else "validation_error"
        raise ValidationFailed(f"{name} {problem}.", code=code, details=errors)
    return cleaned


def object_schema(spec: Mapping[str, Field]) -> Schema:
    return {
        "type": "object",
        "properties": {
            name: rule.schema() if rule.required else _nullable(rule.schema()) for name, rule in spec.items()
        },
        "required": [name for name, rule in spec.items() if rule.required],
        "additionalProperties": False,
    }


def _nullable(schema: Schema) -> Schema:
    """`validate` reads an optional field sent as JSON null as not sent, so the document says null is
    accepted there (the API fuzzer found `"payout_address_base": null` accepted against a string type)."""
    schema = dict(schema)
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        schema["type"] = [*kinds, "null"]
    if "enum" in schema:
        schema["enum"] = [*schema["enum"], None]
    return schema


@dataclass(frozen=True)
class Variants:
    """A body whose fields depend on one of them: the value of `key` picks the fields it takes (each
    required or not), e.g. PATCH /api/orders/{id}, where `revision` needs `feedback`. `fields()` is the
    flat spec `validate` checks types against; `check` then holds the body to its variant, and the
    OpenAPI document shows each variant as one branch of a oneOf."""

    key: str
    bodies: Mapping[str, Mapping[str, Field]]
    description: str = ""

    def fields(self) -> dict[str, Field]:
        """Every variant's fields in one spec, all optional but the key."""
        flat: dict[str, Field] = {self.key: Choice(choices=list(self.bodies), description=self.description)}
        for spec in self.bodies.values():
            for name, rule in spec.items():
                flat.setdefault(name, replace(rule, required=False))
        return flat

    def check(self, data: Mapping[str, Any]) -> None:
        """Refuse a field the chosen variant does not use, then a field it needs that is missing."""
        value = data[self.key]
        spec = self.bodies[value]
        extra = sorted(set(data) - set(spec) - {self.key})
        if extra:
            name, used = extra[0], f"not used with {self.key}={value}"
            raise ValidationFailed(f"{name} is {used}.", details={name: used})
        missing = [name for name, rule in spec.items() if rule.required and name not in data]
        if missing:
            name = missing[0]
            raise ValidationFailed(f"{name} is required with {self.key}={value}.", details={name: "is required"})

    def schemas(self) -> dict[str, Schema]:
        """Each variant's object schema, by the key's value."""
        return {
            value: object_schema({self.key: Choice(choices=[value]), **spec}) for value, spec in self.bodies.items()
        }
