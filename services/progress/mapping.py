"""A framework's mapping rules: which competencies (and weights) a statement maps to.

Every mapping rule that matches contributes ``(competency, weight)``; a competency matched by
several rules keeps its highest weight. Rules match on

- ``activity_id``: ``object.id`` (the object being an Activity);
- ``activity_type``: ``object.definition.type``;
- ``context_parent``: any id in ``context.contextActivities.parent`` or ``.grouping``;
- ``extension``: the key in ``object.definition.extensions``, ``result.extensions`` or
  ``context.extensions`` with an equal value (a list value matches if any element is equal;
  booleans equal only booleans, so ``true`` never equals ``1``).

Pure functions over the statement's JSON object (:mod:`services.progress.evidence` uses them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.framework import Framework

_EMPTY: Mapping[str, Any] = {}


def json_obj(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    if type(value) is dict:  # the common case (JSON): skips the slower ABC check
        return value
    return value if isinstance(value, Mapping) else _EMPTY


def as_list(value: Any) -> list[Any]:
    """``value`` as a list (xAPI allows one object where an array is expected)."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _same(rule: Any, value: Any) -> bool:
    if isinstance(value, list):
        return any(_same(rule, v) for v in value)
    if isinstance(rule, bool) or isinstance(value, bool):
        return isinstance(rule, bool) and isinstance(value, bool) and rule == value
    if isinstance(rule, int | float) and isinstance(value, int | float):
        return float(rule) == float(value)
    return isinstance(value, str) and isinstance(rule, str) and rule == value


@dataclass(frozen=True)
class FrameworkIndex:
    """The mapping rules of one framework by what they match on; build once, use per event."""

    framework: Framework
    by_id: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    by_type: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    by_parent: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    by_ext: dict[str, list[tuple[Any, str, float]]] = field(default_factory=dict)
    sessions: dict[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, framework: Framework) -> FrameworkIndex:
        index = cls(framework)
        for m in framework.mappings:
            rule, target = m.match, (m.competency, m.weight)
            if rule.activity_id is not None:
                index.by_id.setdefault(rule.activity_id, []).append(target)
            elif rule.activity_type is not None:
                index.by_type.setdefault(rule.activity_type, []).append(target)
            elif rule.context_parent is not None:
                index.by_parent.setdefault(rule.context_parent, []).append(target)
            elif rule.extension is not None:
                ext = rule.extension
                index.by_ext.setdefault(ext.key, []).append((ext.value, *target))
        for p in framework.programmes:
            for s in p.sessions:
                index.sessions[s.activity_id] = (p.id, s.id)
        return index


def match_competencies(statement: Mapping[str, Any], index: FrameworkIndex) -> dict[str, float]:
    """Every competency the statement maps to, with its highest matching weight."""
    obj = json_obj(statement.get("object"))
    context = json_obj(statement.get("context"))
    return match_parts(
        index,
        obj,
        json_obj(obj.get("definition")),
        json_obj(statement.get("result")),
        context,
        json_obj(context.get("contextActivities")),
    )


def _add(found: dict[str, float], targets: Iterable[tuple[str, float]]) -> None:
    for competency, weight in targets:
        old = found.get(competency)
        if old is None or weight > old:
            found[competency] = weight


def match_parts(  # noqa: PLR0917 - the parts of one statement, taken apart once by the caller
    index: FrameworkIndex,
    obj: Mapping[str, Any],
    definition: Mapping[str, Any],
    result: Mapping[str, Any],
    context: Mapping[str, Any],
    activities: Mapping[str, Any],
) -> dict[str, float]:
    found: dict[str, float] = {}
    oid = obj.get("id")
    if type(oid) is str and obj.get("objectType", "Activity") == "Activity":
        _add(found, index.by_id.get(oid, ()))
    otype = definition.get("type")
    if type(otype) is str:
        _add(found, index.by_type.get(otype, ()))
    if activities:
        for kind in ("parent", "grouping"):
            for a in as_list(activities.get(kind)):
                if isinstance(a, Mapping) and isinstance(a.get("id"), str):
                    _add(found, index.by_parent.get(a["id"], ()))
    if index.by_ext:
        for source in (definition, result, context):
            for key, value in json_obj(source.get("extensions")).items():
                for rule_value, competency, weight in index.by_ext.get(key, ()):
                    if _same(rule_value, value):
                        _add(found, [(competency, weight)])
    return found
