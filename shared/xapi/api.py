"""Entry points: parse and validate statements, serialise them back to JSON."""

from __future__ import annotations

from typing import Any, Final

import orjson
from pydantic import TypeAdapter, ValidationError

from shared.xapi.errors import StatementValidationError, Violation, violations_from_pydantic
from shared.xapi.primitives import VERSION_CONTEXT_KEY, XapiVersion
from shared.xapi.statement import Statement

__all__ = [
    "MAX_JSON_DEPTH",
    "load_document",
    "parse_statement",
    "parse_statements",
    "statement_to_dict",
    "statement_to_json",
    "validate_loaded",
]

RawStatements = bytes | bytearray | memoryview | str | dict[str, Any] | list[Any]

_STATEMENT: Final = TypeAdapter(Statement)
_STATEMENTS: Final = TypeAdapter(list[Statement])
_STATEMENT_CORE: Final = Statement.__pydantic_validator__


#: Deepest nesting of objects and arrays accepted in a document (the top-level statement or
#: array is level 1). xAPI statements themselves are shallow (a SubStatement's context
#: activities sit about 6 levels down); only extensions nest freely. 128 leaves extensions
#: ample room while staying far below the ~255 levels at which orjson and pydantic refuse to
#: serialise (the archived statement is re-serialised and wrapped in an event envelope), so a
#: statement that validates can always be stored and published. Deeper documents are refused
#: with rule ``json.depth``.
MAX_JSON_DEPTH: Final = 128


#: the types JSON decoding gives leaves: never walked into
_LEAVES: Final = frozenset({str, int, float, bool, type(None)})


def _nests_deeper(node: dict[str, Any] | list[Any], levels: int) -> bool:
    """True when ``node`` holds containers more than ``levels`` levels deep (itself counted).
    Recursion is bounded by ``levels``, not by the input; the hot path of a batch, so leaves
    are told apart by exact type first."""
    if levels == 0:
        return True
    for child in node.values() if isinstance(node, dict) else node:
        kind = type(child)
        if (
            kind is dict or kind is list or (kind not in _LEAVES and isinstance(child, dict | list))
        ) and _nests_deeper(child, levels - 1):
            return True
    return False


def _item_nests_deeper(item: Any, levels: int) -> bool:
    """:func:`_nests_deeper` of one item of an array (a container), walked only when its JSON
    text has ``levels`` brackets or more: an item holds at least as many ``{``/``[`` as it has
    containers, so fewer cannot nest ``levels`` deep. Serialising a statement costs a fraction
    of walking it; an item orjson cannot serialise is walked."""
    try:
        text = orjson.dumps(item)
    except TypeError:  # orjson.JSONEncodeError too (e.g. nested deeper than orjson goes)
        return _nests_deeper(item, levels)
    if text.count(b"{") + text.count(b"[") < levels:
        return False
    return _nests_deeper(item, levels)


def _too_deep(data: Any) -> bool:
    if isinstance(data, list):  # a batch: each statement on its own (the array is level 1)
        return any(
            _item_nests_deeper(item, MAX_JSON_DEPTH - 1)
            for item in data
            if type(item) not in _LEAVES and isinstance(item, dict | list)
        )
    return isinstance(data, dict) and _nests_deeper(data, MAX_JSON_DEPTH)


def _check_depth(data: Any) -> None:
    """Refuse ``data`` nested deeper than :data:`MAX_JSON_DEPTH`."""
    if _too_deep(data):
        raise StatementValidationError(
            [
                Violation(
                    "$",
                    "json.depth",
                    f"the document nests objects and arrays more than {MAX_JSON_DEPTH} levels deep",
                )
            ]
        )


def _brackets(raw: bytes | bytearray | memoryview | str) -> int:
    if isinstance(raw, str):
        return raw.count("{") + raw.count("[")
    text = raw if isinstance(raw, bytes | bytearray) else bytes(raw)
    return text.count(b"{") + text.count(b"[")


def load_document(raw: RawStatements) -> Any:
    """Decode ``raw`` (JSON text or an already-decoded value) and check its depth."""
    if isinstance(raw, bytes | bytearray | memoryview | str):
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise StatementValidationError(
                [Violation("$", "json.invalid", f"not valid JSON: {exc}")]
            ) from None
        if _brackets(raw) > MAX_JSON_DEPTH:  # fewer brackets than the limit cannot nest deeper
            _check_depth(data)
        return data
    _check_depth(raw)
    return raw


#: the validation context of each version, built once (read-only for the validators)
_CONTEXTS: Final[dict[XapiVersion, dict[str, Any]]] = {
    version: {VERSION_CONTEXT_KEY: version} for version in XapiVersion
}


def _context(version: XapiVersion) -> dict[str, Any]:
    if type(version) is not XapiVersion:
        raise TypeError(f"version must be an XapiVersion, not {version!r}")
    return _CONTEXTS[version]


def _validate_one(data: Any, version: XapiVersion) -> Statement:
    """Validate one decoded statement (its depth already checked)."""
    if type(data) is not dict and not isinstance(data, dict):
        rule = "null_value" if data is None else "type"
        raise StatementValidationError([Violation("$", rule, "a statement must be an object")])
    try:
        # the model's core validator directly: TypeAdapter.validate_python adds a Python layer
        statement: Statement = _STATEMENT_CORE.validate_python(
            data, context=_context(version), by_alias=True, by_name=False
        )
    except ValidationError as exc:
        raise StatementValidationError(violations_from_pydantic(exc)) from None
    return statement


def parse_statement(raw: RawStatements, *, version: XapiVersion) -> Statement:
    """Validate one statement given as JSON text/bytes or an already-decoded dict.

    Raises :class:`StatementValidationError` listing every violation found.

    Only the xAPI (camelCase) property names are accepted: the models'
    ``populate_by_name`` is meant for Python constructors, so JSON input is validated
    with ``by_name=False`` and e.g. ``object_type`` is an unknown property.
    """
    return _validate_one(load_document(raw), version)


def parse_statements(raw: RawStatements, *, version: XapiVersion) -> list[Statement]:
    """Validate a single statement or an array of statements; always returns a list.

    Paths of violations in an array are prefixed with the index (``$[2].actor``).
    Statement ids must be distinct within one array (rule ``id.duplicate``).
    """
    return validate_loaded(load_document(raw), version=version)


def validate_loaded(data: Any, *, version: XapiVersion) -> list[Statement]:
    """:func:`parse_statements` of a document :func:`load_document` returned (decoded and
    depth-checked once: the walk is not repeated)."""
    if isinstance(data, dict):
        return [_validate_one(data, version)]
    if not isinstance(data, list):
        rule = "null_value" if data is None else "type"
        raise StatementValidationError(
            [Violation("$", rule, "expected a statement object or an array of statements")]
        )
    try:
        statements = _STATEMENTS.validate_python(
            data, context=_context(version), by_alias=True, by_name=False
        )
    except ValidationError as exc:
        raise StatementValidationError(violations_from_pydantic(exc)) from None
    seen: dict[str, int] = {}
    duplicates: list[Violation] = []
    for index, statement in enumerate(statements):
        if statement.id is None:
            continue
        key = statement.id.lower()
        if key in seen:
            duplicates.append(
                Violation(
                    f"$[{index}].id",
                    "id.duplicate",
                    f"statement id repeats the one at $[{seen[key]}].id",
                )
            )
        else:
            seen[key] = index
    if duplicates:
        raise StatementValidationError(duplicates)
    return statements


def statement_to_json(statement: Statement) -> bytes:
    """Serialise a statement to JSON bytes: camelCase aliases, absent properties omitted.

    ``None`` fields are omitted; ``null`` values inside extensions are kept. Parsing the
    output again yields an equal :class:`Statement`.
    """
    return _STATEMENT.dump_json(statement, by_alias=True, exclude_none=True)


def statement_to_dict(statement: Statement) -> dict[str, Any]:
    """The JSON-ready dict of :func:`statement_to_json` (equal to ``orjson.loads`` of it),
    built without going through JSON text."""
    data: dict[str, Any] = _STATEMENT.dump_python(
        statement, mode="json", by_alias=True, exclude_none=True
    )
    return data
