"""Property tests: generated valid statements parse; one targeted corruption always
fails with a violation pointing exactly at the corrupted place."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from shared.xapi import (
    StatementValidationError,
    XapiVersion,
    parse_statement,
    parse_statements,
    statement_to_json,
)
from tests.unit.xapi.samples import with_value, without
from tests.unit.xapi.strategies import (
    REQUIRED,
    Doc,
    null_targets,
    objects,
    statements,
    to_json_path,
)

IFI_KEYS = ("mbox", "mbox_sha1sum", "openid", "account")
PROPERTY_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _violations(doc: Any, version: XapiVersion) -> set[tuple[str, str]]:
    with pytest.raises(StatementValidationError) as caught:
        parse_statement(doc, version=version)
    return {(v.path, v.rule) for v in caught.value.violations}


@PROPERTY_SETTINGS
@given(doc=statements())
def test_generated_1_0_3_statements_parse_under_both_versions(doc: Doc) -> None:
    for version in XapiVersion:
        statement = parse_statement(doc, version=version)
        assert parse_statement(statement_to_json(statement), version=version) == statement


@PROPERTY_SETTINGS
@given(doc=statements(v2=True))
def test_generated_2_0_statements_parse(doc: Doc) -> None:
    parse_statement(doc, version=XapiVersion.V2_0)


@PROPERTY_SETTINGS
@given(doc=statements(), data=st.data())
def test_removing_a_required_property_is_reported_there(doc: Doc, data: st.DataObject) -> None:
    candidates = [
        (*path, key)
        for path, kind, node in objects(doc)
        for key in REQUIRED.get(kind, ())
        if key in node
    ]
    target = data.draw(st.sampled_from(candidates))
    assert ("$" if not target else to_json_path(target), "required") in _violations(
        without(doc, target), XapiVersion.V1_0_3
    )


@PROPERTY_SETTINGS
@given(doc=statements(), data=st.data())
def test_removing_an_agents_identifier_is_reported_on_the_agent(
    doc: Doc, data: st.DataObject
) -> None:
    agents = [(path, node) for path, kind, node in objects(doc) if kind == "agent"]
    assume(agents)
    path, node = data.draw(st.sampled_from(agents))
    ifi = next(key for key in IFI_KEYS if key in node)
    assert (to_json_path(path), "ifi.exactly_one") in _violations(
        without(doc, (*path, ifi)), XapiVersion.V1_0_3
    )


@PROPERTY_SETTINGS
@given(doc=statements(v2=True), data=st.data())
def test_injecting_null_is_reported_there(doc: Doc, data: st.DataObject) -> None:
    target = data.draw(st.sampled_from(null_targets(doc)))
    assert (to_json_path(target), "null_value") in _violations(
        with_value(doc, target, None), XapiVersion.V2_0
    )


@PROPERTY_SETTINGS
@given(
    doc=statements(v2=True),
    data=st.data(),
    key=st.sampled_from(["Id", "comment", "object_type", "zz-unknown", "mbox_sha256sum"]),
)
def test_injecting_an_unknown_property_is_reported_there(
    doc: Doc, data: st.DataObject, key: str
) -> None:
    path, _kind, _node = data.draw(st.sampled_from(list(objects(doc))))
    target = (*path, key)
    assert (to_json_path(target), "unknown_property") in _violations(
        with_value(doc, target, 1), XapiVersion.V2_0
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=st.lists(statements(), min_size=2, max_size=4), data=st.data())
def test_batch_paths_are_prefixed_with_the_index(docs: list[Doc], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(docs) - 1))
    docs[index] = without(docs[index], ("verb",))
    for doc in docs:
        doc.pop("id", None)  # generated ids could collide only by (astronomical) chance
    with pytest.raises(StatementValidationError) as caught:
        parse_statements(docs, version=XapiVersion.V1_0_3)
    assert (f"$[{index}].verb", "required") in {(v.path, v.rule) for v in caught.value.violations}
