"""Translation of pydantic validation errors into xAPI rule violations with JSON paths."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from shared.xapi.primitives import PATTERN_RULES

__all__ = [
    "StatementValidationError",
    "Violation",
    "json_path",
    "violations_from_pydantic",
]


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: where (JSON path), which rule (stable id), and why."""

    path: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} [rule {self.rule}]"


class StatementValidationError(ValueError):
    """Raised when one or more statements break xAPI rules."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations: list[Violation] = list(violations)
        count = len(self.violations)
        lines = "\n".join(f"  {violation}" for violation in self.violations)
        super().__init__(f"{count} xAPI rule violation{'s' if count != 1 else ''}:\n{lines}")

    @property
    def rules(self) -> list[str]:
        return [violation.rule for violation in self.violations]


# Fields whose value is a discriminated union: pydantic puts the chosen tag in the loc
# right after them, which is not part of the JSON document.
_UNION_FIELDS: Final = frozenset({"actor", "object", "instructor", "authority"})
_UNION_TAGS: Final = frozenset({"Agent", "Group", "Activity", "StatementRef", "SubStatement"})
# contextActivities values: single object ("one") or list ("many").
_ONE_OR_MANY_FIELDS: Final = frozenset({"parent", "grouping", "category", "other"})
_ONE_OR_MANY_TAGS: Final = frozenset({"one", "many"})
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# pydantic error type -> rule id, for errors that are not custom rule errors.
_TYPE_RULES: Final[dict[str, str]] = {
    "extra_forbidden": "unknown_property",
    "missing": "required",
    "union_tag_invalid": "object_type",
    "union_tag_not_found": "object_type",
    "string_too_short": "value.empty",
    "too_short": "list.empty",
    "json_invalid": "json.invalid",
    "greater_than_equal": "value.range",
    "greater_than": "value.range",
    "less_than_equal": "value.range",
    "less_than": "value.range",
    "finite_number": "value.range",
}
_RANGE_RULES_BY_FIELD: Final = {"length": "attachment.length"}
_LITERAL_RULES: Final = {"objectType": "object_type", "interactionType": "interaction.type"}

_MESSAGES: Final[dict[str, str]] = {
    "unknown_property": "unknown property (not defined by xAPI for this object)",
    "required": "required property is missing",
    "null_value": "null is not allowed here",
    "iri.scheme": "must be an IRI with a scheme (e.g. 'https://...'), without whitespace",
    "mbox.mailto": "must be a 'mailto:' IRI with an email address",
    "mbox_sha1sum.hex": "must be a SHA-1 hex digest (40 hex characters)",
    "sha2.hex": "must be a SHA-2 hex digest (56, 64, 96 or 128 hex characters)",
    "uuid.canonical": "must be a UUID in canonical hyphenated form (8-4-4-4-12 hex digits)",
    "language_tag": "must be an RFC 5646 language tag (e.g. 'en-US')",
    "duration.iso8601": "must be an ISO 8601 duration (e.g. 'PT1H30M5.2S')",
    "content_type": "must be a MIME type (type/subtype)",
    "version": "must be an xAPI version string 1.0, 1.0.x, 2.0 or 2.0.x",
    "value.empty": "must not be empty",
    "list.empty": "list must not be empty",
    "attachment.length": "attachment length must be an integer >= 0",
}


def json_path(loc: Iterable[str | int], base: str = "$") -> str:
    """Render a pydantic loc (already stripped of union tags) as a JSON path."""
    parts = [base]
    for segment in loc:
        if isinstance(segment, int):
            parts.append(f"[{segment}]")
        elif _IDENTIFIER.fullmatch(segment):
            parts.append(f".{segment}")
        else:
            parts.append(f"[{json.dumps(segment, ensure_ascii=False)}]")
    return "".join(parts)


def _document_loc(loc: tuple[str | int, ...]) -> tuple[list[str | int], bool]:
    """Drop union tags from a loc; report whether the error is about a mapping key."""
    out: list[str | int] = []
    is_key = False
    for segment in loc:
        if segment == "[key]":
            is_key = True
            continue
        previous = out[-1] if out else None
        if isinstance(segment, str) and isinstance(previous, str):
            if segment in _UNION_TAGS and previous in _UNION_FIELDS:
                continue
            if segment in _ONE_OR_MANY_TAGS and previous in _ONE_OR_MANY_FIELDS:
                continue
        out.append(segment)
    return out, is_key


def _rule_for(error: ErrorDetails, loc: list[str | int]) -> str:
    error_type = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    rule = error_type  # our PydanticCustomErrors (and timestamp errors) use the rule id
    if "sub" in ctx:
        pass
    elif error.get("input", 0) is None:
        rule = "null_value"
    elif error_type == "string_pattern_mismatch":
        rule = PATTERN_RULES.get(str(ctx.get("pattern")), "pattern")
    elif error_type in _TYPE_RULES:
        rule = _TYPE_RULES[error_type]
        if rule == "value.range" and loc and isinstance(loc[-1], str):
            rule = _RANGE_RULES_BY_FIELD.get(loc[-1], rule)
    elif error_type == "literal_error":
        rule = _LITERAL_RULES.get(str(loc[-1]) if loc else "", "enum")
    elif error_type.endswith("_type") or error_type in {"int_from_float", "is_instance_of"}:
        rule = "type"
    return rule


def _message_for(rule: str, error: ErrorDetails) -> str:
    if "sub" in (error.get("ctx") or {}) or rule not in _MESSAGES:
        text = error["msg"]
        if rule == "object_type" and error["type"].startswith("union_tag"):
            tag = (error.get("ctx") or {}).get("tag")
            text = f"objectType {tag!r} is not allowed here"
        elif rule == "type":
            text = f"wrong JSON type: {text[0].lower()}{text[1:]}"
        return text
    return _MESSAGES[rule]


def violations_from_pydantic(exc: ValidationError, base: str = "$") -> list[Violation]:
    """Translate every entry of a pydantic ``ValidationError`` into a :class:`Violation`."""
    violations: list[Violation] = []
    for error in exc.errors(include_url=False):
        loc, is_key = _document_loc(error["loc"])
        ctx = error.get("ctx") or {}
        sub = ctx.get("sub")
        if isinstance(sub, tuple):
            loc.extend(sub)
        rule = _rule_for(error, loc)
        message = _message_for(rule, error)
        if is_key:
            message = f"invalid key: {message}"
        violations.append(Violation(json_path(loc, base), rule, message))
    return violations
