"""Lifecycle transitions, signal decisions, routing, signing and settings resolution."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.alerts.delivery import backoff_seconds
from services.alerts.errors import ConflictError
from services.alerts.lifecycle import Current, check_snooze, decide, staff_transition
from services.alerts.routing import Rule, route
from services.alerts.rules import DEFAULTS, resolve
from services.alerts.signing import sign, signature, verify
from services.alerts.state import Signal

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "action", "expected"),
    [
        ("open", "acknowledge", ("acknowledged", "acknowledged")),
        ("snoozed", "acknowledge", ("acknowledged", "acknowledged")),
        ("open", "resolve", ("resolved", "resolved")),
        ("acknowledged", "resolve", ("resolved", "resolved")),
        ("snoozed", "resolve", ("resolved", "resolved")),
        ("acknowledged", "assign", ("acknowledged", "assigned")),
        ("open", "snooze", ("snoozed", "snoozed")),
        ("acknowledged", "snooze", ("snoozed", "snoozed")),
    ],
)
def test_allowed_transitions(status: str, action: str, expected: tuple[str, str]) -> None:
    assert staff_transition(status, action) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "action"),
    [
        ("resolved", "acknowledge"),
        ("resolved", "resolve"),
        ("resolved", "assign"),
        ("resolved", "snooze"),
        ("acknowledged", "acknowledge"),
        ("snoozed", "snooze"),
    ],
)
def test_refused_transitions(status: str, action: str) -> None:
    with pytest.raises(ConflictError):
        staff_transition(status, action)  # type: ignore[arg-type]


def test_snooze_must_be_in_the_future() -> None:
    check_snooze(NOW + timedelta(minutes=1), NOW)
    with pytest.raises(ConflictError):
        check_snooze(NOW, NOW)


def _signal(action: str, at: datetime = NOW, cooldown: float = 12.0) -> Signal:
    return Signal(kind="failure_streak", action=action, at=at, cooldown_hours=cooldown)  # type: ignore[arg-type]


def test_decisions() -> None:
    assert decide(_signal("raise"), Current(None, None)) == "open"
    assert decide(_signal("raise"), Current("acknowledged", None)) == "update"
    assert decide(_signal("raise"), Current("snoozed", None)) == "update"
    assert decide(_signal("clear"), Current("open", None)) == "resolve"
    assert decide(_signal("clear"), Current(None, NOW)) == "ignore"


def test_cooldown_after_resolution_in_event_time() -> None:
    resolved = NOW - timedelta(hours=11, minutes=59)
    assert decide(_signal("raise"), Current(None, resolved)) == "suppress"
    assert decide(_signal("raise"), Current(None, NOW - timedelta(hours=12))) == "open"
    assert decide(_signal("raise", cooldown=0), Current(None, NOW)) == "open"


def test_routing_first_matching_rule_by_priority() -> None:
    rules = [
        Rule(1, 100, "general"),
        Rule(2, 10, "cyber", programme="cyber-2026"),
        Rule(3, 5, "urgent", min_severity="high"),
        Rule(4, 20, "coaches", kind="gaming", business_unit="retail"),
    ]

    def team(**kw: object) -> str | None:
        args = {"business_unit": None, "programme": None, "kind": "inactivity", "severity": "low"}
        return route(rules, **(args | kw))  # type: ignore[arg-type]

    assert team() == "general"
    assert team(programme="cyber-2026") == "cyber"
    assert team(programme="cyber-2026", severity="high") == "urgent"
    assert team(kind="gaming", business_unit="retail") == "coaches"
    assert team(kind="gaming", business_unit="wholesale") == "general"
    assert route([], business_unit=None, programme=None, kind="gaming", severity="high") is None


def test_signature_over_timestamp_and_body() -> None:
    body = b'{"a":1}'
    header = sign("s3cret", body, timestamp=1_700_000_000)
    assert header == f"t=1700000000,v1={signature('s3cret', 1_700_000_000, body)}"
    assert verify("s3cret", header, body, now=1_700_000_100)
    assert not verify("other", header, body, now=1_700_000_100)
    assert not verify("s3cret", header, body + b" ", now=1_700_000_100)
    assert not verify("s3cret", header, body, now=1_700_000_301)  # too old: replay
    assert not verify("s3cret", "v1=abc", body)
    # known answer, computed with `printf '1.body' | openssl dgst -sha256 -hmac key`
    assert signature("key", 1, b"body") == (
        "91b5374b153842ad05b2c4eab9349b8321b14703165bd3fb8b034dfb8be98ae5"
    )


def test_backoff_doubles_and_caps() -> None:
    assert [backoff_seconds(a, 2.0, 10.0) for a in range(1, 6)] == [2, 4, 8, 10, 10]


def test_settings_resolution_and_refusal() -> None:
    s = resolve({"failure_streak": {"k": 6}}, {"failure_streak": {"cooldown_hours": 1}})
    assert s.failure_streak.k == 6
    assert s.failure_streak.cooldown_hours == 1
    assert s.gaming == DEFAULTS.gaming
    with pytest.raises(ValidationError):
        resolve({"failure_streak": {"kk": 6}})
    with pytest.raises(ValidationError):
        resolve({"nonsense": {}})


def test_wheel_spinning_model_parameters_merge_key_by_key() -> None:
    """A tenant's fitted parameters, partly given, laid over the defaults (then a programme's)."""
    s = resolve(
        {"wheel_spinning": {"bkt": {"learn": 0.3, "guess": 0.25}}},
        {"wheel_spinning": {"bkt": {"slip": 0.05}, "raise_probability": 0.5}},
    )
    assert (s.wheel_spinning.bkt.learn, s.wheel_spinning.bkt.guess) == (0.3, 0.25)
    assert s.wheel_spinning.bkt.slip == 0.05
    assert s.wheel_spinning.bkt.prior == DEFAULTS.wheel_spinning.bkt.prior
    assert s.wheel_spinning.raise_probability == 0.5
    with pytest.raises(ValidationError):
        resolve({"wheel_spinning": {"bkt": {"learning": 0.3}}})
    with pytest.raises(ValidationError):
        resolve({"wheel_spinning": {"method": "vibes"}})
