"""Statement context, including the 2.0-only ``contextAgents`` / ``contextGroups``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, GetCoreSchemaHandler, ValidationInfo, field_validator
from pydantic_core import core_schema

from shared.xapi.actors import Actor, Agent, Group
from shared.xapi.objects import Activity, StatementRef
from shared.xapi.primitives import (
    IRI,
    Extensions,
    LanguageTag,
    UUIDStr,
    XapiModel,
    XapiVersion,
    version_of,
    violation,
)

__all__ = ["Context", "ContextActivities", "ContextAgent", "ContextGroup"]


def _one_or_many(value: Any) -> str:
    return "one" if isinstance(value, dict | Activity) else "many"


def _wrap(activity: Activity) -> list[Activity]:
    return [activity]


class _OneOrMany:
    """contextActivities values may be a single Activity object or a list; the single
    form is normalised to a one-item list *after* validation, so that violation paths
    point into the document as sent (``parent.id``, not ``parent[0].id``)."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        activity = handler.generate_schema(Activity)
        return core_schema.tagged_union_schema(
            {
                "one": core_schema.no_info_after_validator_function(_wrap, activity),
                "many": core_schema.list_schema(activity),
            },
            discriminator=_one_or_many,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda value: value, return_schema=core_schema.list_schema(activity)
            ),
        )


ActivityList = Annotated[list[Activity], _OneOrMany()]


class ContextActivities(XapiModel):
    """Activities related to the statement's object, by relationship."""

    parent: ActivityList | None = None
    grouping: ActivityList | None = None
    category: ActivityList | None = None
    other: ActivityList | None = None


RelevantTypes = Annotated[list[IRI], Field(min_length=1)]


class ContextAgent(XapiModel):
    """xAPI 2.0: an Agent related to the statement, with optional relevant types."""

    object_type: Literal["contextAgent"] = Field(alias="objectType")
    agent: Agent
    relevant_types: RelevantTypes | None = Field(default=None, alias="relevantTypes")


class ContextGroup(XapiModel):
    """xAPI 2.0: a Group related to the statement, with optional relevant types."""

    object_type: Literal["contextGroup"] = Field(alias="objectType")
    group: Group
    relevant_types: RelevantTypes | None = Field(default=None, alias="relevantTypes")


class Context(XapiModel):
    """Context of a statement.

    ``revision`` / ``platform`` are checked against the object type by the statement
    (they are only allowed when the object is an Activity).
    """

    registration: UUIDStr | None = None
    instructor: Actor | None = None
    team: Group | None = None
    context_activities: ContextActivities | None = Field(default=None, alias="contextActivities")
    revision: str | None = None
    platform: str | None = None
    language: LanguageTag | None = None
    statement: StatementRef | None = None
    extensions: Extensions | None = None
    context_agents: list[ContextAgent] | None = Field(default=None, alias="contextAgents")
    context_groups: list[ContextGroup] | None = Field(default=None, alias="contextGroups")

    @field_validator("context_agents", "context_groups", mode="after")
    @classmethod
    def _version_gated(cls, value: list[Any], info: ValidationInfo) -> list[Any]:
        # A field validator runs only when the (2.0-only) property is present: no Python call
        # for the contexts that do not have it.
        if version_of(info) is XapiVersion.V1_0_3:
            name = "contextAgents" if info.field_name == "context_agents" else "contextGroups"
            raise violation("version.v2_only", f"context.{name} exists only in xAPI 2.0")
        return value
