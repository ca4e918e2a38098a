"""``tools.deadletters`` without a broker: what a record is shown as, and which are kept."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from tools.deadletters import describe, main, select, tenant_of, topic_of


def _record(value: bytes, offset: int = 0, timestamp: int = 1_700_000_000_000) -> Any:
    return ConsumerRecord("t", 0, offset, timestamp, 0, None, value, None, 0, len(value), ())


def test_the_topics_follow_the_services_names() -> None:
    assert topic_of("statements", "p.") == "p.xapi.deadletter"
    assert topic_of("updates", "") == "progress.updates.deadletter"


def test_a_value_that_is_not_a_json_object_is_shown_in_base64() -> None:
    shown = describe(_record(b"\xff\x00 not json", offset=4), decode=True)
    assert base64.b64decode(shown["value"]) == b"\xff\x00 not json"
    assert shown["kafka"] == {"partition": 0, "offset": 4, "time": "2023-11-14T22:13:20+00:00"}


def test_an_original_that_is_not_base64_decodes_to_none() -> None:
    shown = describe(_record(b'{"source": {}, "original": "%%%"}'), decode=True)
    assert shown["original_text"] is None


def test_the_tenant_comes_from_the_field_else_the_key() -> None:
    assert tenant_of({"tenant": "acme", "key": "beta|x"}) == "acme"
    assert tenant_of({"key": "beta|x"}) == "beta"
    assert tenant_of({"key": None}) is None


def test_the_last_matching_records_are_kept_in_time_order() -> None:
    records = [
        {"reason": r, "tenant": t, "kafka": {"time": f"2026-01-0{d}", "offset": d}}
        for d, r, t in [(3, "a", "x"), (1, "a", "x"), (2, "b", "x"), (4, "a", "y")]
    ]
    kept = select(records, last=2, tenant="x", reason="a")
    assert [r["kafka"]["offset"] for r in kept] == [1, 3]
    assert [r["kafka"]["offset"] for r in select(records, last=2, tenant=None, reason=None)] == [
        3,
        4,
    ]


@pytest.mark.parametrize("flag", ["--last", "--scan"])
def test_counts_below_one_are_refused(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([flag, "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
