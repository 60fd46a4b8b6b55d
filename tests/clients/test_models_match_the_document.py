"""The Python SDK's models (clients/python/atelier_client/models.py) against the OpenAPI document:
every dataclass field is a property of its schema, of a type the field can hold (a nullable property
needs a field that takes None; a datetime field a date-time; a Decimal a money pattern), and every
property the schema requires is a field. The SDK is written by hand (its conversions, defaults and
helpers are its own); this is what keeps it from drifting from the server's shapes.

The models are loaded from this checkout's file, not from the installed package, so a branch is
checked against its own SDK."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import types
import typing
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from atelier.openapi import document

MODELS_PY = Path(__file__).resolve().parents[2] / "clients" / "python" / "atelier_client" / "models.py"

# SDK model -> the schemas it reads. The first is its own: every property that one requires must be a field.
# A later one is another answer parsed into the same model (POST .../generate answers a Prompt too).
SCHEMAS = {
    "Agent": ("AgentProfileData",),
    "Registration": ("AgentRegistrationData",),
    "Service": ("CatalogueItem",),
    "Deliverable": ("Deliverable",),
    "Prompt": ("Prompt", "WorkspacePromptData"),
    "PaymentInstructions": ("PaymentInstructions",),
    "Order": ("OrderData",),
    "Message": ("MessageData",),
    "Review": ("ReviewData",),
    "Upload": ("UploadData",),
    "WebhookDelivery": ("WebhookDeliveryData",),
    "SignInChallenge": ("SignInChallengeData",),
    "WalletSession": ("WalletSessionData",),
}


def _sdk_models() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("atelier_client_models_checked", MODELS_PY)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


MODELS = _sdk_models()


def _json_types(hint: Any) -> set[str]:
    """The JSON types a field of this Python type can hold once converted (models.Model.from_dict)."""
    if hint is type(None):
        return {"null"}
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_json_types(member) for member in typing.get_args(hint)))
    if origin is list:
        return {"array"}
    if origin is dict or hint is dict:
        return {"object"}
    if isinstance(hint, type) and issubclass(hint, MODELS.Model):
        return {"object"}
    simple = {str: {"string"}, Decimal: {"string"}, datetime: {"string"}, bool: {"boolean"}, int: {"integer"}}
    if hint in simple:
        return simple[hint]
    raise AssertionError(f"no JSON type for {hint!r}")


def _schema_types(schema: dict[str, Any]) -> set[str]:
    """The JSON types a property's schema allows."""
    if "$ref" in schema:
        return {"object"}
    if "oneOf" in schema:
        return set().union(*(_schema_types(branch) for branch in schema["oneOf"]))
    if "type" in schema:
        kinds = schema["type"]
        return set(kinds if isinstance(kinds, list) else [kinds])
    if "enum" in schema:
        names = {str: "string", int: "integer", bool: "boolean", type(None): "null"}
        return {names[type(value)] for value in schema["enum"]}
    raise AssertionError(f"no JSON type in {schema!r}")


def _fields(model: type) -> dict[str, Any]:
    hints = typing.get_type_hints(model, vars(MODELS))
    return {field.name: hints[field.name] for field in dataclasses.fields(model) if field.name != "raw"}


def test_every_model_is_mapped():
    models = {
        name
        for name, value in vars(MODELS).items()
        if isinstance(value, type) and dataclasses.is_dataclass(value) and value is not MODELS.Model
    }
    assert models == set(SCHEMAS)


def _problems(model: type, own: dict[str, Any], *others: dict[str, Any]) -> list[str]:
    """How `model` differs from its own schema (and the others it also reads), one line each."""
    properties = {**{k: v for schema in others for k, v in schema["properties"].items()}, **own["properties"]}
    fields = _fields(model)
    problems = [f"{name}: not in the schema" for name in fields if name not in properties]
    problems += [f"{name}: required by the schema, not a field" for name in own["required"] if name not in fields]
    for name, hint in fields.items():
        if name not in properties:
            continue
        schema, holds = properties[name], _json_types(hint)
        if not _schema_types(schema) <= holds:
            problems.append(f"{name}: {hint} cannot hold {sorted(_schema_types(schema))}")
        if datetime in typing.get_args(hint) and schema.get("format") != "date-time":
            problems.append(f"{name}: a datetime field, not a date-time property")
        if Decimal in typing.get_args(hint) and "pattern" not in schema:
            problems.append(f"{name}: a Decimal field, not a money property")
    return problems


@pytest.mark.parametrize("model_name", sorted(SCHEMAS))
def test_the_model_matches_its_schemas(model_name: str):
    components = document()["components"]["schemas"]
    schemas = [components[name] for name in SCHEMAS[model_name]]
    problems = _problems(getattr(MODELS, model_name), *schemas)
    assert not problems, f"{model_name} against {SCHEMAS[model_name]}:\n" + "\n".join(problems)


def test_the_check_sees_each_kind_of_drift():
    """A model that lacks a required property, has one the schema does not, holds the wrong type,
    and cannot hold null where the schema allows it: each is named."""
    review = document()["components"]["schemas"]["ReviewData"]
    drifted = dataclasses.make_dataclass(
        "Drifted",
        [("rating", str, ""), ("comment", str, ""), ("stars", int, 0), ("created_at", datetime, None)],
        bases=(MODELS.Model,),
        frozen=True,
    )
    problems = _problems(drifted, review)
    assert "stars: not in the schema" in problems
    assert "id: required by the schema, not a field" in problems
    assert "rating: <class 'str'> cannot hold ['integer']" in problems
    assert not any(problem.startswith("comment") for problem in problems)
    assert _json_types(int | None) == {"integer", "null"}
    assert _schema_types({"enum": ["a", None]}) == {"string", "null"}
