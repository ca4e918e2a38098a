"""Hypothesis strategies producing valid xAPI statements (as decoded JSON), and a walker
that knows where the objects, required properties and lists of a statement are."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from tests.unit.xapi.samples import JsonPath

Doc = dict[str, Any]

_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
_TEXT = st.text(max_size=12)
LANG_TAGS = ["en", "en-US", "fr-FR", "de", "zh-Hant-TW", "es-419", "x-private", "sgn-BE-FR"]
INTERACTIONS: dict[str, tuple[str, ...]] = {
    "true-false": (),
    "choice": ("choices",),
    "fill-in": (),
    "long-fill-in": (),
    "matching": ("source", "target"),
    "performance": ("steps",),
    "sequencing": ("choices",),
    "likert": ("scale",),
    "numeric": (),
    "other": (),
}
_OFFSETS = [timedelta(0), timedelta(hours=2), timedelta(hours=-5), timedelta(hours=5, minutes=30)]

iris = st.builds(
    lambda scheme, host, seg: f"{scheme}://{host}.example/{seg}",
    st.sampled_from(["http", "https"]),
    _WORD,
    _WORD,
) | st.builds(lambda nid, nss: f"urn:{nid}:{nss}", _WORD, _WORD)
language_maps = st.dictionaries(st.sampled_from(LANG_TAGS), _TEXT, min_size=1, max_size=3)
uuids = st.uuids().map(str)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_WORD, inner, max_size=3),
    max_leaves=6,
)
extensions = st.dictionaries(iris, json_values, max_size=2)


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    moment = draw(
        st.datetimes(
            min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - naive bounds are required here
            max_value=datetime(2090, 1, 1),  # noqa: DTZ001
        )
    )
    offset = draw(st.sampled_from(_OFFSETS))
    text = moment.replace(tzinfo=timezone(offset)).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z") if draw(st.booleans()) else text


@st.composite
def agents(draw: st.DrawFn, *, object_type: bool | None = None) -> Doc:
    kind = draw(st.sampled_from(["mbox", "mbox_sha1sum", "openid", "account"]))
    agent: Doc = {}
    if kind == "mbox":
        agent["mbox"] = f"mailto:{draw(_WORD)}@{draw(_WORD)}.example"
    elif kind == "mbox_sha1sum":
        agent["mbox_sha1sum"] = draw(st.text(alphabet="0123456789abcdef", min_size=40, max_size=40))
    elif kind == "openid":
        agent["openid"] = draw(iris)
    else:
        agent["account"] = {"homePage": draw(iris), "name": draw(_WORD)}
    if draw(st.booleans()):
        agent["name"] = draw(_TEXT)
    if object_type is True or (object_type is None and draw(st.booleans())):
        agent["objectType"] = "Agent"
    return agent


@st.composite
def groups(draw: st.DrawFn, *, anonymous: bool | None = None) -> Doc:
    is_anonymous = draw(st.booleans()) if anonymous is None else anonymous
    group: Doc = {"objectType": "Group"}
    if is_anonymous:
        group["member"] = draw(st.lists(agents(), min_size=1, max_size=3))
    else:
        ifi = draw(agents(object_type=False))
        ifi.pop("name", None)
        group.update(ifi)
        if draw(st.booleans()):
            group["member"] = draw(st.lists(agents(), max_size=2))
    return group


actors = agents() | groups()


@st.composite
def components(draw: st.DrawFn) -> list[Doc]:
    ids = draw(st.lists(_WORD, min_size=1, max_size=4, unique=True))
    return [
        {"id": cid, **({"description": draw(language_maps)} if draw(st.booleans()) else {})}
        for cid in ids
    ]


@st.composite
def definitions(draw: st.DrawFn) -> Doc:
    definition: Doc = {}
    for key, strategy in (("name", language_maps), ("description", language_maps)):
        if draw(st.booleans()):
            definition[key] = draw(strategy)
    if draw(st.booleans()):
        definition["type"] = draw(iris)
    if draw(st.booleans()):
        definition["moreInfo"] = draw(iris)
    if draw(st.booleans()):
        itype = draw(st.sampled_from(sorted(INTERACTIONS)))
        definition["interactionType"] = itype
        definition["correctResponsesPattern"] = draw(st.lists(_WORD, max_size=2))
        for key in INTERACTIONS[itype]:
            definition[key] = draw(components())
    if draw(st.booleans()):
        definition["extensions"] = draw(extensions)
    return definition


@st.composite
def activities(draw: st.DrawFn) -> Doc:
    activity: Doc = {"id": draw(iris)}
    if draw(st.booleans()):
        activity["objectType"] = "Activity"
    if draw(st.booleans()):
        activity["definition"] = draw(definitions())
    return activity


statement_refs = st.builds(lambda u: {"objectType": "StatementRef", "id": u}, uuids)


@st.composite
def scores(draw: st.DrawFn) -> Doc:
    score: Doc = {}
    if draw(st.booleans()):
        score["scaled"] = draw(st.floats(-1, 1))
    if draw(st.booleans()):
        low = draw(st.integers(-100, 100))
        high = low + draw(st.integers(1, 100))
        score.update(min=low, max=high, raw=draw(st.integers(low, high)))
    return score


@st.composite
def results(draw: st.DrawFn) -> Doc:
    result: Doc = {}
    if draw(st.booleans()):
        result["score"] = draw(scores())
    for key in ("success", "completion"):
        if draw(st.booleans()):
            result[key] = draw(st.booleans())
    if draw(st.booleans()):
        result["response"] = draw(_TEXT)
    if draw(st.booleans()):
        h, m, s = draw(st.tuples(st.integers(0, 9), st.integers(0, 59), st.integers(0, 5999)))
        result["duration"] = f"PT{h}H{m}M{s / 100:.2f}S"
    if draw(st.booleans()):
        result["extensions"] = draw(extensions)
    return result


@st.composite
def contexts(draw: st.DrawFn, *, activity_object: bool, v2: bool) -> Doc:
    context: Doc = {}
    if draw(st.booleans()):
        context["registration"] = draw(uuids)
    if draw(st.booleans()):
        context["instructor"] = draw(actors)
    if draw(st.booleans()):
        context["team"] = draw(groups())
    if draw(st.booleans()):
        rel = draw(
            st.lists(
                st.sampled_from(["parent", "grouping", "category", "other"]),
                unique=True,
                max_size=4,
            )
        )
        context["contextActivities"] = {
            key: draw(activities() | st.lists(activities(), max_size=2)) for key in rel
        }
    if activity_object:
        for key in ("revision", "platform"):
            if draw(st.booleans()):
                context[key] = draw(_TEXT)
    if draw(st.booleans()):
        context["language"] = draw(st.sampled_from(LANG_TAGS))
    if draw(st.booleans()):
        context["statement"] = draw(statement_refs)
    if draw(st.booleans()):
        context["extensions"] = draw(extensions)
    if v2 and draw(st.booleans()):
        context["contextAgents"] = [
            {
                "objectType": "contextAgent",
                "agent": draw(agents()),
                **(
                    {"relevantTypes": draw(st.lists(iris, min_size=1, max_size=2))}
                    if draw(st.booleans())
                    else {}
                ),
            }
        ]
    if v2 and draw(st.booleans()):
        context["contextGroups"] = [{"objectType": "contextGroup", "group": draw(groups())}]
    return context


attachments = st.fixed_dictionaries(
    {
        "usageType": iris,
        "display": language_maps,
        "contentType": st.sampled_from(["application/pdf", "image/png", "text/plain"]),
        "length": st.integers(0, 10**9),
        "sha2": st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    },
    optional={"description": language_maps, "fileUrl": iris},
)


@st.composite
def statements(draw: st.DrawFn, *, v2: bool = False, nested: bool = True) -> Doc:
    objects = activities() | agents(object_type=True) | groups() | statement_refs
    if nested:
        objects = objects | substatements(v2=v2)
    verb: Doc = {"id": draw(iris)}
    if draw(st.booleans()):
        verb["display"] = draw(language_maps)
    doc: Doc = {"actor": draw(actors), "verb": verb, "object": draw(objects)}
    activity_object = doc["object"].get("objectType", "Activity") == "Activity"
    if draw(st.booleans()):
        doc["result"] = draw(results())
    if draw(st.booleans()):
        doc["context"] = draw(contexts(activity_object=activity_object, v2=v2))
    if draw(st.booleans()):
        doc["timestamp"] = draw(timestamps())
    if draw(st.booleans()):
        doc["attachments"] = draw(st.lists(attachments, min_size=1, max_size=2))
    if nested:  # top-level statement properties
        if draw(st.booleans()):
            doc["id"] = draw(uuids)
        if draw(st.booleans()):
            doc["stored"] = draw(timestamps())
        if draw(st.booleans()):
            doc["authority"] = draw(
                agents() | groups(anonymous=True).filter(lambda g: len(g["member"]) == 2)
            )
        if draw(st.booleans()):
            doc["version"] = draw(st.sampled_from(["1.0.0", "1.0.3", *(["2.0.0"] if v2 else [])]))
    return doc


def substatements(*, v2: bool) -> st.SearchStrategy[Doc]:
    return statements(v2=v2, nested=False).map(lambda d: {"objectType": "SubStatement", **d})


# --- walking a generated statement -----------------------------------------------------------

#: kind of object -> properties that are plainly required (deleting one yields `required`).
REQUIRED: dict[str, tuple[str, ...]] = {
    "statement": ("actor", "verb", "object"),
    "substatement": ("actor", "verb", "object"),
    "verb": ("id",),
    "activity": ("id",),
    "account": ("homePage", "name"),
    "component": ("id",),
    "attachment": ("usageType", "display", "contentType", "length", "sha2"),
    "contextAgent": ("objectType", "agent"),
    "contextGroup": ("objectType", "group"),
    "context_statement": ("objectType", "id"),
    "statementref": ("id",),
    "team": ("objectType",),
}
LANGUAGE_MAP_KEYS = ("display", "name", "description")


def objects(
    doc: Doc, path: JsonPath = (), kind: str = "statement"
) -> Iterator[tuple[JsonPath, str, Doc]]:
    """Every xAPI object in ``doc`` as (path, kind, node); language maps and extensions
    are not objects and are not yielded."""
    yield path, kind, doc
    if kind in {"statement", "substatement"}:
        yield from _actor(doc["actor"], (*path, "actor"))
        yield (*path, "verb"), "verb", doc["verb"]
        yield from _object(doc["object"], (*path, "object"))
        if "result" in doc:
            yield (*path, "result"), "result", doc["result"]
            if "score" in doc["result"]:
                yield (*path, "result", "score"), "score", doc["result"]["score"]
        if "context" in doc:
            yield from _context(doc["context"], (*path, "context"))
        if "authority" in doc:
            yield from _actor(doc["authority"], (*path, "authority"))
        for i, attachment in enumerate(doc.get("attachments", [])):
            yield (*path, "attachments", i), "attachment", attachment


def _actor(
    node: Doc, path: JsonPath, kind: str | None = None
) -> Iterator[tuple[JsonPath, str, Doc]]:
    yield path, kind or ("group" if node.get("objectType") == "Group" else "agent"), node
    if "account" in node:
        yield (*path, "account"), "account", node["account"]
    for i, member in enumerate(node.get("member", [])):
        yield from _actor(member, (*path, "member", i))


def _object(node: Doc, path: JsonPath) -> Iterator[tuple[JsonPath, str, Doc]]:
    object_type = node.get("objectType", "Activity")
    if object_type == "Activity":
        yield from _activity(node, path)
    elif object_type in {"Agent", "Group"}:
        yield from _actor(node, path)
    elif object_type == "StatementRef":
        yield path, "statementref", node
    else:
        yield from objects(node, path, "substatement")


def _activity(node: Doc, path: JsonPath) -> Iterator[tuple[JsonPath, str, Doc]]:
    yield path, "activity", node
    if "definition" in node:
        definition = node["definition"]
        yield (*path, "definition"), "definition", definition
        for key in ("choices", "scale", "source", "target", "steps"):
            for i, component in enumerate(definition.get(key, [])):
                yield (*path, "definition", key, i), "component", component


def _context(node: Doc, path: JsonPath) -> Iterator[tuple[JsonPath, str, Doc]]:
    yield path, "context", node
    if "instructor" in node:
        yield from _actor(node["instructor"], (*path, "instructor"))
    if "team" in node:
        yield from _actor(node["team"], (*path, "team"), "team")
    if "contextActivities" in node:
        ca = node["contextActivities"]
        yield (*path, "contextActivities"), "contextActivities", ca
        for key, value in ca.items():
            if isinstance(value, dict):
                yield from _activity(value, (*path, "contextActivities", key))
            else:
                for i, activity in enumerate(value):
                    yield from _activity(activity, (*path, "contextActivities", key, i))
    if "statement" in node:
        yield (*path, "statement"), "context_statement", node["statement"]
    for i, item in enumerate(node.get("contextAgents", [])):
        yield (*path, "contextAgents", i), "contextAgent", item
        yield from _actor(item["agent"], (*path, "contextAgents", i, "agent"))
    for i, item in enumerate(node.get("contextGroups", [])):
        yield (*path, "contextGroups", i), "contextGroup", item
        yield from _actor(item["group"], (*path, "contextGroups", i, "group"), "team")


def null_targets(doc: Doc) -> list[JsonPath]:
    """Every place where a JSON null is not allowed: properties of objects, items of
    their lists, values of language maps (but nothing inside extensions)."""
    targets: list[JsonPath] = []
    for path, _kind, node in objects(doc):
        for key, value in node.items():
            targets.append((*path, key))
            if key in LANGUAGE_MAP_KEYS and isinstance(value, dict):
                targets.extend((*path, key, tag) for tag in value)
            elif isinstance(value, list) and key != "extensions":
                targets.extend((*path, key, i) for i in range(len(value)))
    return targets


def to_json_path(path: JsonPath) -> str:
    out = "$"
    for segment in path:
        if isinstance(segment, int):
            out += f"[{segment}]"
        elif segment.replace("_", "a").isalnum() and not segment[0].isdigit():
            out += f".{segment}"
        else:
            out += f'["{segment}"]'
    return out


__all__ = ["REQUIRED", "null_targets", "objects", "statements", "to_json_path"]
