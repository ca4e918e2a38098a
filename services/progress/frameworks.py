"""Competency frameworks: parsing files, resolving cohort learners, and the in-memory registry.

A tenant has one line of framework versions. Each version applies from its ``effective_from``
(event time) on, so a statement is always interpreted with the version in effect when it
happened: loading a new version changes what later statements mean, never what earlier ones
meant, and a replay of history gives the same result. Stored versions are immutable: loading
the same ``(tenant, framework, version)`` with other content is refused.

Pure code: parsing and lookups. The repository stores documents; the registry is refreshed from
it by the service (:class:`RegistryRefresher` in ``app.py``).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from services.progress.mapping import FrameworkIndex
from services.progress.mastery import BktModel, EloModel, model_for
from shared.framework import Framework, ref_to_key


def document_of(framework: Framework) -> dict[str, Any]:
    return framework.model_dump(mode="json")


def content_hash(framework: Framework) -> str:
    canonical = orjson.dumps(document_of(framework), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


@dataclass(frozen=True)
class Membership:
    programme: str
    business_unit: str
    cohort: str


@dataclass(frozen=True)
class FrameworkVersion:
    """One loaded version, indexed for per-event use."""

    framework: Framework
    index: FrameworkIndex
    models: dict[str, BktModel | EloModel]
    members: dict[str, Membership]  # learner key -> first programme listing them

    @classmethod
    def build(cls, framework: Framework, salt: str) -> FrameworkVersion:
        models = {c.id: model_for(framework, c.id) for c in framework.competencies}
        members: dict[str, Membership] = {}
        for p in framework.programmes:
            for cohort in p.cohorts:
                for ref in cohort.learners:
                    members.setdefault(
                        ref_to_key(ref, salt), Membership(p.id, p.business_unit, cohort.id)
                    )
        return cls(framework, FrameworkIndex.of(framework), models, members)

    @property
    def effective_from(self) -> datetime:
        return self.framework.effective_from


@dataclass
class FrameworkRegistry:
    """Framework versions per tenant, ordered by ``effective_from``."""

    salt: str
    _versions: dict[str, list[FrameworkVersion]] = field(default_factory=dict)
    _starts: dict[str, list[datetime]] = field(default_factory=dict)
    fingerprint: object = None  # what the repository said last time (to skip unchanged reloads)

    def replace_all(self, frameworks: Iterable[Framework]) -> None:
        versions: dict[str, list[FrameworkVersion]] = {}
        for fw in frameworks:
            versions.setdefault(fw.tenant, []).append(FrameworkVersion.build(fw, self.salt))
        for items in versions.values():
            items.sort(key=lambda v: v.effective_from)
        self._versions = versions
        # the same instants with the ``UTC`` tzinfo the worker's event times carry: comparing
        # aware times whose tzinfo objects differ (pydantic's) asks both for their offsets
        self._starts = {
            t: [v.effective_from.astimezone(UTC) for v in vs] for t, vs in versions.items()
        }

    def at(self, tenant: str, when: datetime) -> FrameworkVersion | None:
        """The version of ``tenant``'s framework in effect at event time ``when``, if any."""
        starts = self._starts.get(tenant)
        if not starts:
            return None
        i = bisect.bisect_right(starts, when)
        return self._versions[tenant][i - 1] if i else None

    def tenants(self) -> Sequence[str]:
        return sorted(self._versions)

    def count(self) -> int:
        return sum(len(v) for v in self._versions.values())
