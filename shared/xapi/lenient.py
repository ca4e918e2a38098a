"""The ``lenient`` validation profile: known real-world deviations of LMS output, repaired.

Strict validation always runs first and is unchanged (a valid statement costs nothing more).
When it fails under the lenient profile, each violation is matched against the deviations
below; if *every* violation of a round is one of them, the document is repaired to the nearest
valid form and validated again (a repair may reveal the next problem). A violation that is not a
known deviation makes the whole input fail with that round's violations, exactly as strict.

Each repair is reported as a :class:`Deviation` (rule, JSON path within the statement, original
value), which ingest keeps on the archive row and counts in a metric; the statement itself holds
no trace of it.

=============================  ============================================================
rule                           deviation -> repair
=============================  ============================================================
``activity.object_type``       an Activity object (or context activity) with a custom or
                               unknown ``objectType`` (``"activity"``, ``"Course"``, ...)
                               -> ``"Activity"``
``activity.id_bare_uuid``      an Activity id that is a bare UUID, not an IRI
                               -> ``urn:uuid:<uuid, lower case>``
``score.min_equals_max``       ``score.min == score.max`` (the spec wants min < max), raw
                               absent or equal to them -> ``min`` and ``max`` dropped
``mbox.missing_mailto``        an ``mbox`` that is a bare email address -> ``mailto:`` added
``property.null``              an optional property sent as ``null`` -> property omitted
                               (a required one stays a ``null_value`` violation)
=============================  ============================================================
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from shared.xapi.api import RawStatements, load_document, parse_statements, validate_loaded
from shared.xapi.errors import StatementValidationError, Violation, json_path
from shared.xapi.primitives import IFI_KEYS, XapiVersion
from shared.xapi.statement import Statement

__all__ = [
    "LENIENT_RULES",
    "Deviation",
    "Profile",
    "parse_statements_profiled",
]


class Profile(StrEnum):
    """A tenant's validation profile."""

    STRICT = "strict"
    LENIENT = "lenient"


#: rule id -> what the lenient profile accepts (and how it repairs it)
LENIENT_RULES: Final[dict[str, str]] = {
    "activity.object_type": "custom/unknown objectType on an Activity -> 'Activity'",
    "activity.id_bare_uuid": "bare UUID as Activity id -> 'urn:uuid:<uuid>'",
    "score.min_equals_max": "score.min == score.max -> min and max dropped",
    "mbox.missing_mailto": "mbox without 'mailto:' -> 'mailto:' prepended",
    "property.null": "optional property sent as null -> omitted",
}


@dataclass(frozen=True, slots=True)
class Deviation:
    """One accepted deviation: which rule, where in the statement, and the original value."""

    rule: str
    path: str
    original: Any

    def as_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "path": self.path, "original": self.original}


_MAX_ROUNDS: Final = 32
_TOKEN: Final = re.compile(r'\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')
_BARE_UUID: Final = re.compile(
    r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
)
_BARE_EMAIL: Final = re.compile(r"^[^@\s:]+@[^@\s]+$")
_KNOWN_TYPES: Final = frozenset({"Agent", "Group", "StatementRef", "SubStatement"})

Token = str | int


def _tokens(path: str) -> list[Token] | None:
    if not path.startswith("$"):
        return None
    out: list[Token] = []
    pos = 1
    while pos < len(path):
        match = _TOKEN.match(path, pos)
        if match is None:
            return None
        name, index, quoted = match.groups()
        if name is not None:
            out.append(name)
        elif index is not None:
            out.append(int(index))
        else:
            out.append(json.loads(quoted))
        pos = match.end()
    return out


def _node(doc: Any, tokens: list[Token]) -> Any:
    node = doc
    for token in tokens:
        if isinstance(token, int):
            if not isinstance(node, list) or token >= len(node):
                return None
        elif not isinstance(node, dict) or token not in node:
            return None
        node = node[token]
    return node


def _is_activity_like(node: Any) -> bool:
    return (
        isinstance(node, dict)
        and isinstance(node.get("id"), str)
        and not any(key in node for key in IFI_KEYS)
    )


Fixer = Callable[[Any, list[Token]], tuple[str, Any] | None]


def _fix_object_type(doc: Any, tokens: list[Token]) -> tuple[str, Any] | None:
    target = tokens[:-1] if tokens and tokens[-1] == "objectType" else tokens
    node = _node(doc, target)
    if not _is_activity_like(node):
        return None
    original = node.get("objectType")
    if not isinstance(original, str) or original in _KNOWN_TYPES or original == "Activity":
        return None
    node["objectType"] = "Activity"
    return "activity.object_type", original


def _fix_bare_uuid(doc: Any, tokens: list[Token]) -> tuple[str, Any] | None:
    if len(tokens) < 2 or tokens[-1] != "id":
        return None
    in_object = tokens[-2] == "object"
    in_context = "contextActivities" in tokens
    if not (in_object or in_context):
        return None
    parent = _node(doc, tokens[:-1])
    if not _is_activity_like(parent) or parent.get("objectType") in _KNOWN_TYPES:
        return None
    original = parent["id"]
    if not _BARE_UUID.match(original):
        return None
    parent["id"] = f"urn:uuid:{original.lower()}"
    return "activity.id_bare_uuid", original


def _fix_score(doc: Any, tokens: list[Token]) -> tuple[str, Any] | None:
    if len(tokens) < 2 or tokens[-2:] != ["score", "min"]:
        return None
    score = _node(doc, tokens[:-1])
    if not isinstance(score, dict):
        return None
    low, high, raw = score.get("min"), score.get("max"), score.get("raw")
    numbers = (int, float)
    if not (isinstance(low, numbers) and isinstance(high, numbers)) or isinstance(low, bool):
        return None
    if isinstance(high, bool) or low != high or (raw is not None and raw != low):
        return None
    del score["min"], score["max"]
    return "score.min_equals_max", {"min": low, "max": high}


def _fix_mbox(doc: Any, tokens: list[Token]) -> tuple[str, Any] | None:
    if not tokens or tokens[-1] != "mbox":
        return None
    parent = _node(doc, tokens[:-1])
    value = parent.get("mbox") if isinstance(parent, dict) else None
    if not isinstance(value, str) or not _BARE_EMAIL.match(value):
        return None
    parent["mbox"] = f"mailto:{value}"
    return "mbox.missing_mailto", value


def _fix_null(doc: Any, tokens: list[Token]) -> tuple[str, Any] | None:
    if not tokens or not isinstance(tokens[-1], str):
        return None
    parent = _node(doc, tokens[:-1])
    if not isinstance(parent, dict) or tokens[-1] not in parent or parent[tokens[-1]] is not None:
        return None
    del parent[tokens[-1]]
    return "property.null", None


_FIXERS: Final[dict[str, Fixer]] = {
    "object_type": _fix_object_type,
    "iri.scheme": _fix_bare_uuid,
    "score.range": _fix_score,
    "mbox.mailto": _fix_mbox,
    "null_value": _fix_null,
}


def _split(tokens: list[Token], is_array: bool) -> tuple[int, list[Token]]:
    """(statement index, path inside the statement)."""
    if is_array:
        head = tokens[0] if tokens else None
        return (head if isinstance(head, int) else -1), tokens[1:]
    return 0, tokens


def _repair_round(
    doc: Any, violations: list[Violation], is_array: bool, found: list[list[Deviation]]
) -> bool:
    """Repair every violation of one round; False (nothing changed) if one is not known."""
    planned: list[tuple[Fixer, list[Token]]] = []
    for violation in violations:
        fixer = _FIXERS.get(violation.rule)
        tokens = _tokens(violation.path)
        if fixer is None or tokens is None:
            return False
        planned.append((fixer, tokens))
    # repair on a scratch copy first: all or nothing per round
    scratch = copy.deepcopy(doc)
    results: list[tuple[int, list[Token], str, Any]] = []
    for fixer, tokens in planned:
        fixed = fixer(scratch, tokens)
        if fixed is None:
            return False
        index, inner = _split(tokens, is_array)
        if fixed[0] == "activity.object_type" and inner[-1:] != ["objectType"]:
            inner = [*inner, "objectType"]
        results.append((index, inner, *fixed))
    for fixer, tokens in planned:
        fixer(doc, tokens)
    for index, inner, rule, original in results:
        if 0 <= index < len(found):
            found[index].append(Deviation(rule, json_path(inner), original))
    return True


def _restore_nulls(exc: StatementValidationError, dropped: set[str]) -> StatementValidationError:
    """A required property that was sent as null is reported as ``null_value``, as strict does."""
    if not dropped:
        return exc
    return StatementValidationError(
        [
            Violation(v.path, "null_value", "null is not allowed here")
            if v.rule == "required" and v.path in dropped
            else v
            for v in exc.violations
        ]
    )


def parse_statements_profiled(
    raw: RawStatements, *, version: XapiVersion, profile: Profile = Profile.STRICT
) -> list[tuple[Statement, tuple[Deviation, ...]]]:
    """Like :func:`~shared.xapi.parse_statements`, with the deviations accepted per statement
    (always empty under the strict profile)."""
    data = load_document(raw)
    try:
        return [(s, ()) for s in validate_loaded(data, version=version)]
    except StatementValidationError as first:
        if profile is not Profile.LENIENT or not isinstance(data, dict | list):
            raise
        error = first
    is_array = isinstance(data, list)
    doc = copy.deepcopy(data)
    found: list[list[Deviation]] = [[] for _ in (doc if is_array else [doc])]
    dropped: set[str] = set()
    for _ in range(_MAX_ROUNDS):
        nulls = {v.path for v in error.violations if v.rule == "null_value"}
        if not _repair_round(doc, error.violations, is_array, found):
            raise _restore_nulls(error, dropped) from None
        dropped |= nulls
        try:
            statements = parse_statements(doc, version=version)
        except StatementValidationError as again:
            error = again
            continue
        return [(s, tuple(d)) for s, d in zip(statements, found, strict=True)]
    raise _restore_nulls(error, dropped) from None
