"""The framework file: a live session's optional cohort, and parsing shared by the CLIs."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from shared.framework import Framework, FrameworkFileError, parse_documents, ref_to_key
from shared.identity import learner_key
from tests.unit.progress.samples import framework

SESSION = {
    "id": "s1",
    "activity_id": "https://vc.example.com/sessions/1",
    "start": "2026-02-03T09:00:00Z",
    "end": "2026-02-03T10:00:00Z",
}


def document(*sessions: dict[str, Any]) -> dict[str, Any]:
    doc = framework().model_dump(mode="json")  # one programme, with a cohort "a"
    doc["programmes"][0]["sessions"] = list(sessions)
    return doc


def test_a_session_without_cohort_dumps_as_before_the_field_existed() -> None:
    """Stored versions are compared by the hash of their dump: an unset cohort must not show."""
    fw = Framework.model_validate(document(SESSION))
    [session] = fw.model_dump(mode="json")["programmes"][0]["sessions"]
    assert session == SESSION  # no "cohort" key
    with_cohort = Framework.model_validate(document(SESSION | {"cohort": "a"}))
    [session] = with_cohort.model_dump(mode="json")["programmes"][0]["sessions"]
    assert session["cohort"] == "a"
    assert Framework.model_validate(with_cohort.model_dump(mode="json")) == with_cohort


def test_a_session_of_an_unknown_cohort_is_refused() -> None:
    with pytest.raises(FrameworkFileError, match="session s1: unknown cohort b"):
        parse_documents(orjson.dumps(document(SESSION | {"cohort": "b"})).decode())


def test_parse_documents_reads_json_and_yaml() -> None:
    doc = document(SESSION)
    assert parse_documents(orjson.dumps([doc, doc]).decode())[1].tenant == "acme"
    with pytest.raises(FrameworkFileError, match="no framework document"):
        parse_documents("---\n")
    with pytest.raises(FrameworkFileError, match="not valid JSON or YAML"):
        parse_documents("{")


def test_ref_to_key_is_the_learner_key_of_the_ifi() -> None:
    ref = "account:https://lms.example.com|u-1"
    assert ref_to_key(ref, "a-salt-1") == learner_key(
        "account", "https://lms.example.com|u-1", "a-salt-1"
    )
