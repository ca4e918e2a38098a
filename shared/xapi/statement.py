"""Statements, SubStatements and Attachments."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import Discriminator, Field, Tag, ValidationInfo, model_validator

from shared.xapi.actors import Actor, Agent, Group
from shared.xapi.context import Context
from shared.xapi.objects import Activity, StatementRef
from shared.xapi.primitives import (
    IRI,
    IRL,
    ContentType,
    LanguageMap,
    Sha2Hex,
    Timestamp,
    UUIDStr,
    VersionStr,
    XapiModel,
    XapiVersion,
    reject_nulls,
    version_of,
    violation,
)
from shared.xapi.results import Result

__all__ = [
    "SIGNATURE_CONTENT_TYPE",
    "SIGNATURE_USAGE",
    "VOIDED_VERB",
    "Attachment",
    "Statement",
    "StatementObject",
    "SubStatement",
    "SubStatementObject",
    "Verb",
]

VOIDED_VERB: Final = "http://adlnet.gov/expapi/verbs/voided"
#: usageType of a JWS statement signature (xAPI 1.0.3 Data 2.6, 2.0 4.4)
SIGNATURE_USAGE: Final = "http://adlnet.gov/expapi/attachments/signature"
SIGNATURE_CONTENT_TYPE: Final = "application/octet-stream"
_SUBSTATEMENT_FORBIDDEN: Final = ("id", "stored", "version", "authority")


class Verb(XapiModel):
    """The action: an IRI plus optional human-readable display."""

    id: IRI
    display: LanguageMap | None = None


class Attachment(XapiModel):
    """Metadata of a statement attachment (the payload itself travels separately)."""

    usage_type: IRI = Field(alias="usageType")
    display: LanguageMap
    description: LanguageMap | None = None
    content_type: ContentType = Field(alias="contentType")
    length: int = Field(ge=0)
    sha2: Sha2Hex
    file_url: IRL | None = Field(default=None, alias="fileUrl")

    @model_validator(mode="after")
    def _signature_type(self) -> Attachment:
        if (
            self.usage_type == SIGNATURE_USAGE
            and self.content_type.split(";", 1)[0].strip().lower() != SIGNATURE_CONTENT_TYPE
        ):
            raise violation(
                "attachment.signature_content_type",
                f"a signature attachment must have contentType {SIGNATURE_CONTENT_TYPE}",
                "contentType",
            )
        return self


def _object_tag(value: Any) -> str:
    """objectType of a statement object; a missing (or null) objectType means Activity."""
    if type(value) is dict or isinstance(value, dict):
        tag = value.get("objectType")
        return tag if isinstance(tag, str) else "Activity"
    if isinstance(value, XapiModel):
        return type(value).__name__
    return "Activity"


SubStatementObject = Annotated[
    Annotated[Activity, Tag("Activity")]
    | Annotated[Agent, Tag("Agent")]
    | Annotated[Group, Tag("Group")]
    | Annotated[StatementRef, Tag("StatementRef")],
    Discriminator(_object_tag),
]


def _check_context_against_object(context: Context | None, obj: object) -> None:
    """``context.revision`` / ``context.platform`` only make sense for Activity objects."""
    if context is None or isinstance(obj, Activity):
        return
    for key in ("revision", "platform"):
        if getattr(context, key) is not None:
            raise violation(
                "context.activity_only",
                f"context.{key} is only allowed when the object is an Activity",
                "context",
                key,
            )


def _require_object_type(obj: Agent | Group | object) -> None:
    if isinstance(obj, Agent) and obj.object_type is None:
        raise violation(
            "object.object_type",
            "an Agent used as an object must carry objectType 'Agent'",
            "object",
            "objectType",
        )


class SubStatement(XapiModel):
    """A statement nested as an object; it has no id/stored/version/authority and cannot
    itself contain a SubStatement."""

    object_type: Literal["SubStatement"] = Field(alias="objectType")
    actor: Actor
    verb: Verb
    object: SubStatementObject
    result: Result | None = None
    context: Context | None = None
    timestamp: Timestamp | None = None
    attachments: list[Attachment] | None = None

    @model_validator(mode="before")
    @classmethod
    def _reject_nulls(cls, data: Any) -> Any:
        data = reject_nulls(data)
        if isinstance(data, dict):
            for key in _SUBSTATEMENT_FORBIDDEN:
                if key in data:
                    raise violation(
                        "substatement.forbidden_property",
                        f"a SubStatement must not have '{key}'",
                        key,
                    )
            obj = data.get("object")
            if isinstance(obj, dict) and obj.get("objectType") == "SubStatement":
                raise violation(
                    "substatement.nested",
                    "a SubStatement must not contain another SubStatement",
                    "object",
                    "objectType",
                )
        return data

    @model_validator(mode="after")
    def _cross_field(self) -> SubStatement:
        obj = self.object
        if not isinstance(obj, Activity):
            _require_object_type(obj)
            _check_context_against_object(self.context, obj)
        return self


StatementObject = Annotated[
    Annotated[Activity, Tag("Activity")]
    | Annotated[Agent, Tag("Agent")]
    | Annotated[Group, Tag("Group")]
    | Annotated[StatementRef, Tag("StatementRef")]
    | Annotated[SubStatement, Tag("SubStatement")],
    Discriminator(_object_tag),
]


class Statement(XapiModel):
    """An xAPI statement.

    ``timestamp`` and ``stored`` are always timezone-aware; a timestamp sent without a
    zone is read as UTC (see :func:`shared.xapi.primitives.parse_timestamp`).
    """

    id: UUIDStr | None = None
    actor: Actor
    verb: Verb
    object: StatementObject
    result: Result | None = None
    context: Context | None = None
    timestamp: Timestamp | None = None
    stored: Timestamp | None = None
    authority: Actor | None = None
    version: VersionStr | None = None
    attachments: list[Attachment] | None = None

    @model_validator(mode="after")
    def _cross_field(self, info: ValidationInfo) -> Statement:
        if self.verb.id == VOIDED_VERB and not isinstance(self.object, StatementRef):
            raise violation(
                "voided.object",
                "a voiding statement (verb voided) must have a StatementRef object",
                "object",
            )
        obj = self.object
        if not isinstance(obj, Activity):  # both checks pass for an Activity (the usual object)
            _require_object_type(obj)
            _check_context_against_object(self.context, obj)
        if isinstance(self.authority, Group):
            members = self.authority.member or []
            if not self.authority.is_anonymous or len(members) != 2:
                raise violation(
                    "authority.oauth_group",
                    "a Group authority must be an anonymous Group of exactly two Agents "
                    "(OAuth consumer and user)",
                    "authority",
                )
        if (
            self.version is not None
            and not self.version.startswith("1.0")
            and version_of(info) is XapiVersion.V1_0_3
        ):
            raise violation(
                "version", "version must be 1.0 or 1.0.x for xAPI 1.0.3 statements", "version"
            )
        return self
