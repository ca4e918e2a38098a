"""The learners' table values: :class:`StateEncoder` gives what :meth:`LearnerState.to_bytes`
gives (read back equal), reusing the JSON of competencies the update did not touch."""

from __future__ import annotations

import random

import orjson
import pytest

from services.alerts.state import LearnerState, StateEncoder
from tests.unit.alerts.helpers import Learner

COMPETENCIES = ("py.basics", "py.pandas", "sql.joins", "stats.tests")


def test_encoded_states_read_back_equal_to_the_plain_encoding() -> None:
    rng = random.Random(11)
    learner = Learner()
    encoder = StateEncoder(max_learners=4)
    other = b"acme|" + b"f" * 32
    for i in range(400):
        cid = rng.choice(COMPETENCIES)
        if rng.random() < 0.15:
            learner.feed(evidence="hint", competency=cid, hints=i)
        else:
            learner.answer(rng.random() < 0.5, competency=cid, mastery_after=rng.random())
        state = learner.state
        state.partition, state.offset = 1, i
        raw = encoder.encode(b"acme|learner", state)
        assert LearnerState.from_bytes(raw) == state == LearnerState.from_bytes(state.to_bytes())
        if i % 50 == 0:  # another learner in between changes nothing for this one
            assert LearnerState.from_bytes(encoder.encode(other, LearnerState())) == LearnerState()
    assert len(learner.state.competencies) == len(COMPETENCIES)  # the test saw real state


def test_a_touched_competency_is_serialised_again() -> None:
    """The detectors copy on write: the touched competency is a new object, encoded again."""
    learner = Learner()
    encoder = StateEncoder(max_learners=1)
    learner.answer(False, competency="py.basics", mastery_after=0.2)
    first = encoder.encode(b"k", learner.state)
    learner.answer(True, competency="py.basics", mastery_after=0.4)
    second = encoder.encode(b"k", learner.state)
    assert first != second
    assert LearnerState.from_bytes(second) == learner.state
    with pytest.raises(ValueError, match="positive"):
        StateEncoder(max_learners=0)


def test_a_value_written_by_a_later_version_loads_without_its_new_fields() -> None:
    """A rollback must not stop the worker: fields this version does not know are dropped
    at every level of the stored state (learner, competency, attempt), the rest is kept."""
    learner = Learner()
    for correct in (False, False, True):
        learner.answer(correct, competency="py.basics", mastery_after=0.4)
    state = learner.state
    state.partition, state.offset = 2, 41
    later = orjson.loads(state.to_bytes())
    later["added_later"] = {"any": [1, 2]}
    later["competencies"]["py.basics"]["added_later"] = 0.5
    for attempt in later["competencies"]["py.basics"]["recent"]:
        attempt["added_later"] = "x"
    loaded = LearnerState.from_bytes(orjson.dumps(later))
    assert loaded == state
    assert b"added_later" not in loaded.to_bytes()
