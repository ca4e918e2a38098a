"""ISO 8601 durations (``result.duration``: time on task) in seconds.

``PnW`` or ``P[nD][T[nH][nM][nS]]``; years and months are refused (their length in seconds is
ambiguous). Seconds only (``PT12.34S``) is what ingest passes on almost always: it is read
directly, to the same value the general rule gives (one component), without its
per-component work. Time-on-task texts rarely repeat (hundredths of a second), so a cache
alone mostly missed.
"""

from __future__ import annotations

import re
from typing import Any, Final

_NUM: Final = r"(\d+(?:[.,]\d+)?)"
_DURATION: Final = re.compile(
    rf"^P(?:{_NUM}W|(?:{_NUM}D)?(?:T(?=\d)(?:{_NUM}H)?(?:{_NUM}M)?(?:{_NUM}S)?)?)$", re.ASCII
)
_UNIT_SECONDS: Final = (604800.0, 86400.0, 3600.0, 60.0, 1.0)
_SECONDS_ONLY: Final = re.compile(rf"PT{_NUM}S", re.ASCII)


def parse_duration(text: str) -> float:
    """Seconds in an ISO 8601 duration: ``PnW`` or ``P[nD][T[nH][nM][nS]]``.

    Strict: at least one component; a fraction (``.`` or ``,``) only on the last one; no sign.
    Years and months are refused -- their length in seconds is ambiguous.
    """
    seconds = _SECONDS_ONLY.fullmatch(text)
    if seconds is not None:  # what :func:`general_duration` gives for it, sooner
        return float(seconds.group(1).replace(",", "."))
    return general_duration(text)


def general_duration(text: str) -> float:
    """:func:`parse_duration` by the general rule alone (every shape)."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"not an ISO 8601 duration (weeks, days, hours, minutes, seconds): {text}")
    parts = [(g, u) for g, u in zip(m.groups(), _UNIT_SECONDS, strict=True) if g is not None]
    if not parts:
        raise ValueError(f"empty ISO 8601 duration: {text}")
    if any(("." in g or "," in g) for g, _ in parts[:-1]):
        raise ValueError(f"only the last component of a duration may have a fraction: {text}")
    return sum(float(g.replace(",", ".")) * u for g, u in parts)


_DURATIONS: dict[str, float | None] = {}  # bounded: emptied when full


def cached_duration(text: Any) -> float | None:
    """:func:`parse_duration` of ``text`` if it is a string, None if it is not or is invalid."""
    if not isinstance(text, str):
        return None
    if text in _DURATIONS:
        return _DURATIONS[text]
    try:
        value: float | None = parse_duration(text)
    except ValueError:
        value = None
    if len(_DURATIONS) >= 2_048:
        _DURATIONS.clear()
    _DURATIONS[text] = value
    return value
