"""Statement -> evidence -> state -> updates, redelivery, and frameworks by event time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.progress.errors import StatementEvidenceError
from services.progress.frameworks import FrameworkRegistry
from services.progress.handlers import Processor
from services.progress.outcome import UpdateOut
from services.progress.state import LearnerRecord, decode, encode
from services.progress.wire import update_event_id
from shared.envelope import PROGRESS_UPDATE_V1, STATEMENT_V1, Envelope
from shared.events import ProgressUpdate
from shared.framework import FrameworkFileError, parse_documents, ref_to_key
from tests.unit.progress.samples import COURSE, HOME, SALT, T0, framework, prepared


def _processor(*frameworks: object, recent: int = 8) -> Processor:
    registry = FrameworkRegistry(SALT)
    registry.replace_all(frameworks or [framework()])  # type: ignore[arg-type]
    return Processor(registry, recent)


def _env(**kwargs: object) -> Envelope:
    return Envelope.parse(prepared(**kwargs).envelope, {STATEMENT_V1})  # type: ignore[arg-type]


def _payload(out: UpdateOut) -> ProgressUpdate:
    """The update, checked against its encoded envelope (the contract on the topic)."""
    env = Envelope.parse(out.value, {PROGRESS_UPDATE_V1})
    assert env.event_id == out.event_id
    assert ProgressUpdate.model_validate(env.payload) == out.update
    return out.update


def test_attempt_updates_mastery_counters_and_publishes_one_update() -> None:
    proc = _processor()
    env = _env(success=True, duration="PT30S")
    out = proc.process(env, LearnerRecord())
    assert not out.duplicate
    assert out.evidence == "attempt"
    [update] = out.updates
    p = _payload(update)
    assert p.competency == "py.basics"
    assert p.correct is True
    assert p.framework == "acme-academy"
    assert p.framework_version == 1
    assert p.programme == "py-2026"
    assert p.business_unit == "retail"
    assert p.mastery_before is not None
    assert p.mastery_after is not None
    assert p.mastery_after > p.mastery_before
    assert p.predicted_correct is not None
    assert 0 < p.predicted_correct < 1
    assert (p.attempts, p.correct_total, p.correct_streak, p.time_on_task_s) == (1, 1, 1, 30.0)
    assert update.event_id == update_event_id(env.event_id, "py.basics")
    sent = Envelope.parse(update.value, {PROGRESS_UPDATE_V1})
    assert sent.key == env.key
    assert sent.occurred_at == env.occurred_at
    assert sent.recorded_at == env.recorded_at
    [row] = out.competencies
    assert row.attempts == 1
    assert row.mastery == p.mastery_after
    assert out.activity.events == 1
    assert out.activity.week.weekday() == 0


def test_wrong_answers_lower_mastery_and_count_a_wrong_streak() -> None:
    proc = _processor()
    record = LearnerRecord()
    masteries: list[float] = []
    for i in range(3):
        out = proc.process(_env(success=False, at=T0 + timedelta(minutes=i)), record)
        record = out.record
        after = _payload(out.updates[0]).mastery_after
        assert after is not None
        masteries.append(after)
    p = _payload(out.updates[0])
    assert (p.attempts, p.correct_total, p.wrong_streak, p.correct_streak) == (3, 0, 3, 0)
    assert masteries == sorted(masteries, reverse=True)


def test_redelivered_statement_is_not_counted_twice_and_keeps_its_event_ids() -> None:
    proc = _processor()
    env = _env(success=True)
    first = proc.process(env, LearnerRecord())
    again = proc.process(env, first.record)
    assert again.duplicate
    assert again.record == first.record
    assert [u.event_id for u in again.updates] == [u.event_id for u in first.updates]
    assert _payload(again.updates[0]).attempts == 1
    assert again.competencies == first.competencies


def test_ring_of_recent_ids_is_bounded() -> None:
    proc = _processor(recent=2)
    record = LearnerRecord()
    envs = [_env(at=T0 + timedelta(minutes=i)) for i in range(3)]
    for env in envs:
        record = proc.process(env, record).record
    assert len(record.recent) == 2
    assert not record.seen(envs[0].event_id)
    assert record.seen(envs[2].event_id)


def test_context_parent_with_weight_and_unmapped_activity() -> None:
    proc = _processor()
    out = proc.process(_env(activity="other", parent=COURSE), LearnerRecord())
    assert [_payload(u).competency for u in out.updates] == ["py.loops"]
    video = _env(activity="video", success=None)
    unmapped = proc.process(video, out.record)
    [u] = unmapped.updates
    assert _payload(u).competency is None
    assert _payload(u).evidence == "activity"
    assert u.event_id == update_event_id(video.event_id, None)
    assert unmapped.competencies == ()
    assert unmapped.activity.events == 2


def test_framework_version_in_effect_at_event_time_is_used() -> None:
    v1 = framework(version=1, effective_from=datetime(2026, 1, 1, tzinfo=UTC))
    v2 = framework(version=2, effective_from=datetime(2026, 3, 1, tzinfo=UTC), q1_to="py.loops")
    proc = _processor(v2, v1)
    before_any = proc.process(_env(at=datetime(2025, 12, 1, tzinfo=UTC)), LearnerRecord())
    assert _payload(before_any.updates[0]).competency is None
    assert _payload(before_any.updates[0]).framework is None
    in_v1 = proc.process(_env(at=datetime(2026, 2, 15, tzinfo=UTC)), LearnerRecord())
    assert _payload(in_v1.updates[0]).competency == "py.basics"
    assert _payload(in_v1.updates[0]).framework_version == 1
    in_v2 = proc.process(_env(at=datetime(2026, 3, 1, tzinfo=UTC)), LearnerRecord())
    assert _payload(in_v2.updates[0]).competency == "py.loops"
    assert _payload(in_v2.updates[0]).framework_version == 2


def test_payload_without_statement_is_refused() -> None:
    env = _env()
    bad = env.model_copy(update={"payload": {"nope": 1}})
    with pytest.raises(StatementEvidenceError):
        _processor().process(bad, LearnerRecord())


def test_state_encoding_round_trips_exactly() -> None:
    proc = _processor()
    record = LearnerRecord()
    for i in range(5):
        env = _env(success=i % 2 == 0, at=T0 + timedelta(hours=i), parent=COURSE)
        record = proc.process(env, record).record
    raw = encode(record)
    assert decode(raw) == record
    assert decode(None) == LearnerRecord()
    assert len(raw) < 8 * 16 + 2 * 90 + 40  # ring + two competencies + header


def test_multi_document_yaml_and_json_frameworks_parse() -> None:
    import yaml

    docs = [framework().model_dump(mode="json"), framework("globex").model_dump(mode="json")]
    text = "---\n".join(yaml.safe_dump(d) for d in docs)
    assert [f.tenant for f in parse_documents(text)] == ["acme", "globex"]
    import orjson

    assert len(parse_documents(orjson.dumps(docs).decode())) == 2
    with pytest.raises(FrameworkFileError, match="document 1"):
        parse_documents("tenant: acme\n")


def test_cohort_refs_become_learner_keys_of_the_deployment() -> None:
    env = _env(user="u-2")
    assert ref_to_key(f"account:{HOME}|u-2", SALT) == env.learner_key
    assert ref_to_key(f"account:{HOME}|u-1", SALT) != env.learner_key
