"""Content hashes pinned to the values the code computed when rows were first stored.

``ingest.statements`` keeps ``content_hash`` and compares a re-sent statement against it (same
id, same content -> no-op; different -> 409), so the hash of a given statement must never change,
whatever is optimised in ``prepare``/``content_hash``/``statement_to_dict``. These figures were
computed with the code before the validation/prepare speed-up (commit 99aff25).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from services.ingest.canonical import content_hash
from services.ingest.handlers import authority_for, prepare
from shared.xapi import XapiVersion, parse_statement
from tests.unit.ingest.samples import statement
from tests.unit.xapi.samples import REALISTIC_1_0_3, V2_CONTEXT_AGENTS

STORED = datetime(2024, 5, 2, 8, 30, 0, 123456, tzinfo=UTC)
SALT = "unit-test-salt"

DOCS: dict[str, dict[str, Any]] = {
    **REALISTIC_1_0_3,
    "v2_context_agents": V2_CONTEXT_AGENTS,
    "ingest_sample": statement(),
}

PINNED: list[tuple[str, str]] = [
    ("answered", "836577fa3721ee7505fed47d7de24abf9ec46c9efdb7d015098ae3d0fb5bf3d6"),
    ("completed", "1367d6f67ca6c8000147bc1e405f83cc20b536cd4dc76b214e648220a4b71309"),
    ("attended", "4a65ee4f74551567869fffe7342680ed6ff47ff265f66f4770e07cf6cb835f75"),
    ("voiding", "cc223d33861104dff5a60931238fe2c7802b26c78f3fafd33a3f8f59be430d31"),
    ("substatement", "b8808f4188f3ea8d4a232752e687023f0ab46de36e1a6cd6f75744205a9b55ac"),
    ("attachment", "8124043696d7c648ef11b66c8ad67a97f4a3f5e1821385893625f2c0c96d45b5"),
    ("v2_context_agents", "5b9b2faa6cdc9e4322cdf4f4d2783a1bc219b9bfd460e6a34dbbc9f8626941fd"),
    ("ingest_sample", "bc1ad68488a2fc069337337a859745d639d2f9f3f9164d5e9fa02281d5e7f4ea"),
]


def _prepared(name: str, version: XapiVersion) -> Any:
    return prepare(
        parse_statement(DOCS[name], version=version),
        tenant="acme",
        version=version,
        stored=STORED,
        authority=authority_for("acme", "lms1"),
        salt=SALT,
    )


CASES: list[tuple[str, XapiVersion, str]] = [
    (name, version, expected)
    for name, expected in PINNED
    for version in (XapiVersion.V1_0_3, XapiVersion.V2_0)
    if not (name == "v2_context_agents" and version is XapiVersion.V1_0_3)  # 2.0-only property
]


@pytest.mark.parametrize(("name", "version", "expected"), CASES)
def test_content_hash_is_pinned(name: str, version: XapiVersion, expected: str) -> None:
    assert _prepared(name, version).content_hash == expected


def test_envelope_bytes_are_pinned() -> None:
    # "answered" carries its own id and version: the whole envelope is deterministic
    envelope = _prepared("answered", XapiVersion.V2_0).envelope
    assert (
        hashlib.sha256(envelope).hexdigest()
        == "f25b91a21e13ea2cc49195a53a48585721487cbbdadc28bc7783f3cc41603a79"
    )


def _deep_cases() -> list[dict[str, Any]]:
    team = {"objectType": "Group", "member": [{"mbox": "mailto:z@x"}, {"mbox": "mailto:a@x"}]}
    return [
        # canonical work only deep inside a part (the rest is hashed without a walk)
        {"actor": {"mbox": "mailto:a@x"}, "context": {"team": team}},
        {"context": {"statement": {"objectType": "StatementRef", "id": "ABCDEF01-0000"}}},
        {
            "object": {
                "definition": {"name": {"duration": "PT1.239S", "stored": "2024-01-01T00:00"}}
            }
        },
        {
            "object": {
                "objectType": "SubStatement",
                "timestamp": "2024-01-01T01:00:00+01:00",
                "result": {"duration": "PT9.999S"},
                "context": {"registration": "ABCDEF"},
            }
        },
        # top-level oddities of a non-statement body: content_hash takes any dict
        {"member": [{"mbox": "mailto:z@x"}, {"mbox": "mailto:a@x"}], "duration": "PT1.999S"},
        {"extensions": {"timestamp": "2024-01-01T01:00:00+01:00", "member": [2, 1]}},
        {"nested": [[{"registration": "ABC"}], {"member": [{"b": 1}, {"a": 1}]}], "n": 1.5},
        {"plain": {"a": [1, "two", {"three": None}]}, "flag": True, "none": None},
        # trigger text only as a value, or inside extensions: walked, same result
        {"verb": {"display": {"en": "timestamp"}}, "result": {"extensions": {"x": "member"}}},
    ]


@pytest.mark.parametrize("doc", _deep_cases())
def test_content_hash_equals_the_full_canonical_walk(doc: dict[str, Any]) -> None:
    from tests.unit.ingest.test_handlers import _reference_canonical

    expected = orjson.dumps(_reference_canonical(doc), option=orjson.OPT_SORT_KEYS)
    assert content_hash(doc) == hashlib.sha256(expected).hexdigest()


def _fast_path_cases() -> list[dict[str, Any]]:
    return [
        {
            "actor": {"mbox": "mailto:a@x"},
            "timestamp": "2024-01-01T01:00:00.1239+01:00",
            "result": {"duration": "PT1.2399S", "success": True},
            "context": {"registration": "ABCDEF01-0000-4000-8000-000000000000"},
        },
        {"actor": {"mbox": "mailto:a@x"}, "timestamp": "2024-01-01T00:00:00Z"},
        {"verb": {"id": "http://x/v", "display": {"en": "timestamp: member"}}},
        # a trigger's text as a string value, or a key containing a quote: counted, walked
        {"verb": {"display": {"en": "StatementRef"}}, "timestamp": "2024-01-01T00:00:00Z"},
        {"object": {"definition": {"extensions": {'x"timestamp': 1}}}},
    ]


def _walked_cases() -> list[dict[str, Any]]:
    ts = "2024-01-01T01:00:00+01:00"
    sub = {"objectType": "SubStatement", "timestamp": ts, "result": {"duration": "PT9.999S"}}
    group = {"objectType": "Group", "member": [{"mbox": "mailto:z@x"}, {"mbox": "mailto:a@x"}]}
    return [
        {"timestamp": ts, "object": sub},  # a second timestamp, a second duration
        {"timestamp": ts, "actor": group},
        {"timestamp": ts, "object": {"objectType": "StatementRef", "id": "ABCDEF01-0000"}},
        {"timestamp": ts, "result": {"extensions": {"http://x/e": {"duration": "PT1.999S"}}}},
        {"timestamp": 17, "result": {"duration": 3}},  # not strings: nothing to fix, as walked
        {"context": {"registration": "ABC", "team": group}},
    ]


@pytest.mark.parametrize("doc", [*_fast_path_cases(), *_walked_cases(), *DOCS.values()])
def test_fast_path_and_walk_give_the_reference_hash(doc: dict[str, Any]) -> None:
    from tests.unit.ingest.test_handlers import _reference_canonical

    body = {k: v for k, v in doc.items() if k not in ("id", "stored", "authority", "version")}
    expected = orjson.dumps(_reference_canonical(body), option=orjson.OPT_SORT_KEYS)
    assert content_hash(doc) == hashlib.sha256(expected).hexdigest()


def _forbid_walk(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from services.ingest import canonical

    walks: list[int] = []
    real = canonical._canonical_dict

    def counting(value: dict[str, Any]) -> dict[str, Any]:
        walks.append(1)
        return real(value)

    monkeypatch.setattr(canonical, "_canonical_dict", counting)
    return walks


@pytest.mark.parametrize("doc", _fast_path_cases()[:3])
def test_a_plain_statement_is_hashed_without_the_walk(
    doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    walks = _forbid_walk(monkeypatch)
    content_hash(doc)
    assert walks == []


@pytest.mark.parametrize("doc", _walked_cases())
def test_other_places_to_canonicalise_take_the_walk(
    doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    walks = _forbid_walk(monkeypatch)
    content_hash(doc)
    assert walks != []


@pytest.mark.parametrize(
    "value",
    [
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:00:00.1Z",
        "2024-01-01T00:00:00.12Z",
        "2024-01-01T00:00:00.123Z",
        "2024-01-01T00:00:00.1239Z",
        "2024-01-01T00:00:00.123999Z",
        "2024-01-01T00:00:00.123456789Z",
        "2024-02-29T23:59:59.999Z",
        "2023-02-29T00:00:00Z",  # no such day: compared as sent
        "2024-01-01T24:00:00Z",
        "2024-01-01T23:59:60Z",  # leap second: compared as sent
        "2024-13-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "2024-01-01T00:00:00.Z",
        "2024-01-01T00:00:00,5Z",
        "2024-01-01T00:00:00+01:00",
        "2024-01-01T00:00:00.5-05:30",
        "2024-01-01T00:00:00",
        "2024-01-01",
        "2024-01-01T00:00:00\u0661Z",  # a non-ASCII digit
        "not a time",
    ],
)
def test_timestamp_fast_path_gives_the_general_text(value: str) -> None:
    from services.ingest.canonical import _canonical_timestamp, _canonical_timestamp_parsed

    assert _canonical_timestamp(value) == _canonical_timestamp_parsed(value)
