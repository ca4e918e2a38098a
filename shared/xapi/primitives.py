"""Constrained scalar types, patterns and the shared base model for xAPI statements.

Per-field checks are expressed as ``Annotated[str, StringConstraints(pattern=...)]`` so
that they are compiled and run inside pydantic-core (Rust regex engine, no look-around).
When such a pattern fails, pydantic reports ``string_pattern_mismatch`` carrying the
pattern text; :data:`PATTERN_RULES` maps each pattern back to the stable rule id that
:mod:`shared.xapi.errors` reports.

Cross-field rules live in model validators and raise :func:`violation`, a
``PydanticCustomError`` whose *type* is the rule id and whose context may carry a
``sub`` tuple: extra path segments (below the model being validated) where the
problem actually is.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetCoreSchemaHandler,
    StringConstraints,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError, core_schema

__all__ = [
    "IFI_KEYS",
    "IRI",
    "IRL",
    "PATTERN_RULES",
    "ContentType",
    "Duration",
    "Extensions",
    "LanguageMap",
    "LanguageTag",
    "MailtoIRI",
    "NonEmptyStr",
    "Sha1Hex",
    "Sha2Hex",
    "Timestamp",
    "UUIDStr",
    "VersionStr",
    "XapiModel",
    "XapiVersion",
    "parse_timestamp",
    "reject_nulls",
    "version_of",
    "violation",
]


class XapiVersion(StrEnum):
    """The xAPI version a statement stream is validated against."""

    V1_0_3 = "1.0.3"
    V2_0 = "2.0.0"


#: Key under which :func:`shared.xapi.statement.parse_statement` passes the version in the
#: pydantic validation context.
VERSION_CONTEXT_KEY: Final = "xapi_version"


def version_of(info: ValidationInfo) -> XapiVersion:
    """The version being validated against; models validated without a context use 1.0.3.

    1.0.3 is the stricter default: it rejects the 2.0-only properties.
    """
    ctx = info.context
    if isinstance(ctx, dict):
        value = ctx.get(VERSION_CONTEXT_KEY)
        if isinstance(value, XapiVersion):
            return value
    return XapiVersion.V1_0_3


def violation(rule: str, message: str, *sub: str | int) -> PydanticCustomError:
    """A custom pydantic error whose type is the rule id.

    ``sub`` are path segments below the model that raised it (field aliases or indexes).
    """
    return PydanticCustomError(rule, message, {"sub": tuple(sub)})


# --- patterns ---------------------------------------------------------------------------

#: An IRI must at least carry a scheme and a non-empty, whitespace-free remainder.
IRI_PATTERN: Final = r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s]+$"
MAILTO_PATTERN: Final = r"^mailto:[^@\s:]+@[^@\s]+$"
SHA1_PATTERN: Final = r"^[0-9A-Fa-f]{40}$"
SHA2_PATTERN: Final = r"^(?:[0-9A-Fa-f]{56}|[0-9A-Fa-f]{64}|[0-9A-Fa-f]{96}|[0-9A-Fa-f]{128})$"
UUID_PATTERN: Final = (
    r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
)
#: RFC 5646 ``Language-Tag``: langtag | privateuse | irregular grandfathered tags.
LANGUAGE_TAG_PATTERN: Final = (
    r"^(?:"
    r"(?:[A-Za-z]{2,3}(?:-[A-Za-z]{3}){0,3}|[A-Za-z]{4,8})"  # language (+ extlang)
    r"(?:-[A-Za-z]{4})?"  # script
    r"(?:-(?:[A-Za-z]{2}|[0-9]{3}))?"  # region
    r"(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*"  # variants
    r"(?:-[0-9A-WY-Za-wy-z](?:-[A-Za-z0-9]{2,8})+)*"  # extensions
    r"(?:-[Xx](?:-[A-Za-z0-9]{1,8})+)?"  # private use
    r"|[Xx](?:-[A-Za-z0-9]{1,8})+"
    r"|en-GB-oed|i-ami|i-bnn|i-default|i-enochian|i-hak|i-klingon|i-lux|i-mingo"
    r"|i-navajo|i-pwn|i-tao|i-tay|i-tsu|sgn-BE-FR|sgn-BE-NL|sgn-CH-DE"
    r")$"
)
#: ISO 8601:2004 4.4.3.2 duration (the "alternative format" is not allowed). Fractions
#: are accepted on the seconds component (and on weeks), which is what xAPI producers use.
_DUR_TIME = r"T(?:\d+H(?:\d+M)?(?:\d+(?:[.,]\d+)?S)?|\d+M(?:\d+(?:[.,]\d+)?S)?|\d+(?:[.,]\d+)?S)"
_DUR_DATE = r"(?:\d+Y(?:\d+M)?(?:\d+D)?|\d+M(?:\d+D)?|\d+D)"
DURATION_PATTERN: Final = rf"^P(?:\d+(?:[.,]\d+)?W|{_DUR_DATE}(?:{_DUR_TIME})?|{_DUR_TIME})$"
#: RFC 6838 type/subtype, with optional parameters.
CONTENT_TYPE_PATTERN: Final = (
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+\-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+\-]{0,126}"
    r"(?:\s*;\s*[A-Za-z0-9!#$&^_.+\-]+=(?:[^;\s\"]+|\"[^\"]*\"))*$"
)
#: ``1.0``/``1.0.x`` (and ``2.0``/``2.0.x``): the spec rejects "anything but 1.0 or 1.0.x".
VERSION_PATTERN: Final = r"^[12]\.0(?:\.[0-9]+)?$"

#: pattern text -> rule id, used to translate ``string_pattern_mismatch``.
PATTERN_RULES: Final[dict[str, str]] = {
    IRI_PATTERN: "iri.scheme",
    MAILTO_PATTERN: "mbox.mailto",
    SHA1_PATTERN: "mbox_sha1sum.hex",
    SHA2_PATTERN: "sha2.hex",
    UUID_PATTERN: "uuid.canonical",
    LANGUAGE_TAG_PATTERN: "language_tag",
    DURATION_PATTERN: "duration.iso8601",
    CONTENT_TYPE_PATTERN: "content_type",
    VERSION_PATTERN: "version",
}

# --- constrained types -------------------------------------------------------------------

IRI = Annotated[str, StringConstraints(pattern=IRI_PATTERN)]
#: An IRL is an IRI that is expected to resolve; syntactically checked as an IRI.
IRL = IRI
MailtoIRI = Annotated[str, StringConstraints(pattern=MAILTO_PATTERN)]
Sha1Hex = Annotated[str, StringConstraints(pattern=SHA1_PATTERN)]
Sha2Hex = Annotated[str, StringConstraints(pattern=SHA2_PATTERN)]
UUIDStr = Annotated[str, StringConstraints(pattern=UUID_PATTERN)]
LanguageTag = Annotated[str, StringConstraints(pattern=LANGUAGE_TAG_PATTERN)]
LanguageMap = dict[LanguageTag, str]
Duration = Annotated[str, StringConstraints(pattern=DURATION_PATTERN)]
ContentType = Annotated[str, StringConstraints(pattern=CONTENT_TYPE_PATTERN)]
VersionStr = Annotated[str, StringConstraints(pattern=VERSION_PATTERN)]
NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]
#: Extension keys are IRIs; values are any JSON, including ``null``.
Extensions = dict[IRI, Any]

# --- timestamps ---------------------------------------------------------------------------

_TIMESTAMP_RE: Final = re.compile(
    r"(?:\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"  # extended format
    r"|\d{8}T\d{2}(?:\d{2}(?:\d{2}(?:[.,]\d+)?)?)?)"  # basic format
    r"(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,
)
_NEGATIVE_ZERO_OFFSETS: Final = frozenset({"-00", "-0000", "-00:00"})


def parse_timestamp(value: Any) -> datetime:
    """Parse an xAPI (ISO 8601) timestamp into an aware :class:`datetime`.

    * Extended (``2024-05-01T10:00:00.123+02:00``) and basic (``20240501T100000Z``)
      calendar date-times are accepted; fractional seconds beyond microseconds are
      truncated.
    * A negative zero offset (``-00``, ``-0000``, ``-00:00``) is rejected
      (rule ``timestamp.offset``): RFC 3339 gives it the meaning "offset unknown",
      which xAPI does not allow.
    * A timestamp *without* a time zone is accepted and interpreted as UTC, under both
      1.0.3 and 2.0. The spec only says a timestamp SHOULD include the time zone, and
      LRSs conventionally read a zone-less timestamp as UTC, so rejecting it would drop
      otherwise valid learner data. The parsed value is therefore always aware.
    """
    if type(value) is not str:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                return value.replace(tzinfo=UTC)
            return value
        if not isinstance(value, str):
            raise PydanticCustomError("type", "a timestamp must be a string")
    match = _TIMESTAMP_RE.fullmatch(value)
    if match is None:
        raise PydanticCustomError(
            "timestamp.format", "'{value}' is not an ISO 8601 date-time", {"value": value}
        )
    tz = match.group("tz")
    if tz is not None and tz[0] == "-" and tz in _NEGATIVE_ZERO_OFFSETS:
        raise PydanticCustomError(
            "timestamp.offset",
            "'{value}' uses a negative zero UTC offset; use 'Z' or '+00:00'",
            {"value": value},
        )
    try:
        parsed = datetime.fromisoformat(value.replace(",", ".") if "," in value else value)
    except ValueError:
        raise PydanticCustomError(
            "timestamp.format", "'{value}' is not a valid date-time", {"value": value}
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


Timestamp = Annotated[datetime, BeforeValidator(parse_timestamp)]

# --- base model -----------------------------------------------------------------------------

IFI_KEYS: Final = ("mbox", "mbox_sha1sum", "openid", "account")


_FIELD_VALIDATOR_WRAPPERS: Final = frozenset({"function-after", "function-before", "function-wrap"})


def _null_free_fields(schema: Any) -> None:
    """Make the optional fields of a model's core schema refuse ``null``.

    An optional xAPI property is modelled as ``X | None = None`` so that "absent" can be
    represented; pydantic turns that into ``default(nullable(X))``, which would accept a JSON
    ``null``. Unwrapping the ``nullable`` keeps the default for an absent property (defaults
    are not validated) while a ``null`` sent is validated against ``X`` inside pydantic-core
    and refused (an error whose input is ``None``: rule ``null_value``, see
    :mod:`shared.xapi.errors`). Wrappers of model validators are walked through.
    """
    while isinstance(schema, dict):
        if schema.get("type") == "model-fields":
            for field in schema["fields"].values():
                inner = field["schema"]
                if inner.get("type") != "default" or "default" not in inner:
                    continue
                if inner["default"] is not None:
                    continue
                # a field validator wraps the nullable: default(function-after(nullable(X)))
                parent = inner
                while parent["schema"].get("type") in _FIELD_VALIDATOR_WRAPPERS:
                    parent = parent["schema"]
                if parent["schema"].get("type") == "nullable":
                    parent["schema"] = parent["schema"]["schema"]
            return
        schema = schema.get("schema")


class XapiModel(BaseModel):
    """Base for every xAPI object: strict, closed, immutable, and ``null``-free.

    ``strict=True`` stops pydantic's lax coercions (``"1"`` -> ``1``, ``1`` -> ``True``),
    which JSON consumers must not apply. JSON ``null`` is rejected for every property
    inside pydantic-core (see :func:`_null_free_fields`: optional properties are modelled as
    ``X | None = None`` so that "absent" is representable, but ``null`` is not accepted).
    Nulls nested in lists / language maps are rejected by the element types themselves;
    extension values may be ``null``.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        strict=True,
        allow_inf_nan=False,
        regex_engine="rust-regex",
        revalidate_instances="never",
    )

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[BaseModel], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        schema = handler(source)
        _null_free_fields(schema)
        return schema


def reject_nulls(data: Any) -> Any:
    """Reject a ``null`` property value of a JSON object (rule ``null_value``).

    For the models whose own pre-checks run before field validation (and must not report
    something else first when a property is ``null``)."""
    if isinstance(data, dict) and None in data.values():
        for key, value in data.items():
            if value is None:
                raise violation("null_value", "null is not allowed here", key)
    return data
