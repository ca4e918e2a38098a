"""Learner ability for BKT: the model's shifts, the worker's bookkeeping, and the fit."""

from __future__ import annotations

import json
import math
import random
import struct
from datetime import timedelta
from pathlib import Path

import pytest

from services.progress.ability_fit import Record, fit_ability, log_likelihood, prepare
from services.progress.fitting import main as fitting_main
from services.progress.frameworks import FrameworkRegistry, document_of
from services.progress.handlers import Processor
from services.progress.mastery import (
    BktModel,
    EloModel,
    add_surprise,
    learner_ability,
    model_for,
)
from services.progress.state import LearnerRecord, decode, encode
from shared.envelope import STATEMENT_V1, Envelope
from shared.framework import AbilityParams, BktParams, Framework
from tests.unit.progress.samples import COURSE, SALT, T0, framework, prepared

P = BktParams(prior=0.3, learn=0.1, forget=0.02, guess=0.2, slip=0.1)
A = AbilityParams(prior_weight=10.0, learn_weight=5.0, pseudo_count=4.0)


def test_ability_is_the_shrunk_mean_surprise() -> None:
    assert learner_ability(0.0, 0.0, A) == 0.0
    assert learner_ability(2.0, 4.0, A) == pytest.approx(2.0 / 8.0)
    assert learner_ability(-3.0, 96.0, A) == pytest.approx(-0.03)
    # a correct answer predicted at 0.7 adds 0.3, a wrong one takes 0.7, both weighted
    assert add_surprise(0.0, 0.0, True, 0.7) == pytest.approx((0.3, 1.0))
    assert add_surprise(1.0, 2.0, False, 0.7, 0.5) == pytest.approx((0.65, 2.5))


def test_no_ability_or_no_weights_change_nothing() -> None:
    plain, with_weights = BktModel(P), BktModel(P, ability_params=A)
    zero_weights = BktModel(P, ability_params=AbilityParams())
    for model in (plain, with_weights):
        assert model.initial(0.0) == plain.initial()
    assert zero_weights.initial(0.9) == plain.initial()
    a = b = c = plain.initial()
    for correct in (True, False, False, True, True):
        a = plain.update(a, correct, ability=0.7)  # ignored: no weights
        b = with_weights.update(b, correct, ability=0.0)
        c = zero_weights.update(c, correct, ability=0.7)
    assert a == b == c == _replay(plain, (True, False, False, True, True))


def _replay(model: BktModel, answers: tuple[bool, ...]) -> object:
    state = model.initial()
    for correct in answers:
        state = model.update(state, correct)
    return state


def test_ability_raises_the_prior_and_the_learn_rate() -> None:
    model = BktModel(P, ability_params=A)
    strong, neutral, weak = model.initial(0.2), model.initial(0.0), model.initial(-0.2)
    assert strong.mastery > neutral.mastery > weak.mastery
    assert strong.log_odds - neutral.log_odds == pytest.approx(A.prior_weight * 0.2)
    # the same state and answer: a stronger learner is more likely to have learned since
    after = [model.update(neutral, False, ability=z).mastery for z in (0.2, 0.0, -0.2)]
    assert after[0] > after[1] > after[2]
    # the prediction before the answer depends only on the state, not on the ability
    predictions = {model.update(neutral, True, ability=z).last_prediction for z in (0.2, -0.2)}
    assert len(predictions) == 1


def test_elo_ignores_ability_and_model_for_passes_the_framework_weights() -> None:
    elo = EloModel()
    assert elo.initial(0.5) == elo.initial()
    assert elo.update(elo.initial(), True, ability=0.5) == elo.update(elo.initial(), True)
    fw = framework().model_copy(update={"ability": A})
    model = model_for(fw, "py.basics")
    assert isinstance(model, BktModel)
    assert model.ability_params == A


def test_an_unset_ability_is_left_out_of_the_document() -> None:
    """So the content hash of framework versions stored before it existed stays the same."""
    plain = framework()
    assert "ability" not in document_of(plain)
    with_ability = Framework.model_validate({**document_of(plain), "ability": A.model_dump()})
    assert document_of(with_ability)["ability"] == A.model_dump()
    assert Framework.model_validate(document_of(with_ability)) == with_ability


def _env(user: str, activity: str, success: bool, minute: int) -> Envelope:
    parent = COURSE if activity != "q1" else None
    at = T0 + timedelta(minutes=minute)
    p = prepared(user=user, activity=activity, success=success, at=at, parent=parent)
    return Envelope.parse(p.envelope, {STATEMENT_V1})


def _first_loops_mastery(fw: Framework, first_answers: bool) -> tuple[float, LearnerRecord]:
    """A learner answers q1 (py.basics) four times, then starts py.loops: its mastery before."""
    registry = FrameworkRegistry(SALT)
    registry.replace_all([fw])
    proc = Processor(registry, 8)
    record = LearnerRecord()
    for minute in range(4):
        record = proc.process(_env("u-1", "q1", first_answers, minute), record).record
    out = proc.process(_env("u-1", "q7", True, 10), record)
    [update] = [u for u in out.updates if u.update.competency == "py.loops"]
    assert update.update.mastery_before is not None
    return update.update.mastery_before, out.record


def test_the_worker_starts_a_strong_learner_ahead_when_the_framework_asks() -> None:
    with_ability = framework().model_copy(update={"ability": A})
    strong, record = _first_loops_mastery(with_ability, True)
    weak, _ = _first_loops_mastery(with_ability, False)
    assert strong > weak
    # without ability both start from the prior
    plain_strong, plain_record = _first_loops_mastery(framework(), True)
    plain_weak, _ = _first_loops_mastery(framework(), False)
    assert plain_strong == plain_weak
    # the surprise is kept either way (five attempts: four on q1, one on py.loops at weight 0.5)
    # and survives the table's encoding
    assert record.surprise > 0
    assert record.surprise_weight == pytest.approx(4.5)
    assert plain_record.surprise_weight == pytest.approx(4.5)
    assert decode(encode(record)) == record


def test_a_redelivered_statement_leaves_the_surprise_alone() -> None:
    registry = FrameworkRegistry(SALT)
    registry.replace_all([framework().model_copy(update={"ability": A})])
    proc = Processor(registry, 8)
    env = _env("u-1", "q1", True, 0)
    once = proc.process(env, LearnerRecord()).record
    again = proc.process(env, once)
    assert again.duplicate
    assert (again.record.surprise, again.record.surprise_weight) == (
        once.surprise,
        once.surprise_weight,
    )


# --- the fit -----------------------------------------------------------------------------------


def _simulate(learners: int, spread: float, seed: int) -> list[Record]:
    """Learners whose abilities shift the prior and learn rate of each of 4 competencies."""
    rng = random.Random(seed)
    records: list[Record] = []
    for n in range(learners):
        a = rng.gauss(0.0, spread)
        for c in range(4):
            p_learned = 1 / (1 + math.exp(-(math.log(0.3 / 0.7) + 2.0 * a)))
            learn = 1 / (1 + math.exp(-(math.log(0.1 / 0.9) + 1.0 * a)))
            learned = rng.random() < p_learned
            for _ in range(8):
                right = rng.random() < (0.9 if learned else 0.2)
                records.append((f"c{c}", f"l{n}", right))
                learned = learned or rng.random() < learn
    return records


def test_fit_finds_ability_where_learners_differ_and_improves_the_likelihood() -> None:
    records = _simulate(300, 1.0, 1)
    params = {f"c{c}": P for c in range(4)}
    ability, without, with_ = fit_ability(records, params, rounds=1, iterations=8)
    assert ability.prior_weight > 1.0
    assert with_ > without
    assert with_ == pytest.approx(log_likelihood(*prepare(records, params, P), ability))


def test_fit_log_likelihood_is_the_service_models_own() -> None:
    """The fit's fast loop scores exactly what BktModel predicts, fed as the worker feeds it."""
    records = _simulate(40, 1.0, 2)
    params = {f"c{c}": P for c in range(4)}
    model = BktModel(P, ability_params=A)
    total = 0.0
    states: dict[tuple[str, str], object] = {}
    surprises: dict[str, tuple[float, float]] = {}
    for competency, learner, correct in records:
        s, w = surprises.get(learner, (0.0, 0.0))
        z = learner_ability(s, w, A)
        state = states.get((competency, learner)) or model.initial(z)
        state = model.update(state, correct, ability=z)  # type: ignore[arg-type]
        states[competency, learner] = state
        prediction = state.last_prediction
        assert prediction is not None
        total += math.log(prediction if correct else 1.0 - prediction)
        surprises[learner] = add_surprise(s, w, correct, prediction)
    histories, table = prepare(records, params, P)
    assert log_likelihood(histories, table, A) == pytest.approx(total, rel=1e-9)


def test_a_record_written_before_the_surprise_was_kept_reads_as_none() -> None:
    # format 2: header, offset, no surprise
    old = struct.pack("<BIqqHH", 2, 3, -(2**63), -(2**63), 0, 0) + struct.pack("<q", 17)
    assert decode(old) == LearnerRecord(events=3, offset=17)
    record = LearnerRecord(events=3, offset=17, surprise=-1.25, surprise_weight=6.0)
    assert decode(encode(record)) == record


def test_fit_cli_writes_the_weights_a_framework_takes(tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    rows = [{"competency": c, "learner": n, "correct": x} for c, n, x in _simulate(60, 1.0, 3)]
    history.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    out = tmp_path / "params.json"
    args = [str(history), "-o", str(out), "--restarts", "1", "--max-iter", "20", "--ability"]
    assert fitting_main(args) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    ability = AbilityParams.model_validate(doc["ability"])
    assert ability.prior_weight > 0
    fw = Framework.model_validate({**document_of(framework()), "ability": doc["ability"]})
    assert fw.ability == ability
    assert fitting_main(args[:-1]) == 0  # without the flag: no weights in the document
    assert "ability" not in json.loads(out.read_text(encoding="utf-8"))
