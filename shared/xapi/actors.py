"""Agents, Groups and Accounts, plus the actor unions and :func:`learner_ifi`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from shared.xapi.primitives import (
    IFI_KEYS,
    IRI,
    IRL,
    MailtoIRI,
    NonEmptyStr,
    Sha1Hex,
    XapiModel,
    reject_nulls,
    violation,
)

__all__ = [
    "Account",
    "Actor",
    "Agent",
    "Group",
    "learner_ifi",
]


class Account(XapiModel):
    """An account on an existing system (e.g. an LMS): ``homePage`` + ``name``."""

    home_page: IRL = Field(alias="homePage")
    name: NonEmptyStr


class _Identified(XapiModel):
    """Common inverse functional identifier (IFI) fields of Agents and Groups."""

    name: str | None = None
    mbox: MailtoIRI | None = None
    mbox_sha1sum: Sha1Hex | None = None
    openid: IRI | None = None
    account: Account | None = None

    def ifi_count(self) -> int:
        # Spelled out (not a generator over IFI_KEYS): this runs for every actor.
        return (
            (self.mbox is not None)
            + (self.mbox_sha1sum is not None)
            + (self.openid is not None)
            + (self.account is not None)
        )

    def ifi_keys(self) -> list[str]:
        return [key for key in IFI_KEYS if getattr(self, key) is not None]


class Agent(_Identified):
    """An individual: exactly one IFI; ``objectType`` optional (``"Agent"``)."""

    object_type: Literal["Agent"] | None = Field(default=None, alias="objectType")

    @model_validator(mode="after")
    def _exactly_one_ifi(self) -> Agent:
        # Inlined ifi_count (runs for every Agent; a method call costs as much as the test).
        count = (
            (self.mbox is not None)
            + (self.mbox_sha1sum is not None)
            + (self.openid is not None)
            + (self.account is not None)
        )
        if count == 1:
            return self
        if count == 0:
            raise violation(
                "ifi.exactly_one",
                "an Agent must have exactly one of mbox, mbox_sha1sum, openid, account "
                "(found none)",
            )
        if count > 1:
            raise violation(
                "ifi.exactly_one",
                "an Agent must have exactly one of mbox, mbox_sha1sum, openid, account "
                "(this one is extra)",
                self.ifi_keys()[1],
            )
        return self


class Group(_Identified):
    """A Group: identified (exactly one IFI, optional members) or anonymous
    (no IFI, a non-empty ``member`` list of Agents). ``objectType`` is required."""

    object_type: Literal["Group"] = Field(alias="objectType")
    member: list[Agent] | None = None

    @model_validator(mode="before")
    @classmethod
    def _reject_nulls(cls, data: Any) -> Any:
        # Overrides the base validator (one Python call per Group, not two).
        data = reject_nulls(data)
        if isinstance(data, dict):
            members = data.get("member")
            if isinstance(members, list):
                for index, member in enumerate(members):
                    if isinstance(member, dict) and member.get("objectType") == "Group":
                        raise violation(
                            "group.member_agent",
                            "a Group's members must be Agents, not Groups",
                            "member",
                            index,
                            "objectType",
                        )
        return data

    @model_validator(mode="after")
    def _ifi_rules(self) -> Group:
        count = self.ifi_count()
        if count > 1:
            raise violation(
                "ifi.exactly_one",
                "an identified Group must have exactly one of mbox, mbox_sha1sum, openid, account",
                self.ifi_keys()[1],
            )
        if count == 0 and not self.member:
            raise violation(
                "group.anonymous_member",
                "an anonymous Group (no identifier) must list its Agents in 'member'",
                "member",
            )
        return self

    @property
    def is_anonymous(self) -> bool:
        return self.ifi_count() == 0


def _actor_tag(value: Any) -> str:
    if type(value) is dict or isinstance(value, dict):
        tag = value.get("objectType")
        return tag if isinstance(tag, str) else "Agent"
    if isinstance(value, Group):
        return "Group"
    return "Agent"


#: Statement actor / instructor / authority: objectType defaults to Agent.
Actor = Annotated[
    Annotated[Agent, Tag("Agent")] | Annotated[Group, Tag("Group")],
    Discriminator(_actor_tag),
]


def learner_ifi(actor: Agent | Group) -> tuple[str, str]:
    """The (kind, normalised value) of an Agent's / identified Group's IFI.

    * ``mbox``: the whole IRI lower-cased (``mailto:`` included);
    * ``mbox_sha1sum``: lower-case hex;
    * ``openid``: as given;
    * ``account``: ``"{homePage}|{name}"`` with trailing slashes of homePage stripped.

    Raises :class:`ValueError` for an anonymous Group, which has no IFI.
    """
    if actor.mbox is not None:
        return "mbox", actor.mbox.lower()
    if actor.mbox_sha1sum is not None:
        return "mbox_sha1sum", actor.mbox_sha1sum.lower()
    if actor.openid is not None:
        return "openid", actor.openid
    if actor.account is not None:
        return "account", f"{actor.account.home_page.rstrip('/')}|{actor.account.name}"
    raise ValueError("an anonymous Group has no inverse functional identifier")
