"""Activities (with definitions and interaction components) and Statement References."""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import Field, model_validator

from shared.xapi.primitives import (
    IFI_KEYS,
    IRI,
    IRL,
    Extensions,
    LanguageMap,
    NonEmptyStr,
    UUIDStr,
    XapiModel,
    reject_nulls,
    violation,
)

__all__ = [
    "INTERACTION_COMPONENTS",
    "Activity",
    "ActivityDefinition",
    "InteractionComponent",
    "InteractionType",
    "StatementRef",
]

InteractionType = Literal[
    "true-false",
    "choice",
    "fill-in",
    "long-fill-in",
    "matching",
    "performance",
    "sequencing",
    "likert",
    "numeric",
    "other",
]

#: interactionType -> the interaction component lists it may carry.
INTERACTION_COMPONENTS: Final[dict[str, frozenset[str]]] = {
    "true-false": frozenset(),
    "choice": frozenset({"choices"}),
    "fill-in": frozenset(),
    "long-fill-in": frozenset(),
    "matching": frozenset({"source", "target"}),
    "performance": frozenset({"steps"}),
    "sequencing": frozenset({"choices"}),
    "likert": frozenset({"scale"}),
    "numeric": frozenset(),
    "other": frozenset(),
}
_COMPONENT_LISTS: Final = ("choices", "scale", "source", "target", "steps")


class InteractionComponent(XapiModel):
    """One choice / scale point / source / target / step of an interaction."""

    id: NonEmptyStr
    description: LanguageMap | None = None


class ActivityDefinition(XapiModel):
    """Metadata of an Activity, including cmi.interaction properties."""

    name: LanguageMap | None = None
    description: LanguageMap | None = None
    type: IRI | None = None
    more_info: IRL | None = Field(default=None, alias="moreInfo")
    interaction_type: InteractionType | None = Field(default=None, alias="interactionType")
    correct_responses_pattern: list[str] | None = Field(
        default=None, alias="correctResponsesPattern"
    )
    choices: list[InteractionComponent] | None = None
    scale: list[InteractionComponent] | None = None
    source: list[InteractionComponent] | None = None
    target: list[InteractionComponent] | None = None
    steps: list[InteractionComponent] | None = None
    extensions: Extensions | None = None

    @model_validator(mode="after")
    def _interaction_rules(self) -> ActivityDefinition:
        if (
            self.interaction_type is None
            and self.correct_responses_pattern is None
            and self.choices is None
            and self.scale is None
            and self.source is None
            and self.target is None
            and self.steps is None
        ):
            return self
        present = [key for key in _COMPONENT_LISTS if getattr(self, key) is not None]
        if self.interaction_type is None:
            if self.correct_responses_pattern is not None:
                raise violation(
                    "interaction.components",
                    "correctResponsesPattern requires an interactionType",
                    "correctResponsesPattern",
                )
            if present:
                raise violation(
                    "interaction.components",
                    "interaction components require an interactionType",
                    present[0],
                )
            return self
        allowed = INTERACTION_COMPONENTS[self.interaction_type]
        for key in present:
            if key not in allowed:
                raise _component_not_allowed(key, self.interaction_type)
        # Interaction component ids must be distinct within each list.
        for key in present:
            components: list[InteractionComponent] = getattr(self, key)
            seen: set[str] = set()
            for index, component in enumerate(components):
                if component.id in seen:
                    raise violation(
                        "interaction.component_id_unique",
                        f"interaction component ids must be unique within '{key}'",
                        key,
                        index,
                        "id",
                    )
                seen.add(component.id)
        return self


def _component_not_allowed(key: str, interaction_type: str) -> Exception:
    allowed = sorted(INTERACTION_COMPONENTS[interaction_type]) or ["none"]
    return violation(
        "interaction.components",
        f"'{key}' is not allowed for interactionType '{interaction_type}' "
        f"(allowed: {', '.join(allowed)})",
        key,
    )


class Activity(XapiModel):
    """An Activity; ``objectType`` may be omitted (it is the default object type)."""

    object_type: Literal["Activity"] | None = Field(default=None, alias="objectType")
    id: IRI
    definition: ActivityDefinition | None = None

    @model_validator(mode="before")
    @classmethod
    def _reject_nulls(cls, data: Any) -> Any:
        # Nulls are refused by the field types (XapiModel); they are checked here only
        # on the rare path below, so that a null still is what gets reported first.
        if isinstance(data, dict) and "id" not in data and "objectType" not in data:
            reject_nulls(data)
            for key in IFI_KEYS:
                if key in data:
                    raise violation(
                        "object.object_type",
                        "an Agent or Group used as an object must carry objectType",
                        "objectType",
                    )
        return data


class StatementRef(XapiModel):
    """A pointer to another Statement by its UUID."""

    object_type: Literal["StatementRef"] = Field(alias="objectType")
    id: UUIDStr
