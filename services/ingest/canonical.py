"""Canonical comparison of xAPI statements: "is this the same statement?" when an id arrives
again (a retried POST, a replayed raw record, a PUT of an existing id).

The xAPI rules ("Statement comparison"): id, stored, authority and version are ignored, as are
property order, the order of a Group's members, the case of UUIDs and the representation of
timestamps (compared as UTC instants at millisecond precision). :func:`content_hash` gives the
SHA-256 of that canonical form; :func:`canonical` the form itself (used for signatures). Pure
functions, no I/O.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any, Final

import orjson


def utc_ms(value: datetime) -> datetime:
    """``value`` in UTC, truncated to milliseconds (the precision ``stored`` is kept in)."""
    value = value.astimezone(UTC)  # the value itself when it is in UTC already
    if value.microsecond % 1000 == 0:
        return value  # already truncated (a whole batch's time, truncated once)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def format_timestamp(value: datetime) -> str:
    return utc_ms(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# properties ignored when comparing two statements with the same id (xAPI "Statement comparison")
_NOT_COMPARED: Final = ("id", "stored", "authority", "version")


#: a timestamp already in UTC with a ``Z`` (how most LMSs send them): canonicalised as text
_UTC_Z_TIMESTAMP: Final = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]+))?Z"
)


def _canonical_timestamp(value: str) -> str:
    """The instant of ``value`` in UTC at millisecond precision (truncated), as text; a value
    that is not an ISO 8601 timestamp is compared as sent."""
    utc = _UTC_Z_TIMESTAMP.fullmatch(value)
    if utc is None:
        return _canonical_timestamp_parsed(value)
    # same text as the general path, without building datetimes
    try:
        datetime.fromisoformat(value)  # that day and time exist
    except ValueError:
        return value
    return f"{utc[1]}.{(utc[2] or '')[:3].ljust(3, '0')}Z"


def _canonical_timestamp_parsed(value: str) -> str:
    """:func:`_canonical_timestamp` for any ISO 8601 form, through a datetime."""
    try:
        parsed = datetime.fromisoformat(value.replace(",", "."))
    except ValueError:
        return value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return format_timestamp(parsed)


_DURATION_SECONDS: Final = re.compile(r"(\d+)[.,](\d*)S$")


def _canonical_duration(value: str) -> str:
    """Seconds truncated to hundredths: "any precision beyond 0.01 second precision shall not be
    included in the comparison" (xAPI 2.0 4.2.7)."""
    match = _DURATION_SECONDS.search(value)
    if match is None:
        return value
    fraction = match.group(2)[:2].rstrip("0")
    seconds = f"{match.group(1)}.{fraction}S" if fraction else f"{match.group(1)}S"
    return value[: match.start()] + seconds


_STRING_CANONICAL: Final[dict[str, Any]] = {
    "timestamp": _canonical_timestamp,
    "stored": _canonical_timestamp,
    "registration": str.lower,
    "duration": _canonical_duration,
}


def _canonical_dict(value: dict[str, Any]) -> dict[str, Any]:
    # The hot path of content_hash: one call per object (not per value); leaves are handled
    # inline. Same result as a plain recursive walk keyed by the property name. Values decoded
    # from JSON are exactly str/dict/list/int/float/bool/None: dispatched on their type first
    # (cheaper than isinstance chains); anything else takes the general branches below.
    out: dict[str, Any] = {}
    for key, item in value.items():
        kind = type(item)
        if kind is str:
            fix = _STRING_CANONICAL.get(key)
            out[key] = item if fix is None else fix(item)
        elif kind is int or kind is float or kind is bool or item is None:
            out[key] = item
        elif key == "extensions":
            out[key] = item  # any JSON: compared as sent
        elif isinstance(item, dict):
            out[key] = _canonical_dict(item)
        elif isinstance(item, list):
            out[key] = _canonical_list(item, member=key == "member")
        elif isinstance(item, str):
            fix = _STRING_CANONICAL.get(key)
            out[key] = item if fix is None else fix(item)
        else:
            out[key] = item
    if out.get("objectType") == "StatementRef" and isinstance(out.get("id"), str):
        out["id"] = out["id"].lower()
    return out


def _canonical_list(value: list[Any], *, member: bool = False) -> list[Any]:
    # list items have no property name: strings in a list are compared as sent
    items = [
        v
        if type(v) is str
        else _canonical_dict(v)
        if isinstance(v, dict)
        else _canonical_list(v)
        if isinstance(v, list)
        else v
        for v in value
    ]
    if member:
        items.sort(key=lambda v: orjson.dumps(v, option=orjson.OPT_SORT_KEYS))
    return items


def canonical(value: Any) -> Any:
    """``value`` (a statement or a part of one) in the form used for statement comparison."""
    if isinstance(value, dict):
        return _canonical_dict(value)
    if isinstance(value, list):
        return _canonical_list(value)
    return value


#: where the canonical walk may change something, as JSON text: a key whose string value is
#: rewritten, a Group's member list, a StatementRef (its id is lower-cased). In orjson's output
#: these bytes only occur as a key or a string value of exactly that text (a quote inside a
#: string is escaped): a value only costs a walk, which gives the same result.
_WALK_TRIGGERS: Final = re.compile(
    rb'"(?:timestamp|duration|registration|stored|member|StatementRef)"'
)


def _fix_known_places(compared: dict[str, Any]) -> list[bytes]:
    """Canonicalise, in place (copying the parts it changes), the three places where a
    statement carries a value the walk rewrites: ``timestamp``, ``result.duration`` and
    ``context.registration``. Returns the keys it fixed, as :data:`_WALK_TRIGGERS` finds them."""
    fixed: list[bytes] = []
    timestamp = compared.get("timestamp")
    if type(timestamp) is str:
        compared["timestamp"] = _canonical_timestamp(timestamp)
        fixed.append(b'"timestamp"')
    result = compared.get("result")
    if type(result) is dict and type(result.get("duration")) is str:
        compared["result"] = {**result, "duration": _canonical_duration(result["duration"])}
        fixed.append(b'"duration"')
    context = compared.get("context")
    if type(context) is dict and type(context.get("registration")) is str:
        compared["context"] = {**context, "registration": context["registration"].lower()}
        fixed.append(b'"registration"')
    return fixed


def _compared_part(body: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy of ``body`` without the properties statement comparison ignores."""
    compared = body.copy()
    for key in _NOT_COMPARED:
        compared.pop(key, None)
    return compared


def content_hash(body: dict[str, Any]) -> str:
    """SHA-256 of the statement's canonical form, for "same id, same content?" checks.

    Ignored, as the xAPI comparison rules say: id (compared by lookup), stored, authority,
    version, property order, the order of Group members, case of UUIDs, and timestamp
    representation (compared as UTC instants at millisecond precision).

    Fast path: most statements need canonical work only at the statement's own ``timestamp``,
    ``result.duration`` and ``context.registration``. Those are fixed directly; the text is
    then searched for any other place the walk would change (:data:`_WALK_TRIGGERS`). When
    there is none, the text is the walk's result; otherwise the whole walk runs. Both give
    the same bytes (pinned in ``tests/unit/ingest/test_hash_pinned.py``).
    """
    compared = _compared_part(body)
    fixed = _fix_known_places(compared)
    text = orjson.dumps(compared, option=orjson.OPT_SORT_KEYS)
    found = _WALK_TRIGGERS.findall(text)
    if len(found) != len(fixed) or set(found) != set(fixed):  # something else to canonicalise
        walked = _canonical_dict(_compared_part(body))
        text = orjson.dumps(walked, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(text).hexdigest()
