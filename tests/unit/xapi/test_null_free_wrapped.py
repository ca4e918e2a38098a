"""Optional properties that carry a field validator are null-free too (the validator wraps the
``nullable`` schema that :func:`shared.xapi.primitives._null_free_fields` removes)."""

from __future__ import annotations

from typing import Any

import pytest

import shared.xapi as xapi
from shared.xapi import StatementValidationError, XapiVersion, parse_statement
from shared.xapi.primitives import XapiModel
from tests.unit.xapi.samples import V2_CONTEXT_AGENTS, with_value


@pytest.mark.parametrize("key", ["contextAgents", "contextGroups"])
@pytest.mark.parametrize("version", [XapiVersion.V2_0, XapiVersion.V1_0_3])
def test_null_context_agents_and_groups_are_null_value(key: str, version: XapiVersion) -> None:
    doc = with_value(V2_CONTEXT_AGENTS, ("context", key), None)
    with pytest.raises(StatementValidationError) as caught:
        parse_statement(doc, version=version)
    assert (f"$.context.{key}", "null_value") in [(v.path, v.rule) for v in caught.value.violations]


def _model_fields(schema: Any) -> dict[str, Any]:
    while isinstance(schema, dict):
        if schema.get("type") == "model-fields":
            fields: dict[str, Any] = schema["fields"]
            return fields
        schema = schema.get("schema")
    raise AssertionError("no model-fields schema")


def _models() -> list[type[XapiModel]]:
    found = [getattr(xapi, name) for name in xapi.__all__]
    return [m for m in found if isinstance(m, type) and issubclass(m, XapiModel)]


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__name__)
def test_no_optional_field_accepts_null(model: type[XapiModel]) -> None:
    for name, field in _model_fields(model.__pydantic_core_schema__).items():
        node = field["schema"]
        while isinstance(node, dict):
            assert node.get("type") != "nullable", f"{model.__name__}.{name} accepts null"
            if node.get("type") in {"model", "model-fields", "list", "dict", "tagged-union"}:
                break  # the property's own value type: nested models are checked on their own
            node = node.get("schema")
