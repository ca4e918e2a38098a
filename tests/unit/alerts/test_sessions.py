"""Missed live sessions: who is expected where, the walk's raises and clears, and that walking by
small steps of the clock (live, or a replay whose scans fall anywhere) gives the same signals as
one walk at the end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.alerts.rules import MissedSessions
from services.alerts.sessions import Session, Walk, attendance_rows, expected, walk
from services.alerts.state import Signal

T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)  # a Tuesday
RULE = MissedSessions(m=2)  # grace 2 h
GRACE = timedelta(hours=RULE.grace_hours)


def timetable(n: int, cohort: str | None = None) -> list[Session]:
    """``n`` one-hour sessions, every 3.5 days."""
    out = []
    for i in range(n):
        start = T0 + timedelta(hours=84 * i)
        out.append(Session(f"s{i + 1}", start, start + timedelta(hours=1), cohort))
    return out


def attended_at(s: Session) -> datetime:
    return s.ends_at + timedelta(minutes=1)


def run(
    sessions: list[Session],
    attended: dict[str, datetime],
    ref: datetime,
    state: Walk | None = None,
    rule: MissedSessions = RULE,
    resolved_at: datetime | None = None,
) -> tuple[Walk, list[Signal]]:
    return walk(
        state or Walk(),
        sessions,
        attended,
        ref,
        rule,
        resolved_at=resolved_at,
        programme="ds-2026",
        business_unit="retail",
    )


def test_cohort_learners_are_expected_at_their_cohort_and_programme_sessions() -> None:
    a, b, everyone = timetable(2, "c1"), timetable(2, "c2"), timetable(1)
    b = [Session(f"b{i}", s.starts_at, s.ends_at, s.cohort) for i, s in enumerate(b)]
    everyone = [Session("all", s.starts_at, s.ends_at) for s in everyone]
    schedule = a + b + everyone
    assert [s.id for s in expected(schedule, "c1", None)] == ["all", "s1", "s2"]
    assert [s.id for s in expected(schedule, "c2", None)] == ["all", "b0", "b1"]
    # listed in a cohort: expected from the start whatever their first evidence
    assert [s.id for s in expected(schedule, "c1", T0 + timedelta(days=30))] == ["all", "s1", "s2"]
    # only known from evidence: programme-wide sessions ending after the first evidence
    assert [s.id for s in expected(schedule, None, None)] == ["all"]
    assert expected(schedule, None, T0 + timedelta(hours=2)) == []


def test_two_missed_in_a_row_raise_at_the_second_due_time_with_the_session_ids() -> None:
    sessions = timetable(4)
    state, signals = run(sessions, {}, sessions[0].ends_at + GRACE)
    assert signals == []  # one missed: not yet
    assert state == Walk(sessions[0].ends_at, ("s1",))
    state, signals = run(sessions, {}, sessions[1].ends_at + GRACE, state)
    [signal] = signals
    assert (signal.kind, signal.action, signal.severity) == ("missed_sessions", "raise", "medium")
    assert signal.at == sessions[1].ends_at + GRACE
    assert signal.support == "pastoral"
    assert (signal.programme, signal.business_unit) == ("ds-2026", "retail")
    assert signal.evidence["session_ids"] == ["s1", "s2"]
    assert signal.evidence["missed_in_a_row"] == 2
    # each further session missed is new evidence; 2m in a row is high
    state, signals = run(sessions, {}, sessions[3].ends_at + GRACE, state)
    assert [(s.action, s.severity, s.evidence["missed_in_a_row"]) for s in signals] == [
        ("raise", "medium", 3),
        ("raise", "high", 4),
    ]
    assert state.missed == ("s1", "s2", "s3", "s4")


def test_attending_a_session_clears_at_the_attendance_and_starts_over() -> None:
    sessions = timetable(5)
    back = attended_at(sessions[2])
    state, signals = run(sessions, {"s3": back}, sessions[4].ends_at + GRACE)
    assert [(s.action, s.at) for s in signals] == [
        ("raise", sessions[1].ends_at + GRACE),
        ("clear", back),
        ("raise", sessions[4].ends_at + GRACE),
    ]
    assert signals[1].evidence == {"attended_session_id": "s3", "attended_at": back.isoformat()}
    assert signals[2].evidence["session_ids"] == ["s4", "s5"]
    assert state.missed == ("s4", "s5")


def test_attendance_with_a_run_too_short_clears_nothing() -> None:
    sessions = timetable(3)
    state, signals = run(sessions, {"s2": attended_at(sessions[1])}, sessions[2].ends_at + GRACE)
    assert signals == []
    assert state.missed == ("s3",)


def test_a_session_is_not_decided_before_its_grace_unless_attended() -> None:
    sessions = timetable(2)
    state, signals = run(sessions, {}, sessions[0].ends_at + GRACE - timedelta(seconds=1))
    assert (state, signals) == (Walk(), [])
    early = attended_at(sessions[0])
    state, signals = run(sessions, {"s1": early}, early)  # attended: decided at once
    assert (state, signals) == (Walk(sessions[0].ends_at, ()), [])


def test_attendance_after_the_due_time_does_not_count() -> None:
    sessions = timetable(2)
    late = {"s1": sessions[0].ends_at + GRACE + timedelta(minutes=1)}
    state, signals = run(sessions, late, sessions[1].ends_at + GRACE)
    assert state.missed == ("s1", "s2")
    assert [s.action for s in signals] == ["raise"]


def test_no_raise_when_the_learner_was_back_before_it_was_due() -> None:
    close = [
        Session("a", T0, T0 + timedelta(hours=1)),
        Session("b", T0 + timedelta(hours=1), T0 + timedelta(hours=2)),
        Session("c", T0 + timedelta(hours=2), T0 + timedelta(hours=3)),
    ]
    # b is missed (due at 4 h) but the learner attended c at 3 h: nothing to tell a coach
    _, signals = run(close, {"c": close[2].ends_at}, T0 + timedelta(days=1))
    assert signals == []


def test_sessions_ending_together_are_decided_together() -> None:
    end = T0 + timedelta(hours=1)
    pair = [Session("a", T0, end), Session("b", T0, end)]
    state, signals = run(pair, {"a": end}, end)  # b is not due yet: neither is decided
    assert (state, signals) == (Walk(), [])
    state, signals = run(pair, {}, end + GRACE)
    assert state == Walk(end, ("a", "b"))
    assert [s.evidence["session_ids"] for s in signals] == [["a", "b"]]


def test_a_resolution_starts_the_count_again() -> None:
    sessions = timetable(4)
    resolved = sessions[1].ends_at + GRACE + timedelta(hours=1)  # a coach resolved it
    state, signals = run(
        sessions, {}, sessions[2].ends_at + GRACE, Walk(sessions[1].ends_at, ("s1", "s2")),
        resolved_at=resolved,
    )  # fmt: skip
    assert (signals, state.missed) == ([], ("s3",))
    _, signals = run(sessions, {}, sessions[3].ends_at + GRACE, state, resolved_at=resolved)
    assert [s.evidence["session_ids"] for s in signals] == [["s3", "s4"]]


def test_settings_m_and_disabled() -> None:
    sessions = timetable(3)
    ref = sessions[2].ends_at + GRACE
    _, signals = run(sessions, {}, ref, rule=MissedSessions())  # the default: 3
    assert [s.evidence["missed_in_a_row"] for s in signals] == [3]
    state, signals = run(sessions, {}, ref, rule=MissedSessions(m=2, enabled=False))
    assert (signals, state.missed) == ([], ("s1", "s2", "s3"))
    # a clear still resolves an alert raised before the detector was switched off
    state, signals = run(
        timetable(4), {"s4": attended_at(timetable(4)[3])}, timetable(4)[3].ends_at + GRACE,
        state, rule=MissedSessions(m=2, enabled=False),
    )  # fmt: skip
    assert [s.action for s in signals] == ["clear"]


def test_sessions_no_longer_scheduled_leave_the_run() -> None:
    sessions = timetable(2)
    before = Walk(T0 - timedelta(days=1), ("gone",))  # "gone" was removed from the schedule
    state, signals = run(sessions, {}, sessions[0].ends_at + GRACE, before)
    assert (state.missed, signals) == (("s1",), [])  # not two in a row


@settings(max_examples=150, deadline=None)
@given(
    present=st.lists(st.booleans(), min_size=1, max_size=12),
    steps=st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=30),
    m=st.integers(min_value=1, max_value=3),
)
def test_walking_by_steps_gives_what_one_walk_gives(
    present: list[bool], steps: list[int], m: int
) -> None:
    """Whenever the scanner runs (every few hours live, rarely in a fast replay), the signals
    and their event times are the same."""
    sessions = timetable(len(present))
    attended = {s.id: attended_at(s) for s, here in zip(sessions, present, strict=True) if here}
    rule = MissedSessions(m=m)
    end = sessions[-1].ends_at + GRACE
    _, whole = run(sessions, attended, end, rule=rule)
    state, pieces, ref = Walk(), [], T0
    for hours in steps:
        ref = min(end, ref + timedelta(hours=hours))
        # what a scan at ``ref`` can know: attendance with an event time up to it
        known = {i: at for i, at in attended.items() if at <= ref}
        state, signals = run(sessions, known, ref, state, rule=rule)
        pieces += signals
    state, signals = run(sessions, attended, end, state, rule=rule)
    assert pieces + signals == whole
    missed_runs = sum(1 for s in whole if s.action == "clear")
    assert missed_runs <= sum(1 for s in whole if s.action == "raise")


def test_attendance_rows_keep_the_earliest_per_session() -> None:
    t1, t2 = T0, T0 + timedelta(minutes=5)
    rows = [
        ("acme", "k1", t2, "attendance", "ds", "s1"),
        ("acme", "k1", t1, "attendance", "ds", "s1"),
        ("acme", "k1", t2, "attendance", "ds", "s2"),
        ("acme", "k0", t2, "attendance", "ds", "s1"),
        ("acme", "k1", t2, "attempt", "ds", "s3"),  # not attendance
        ("acme", "k2", t1, "attendance", None, "s1"),  # no programme
        ("acme", "k3", t2, "attendance", "ds", None),  # no session
    ]
    assert attendance_rows(rows) == [
        ("acme", "ds", "k0", "s1", t2),
        ("acme", "ds", "k1", "s1", t1),
        ("acme", "ds", "k1", "s2", t2),
    ]
