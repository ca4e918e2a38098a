"""Nesting depth limit (rule ``json.depth``): deep extensions are refused before they can
break serialisation; anything within the limit validates and serialises."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shared.xapi import StatementValidationError, XapiVersion, parse_statement, statement_to_json
from shared.xapi.api import MAX_JSON_DEPTH, parse_statements
from tests.unit.ingest.samples import statement

V2 = XapiVersion.V2_0
# the statement, context and extensions objects hold the nested value
ABOVE = 3


def _deep_json(levels: int) -> bytes:
    doc = statement()
    doc["context"] = {"extensions": {"https://x.example/deep": "@@"}}
    return orjson.dumps(doc).replace(b'"@@"', b"[" * levels + b"]" * levels)


def _deep(levels: int) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(_deep_json(levels))
    return data


def test_the_deepest_allowed_document_validates_and_serialises() -> None:
    doc = _deep(MAX_JSON_DEPTH - ABOVE)
    parsed = parse_statement(orjson.dumps(doc), version=V2)
    assert orjson.loads(statement_to_json(parsed))["context"] == doc["context"]
    # an array of statements adds a level
    assert parse_statements([_deep(MAX_JSON_DEPTH - ABOVE - 1)], version=V2)
    with pytest.raises(StatementValidationError) as err:
        parse_statements(orjson.dumps([doc]), version=V2)
    assert err.value.violations[0].rule == "json.depth"


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH - ABOVE + 1, 255, 1000])
def test_deeper_documents_are_refused(levels: int) -> None:
    doc = _deep(levels)
    for raw in (_deep_json(levels), _deep_json(levels).decode(), doc):
        with pytest.raises(StatementValidationError) as err:
            parse_statement(raw, version=V2)
        assert [v.rule for v in err.value.violations] == ["json.depth"]


def test_containers_of_other_types_count_too() -> None:
    """Already-decoded input may use dict/list subclasses: they are walked like dicts and
    lists (the walk tells leaves apart by exact type first, containers by isinstance)."""

    class Doc(dict[str, Any]):
        pass

    class Items(list[Any]):
        pass

    nested: Any = "leaf"
    for level in range(MAX_JSON_DEPTH):
        nested = Items([nested]) if level % 2 else Doc(x=nested)
    doc = statement()
    doc["context"] = {"extensions": {"https://x.example/deep": nested}}
    with pytest.raises(StatementValidationError) as err:
        parse_statement(doc, version=V2)
    assert [v.rule for v in err.value.violations] == ["json.depth"]
    shallow = statement()
    shallow["context"] = Doc(extensions=Doc({"https://x.example/a": Items([Doc(b=1)])}))
    assert parse_statement(shallow, version=V2)


def test_an_array_item_is_walked_when_its_text_could_nest_too_deep() -> None:
    """Array items are only walked when their JSON text has enough brackets to nest beyond
    the limit: a shallow item with many brackets (in strings and side by side) validates, a
    deep item after shallow ones is refused, and so is one that orjson cannot serialise."""
    wide = statement()
    wide["context"] = {
        "extensions": {
            "https://x.example/wide": [{"k": "[{" * 40} for _ in range(MAX_JSON_DEPTH)],
        }
    }
    assert len(parse_statements([statement(), wide], version=V2)) == 2
    with pytest.raises(StatementValidationError) as err:
        parse_statements([statement(), wide, _deep(MAX_JSON_DEPTH - ABOVE)], version=V2)
    assert [v.rule for v in err.value.violations] == ["json.depth"]
    nested: Any = "leaf"
    for _ in range(MAX_JSON_DEPTH):
        nested = {1: nested}  # not a JSON key: orjson refuses it, the walk still counts it
    odd = statement()
    odd["context"] = {"extensions": {"https://x.example/deep": nested}}
    with pytest.raises(StatementValidationError) as err:
        parse_statements([odd], version=V2)
    assert [v.rule for v in err.value.violations] == ["json.depth"]
