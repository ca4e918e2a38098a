"""Realistic xAPI statements (LMS style) and helpers to mutate them and check the result."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shared.xapi import StatementValidationError, XapiVersion, parse_statement

JsonPath = tuple[str | int, ...]

LMS = "https://lms.example.edu"
COURSE = f"{LMS}/course/8213"
QUIZ = f"{COURSE}/quiz/44"
QUESTION = f"{QUIZ}/question/3"
REGISTRATION = "0f1e9c2a-7d44-4c1b-9a6e-5b2f0c3d4e5f"

LEARNER: dict[str, Any] = {
    "objectType": "Agent",
    "name": "Ada Lovelace",
    "account": {"homePage": LMS, "name": "u-10442"},
}
VERB_ANSWERED: dict[str, Any] = {
    "id": "http://adlnet.gov/expapi/verbs/answered",
    "display": {"en-US": "answered"},
}

CHOICE_QUESTION: dict[str, Any] = {
    "objectType": "Activity",
    "id": QUESTION,
    "definition": {
        "name": {"en-US": "Which gas do plants absorb?"},
        "description": {"en-US": "Photosynthesis, question 3"},
        "type": "http://adlnet.gov/expapi/activities/cmi.interaction",
        "interactionType": "choice",
        "correctResponsesPattern": ["co2"],
        "choices": [
            {"id": "o2", "description": {"en-US": "Oxygen"}},
            {"id": "co2", "description": {"en-US": "Carbon dioxide"}},
            {"id": "n2", "description": {"en-US": "Nitrogen", "fr-FR": "Azote"}},
        ],
    },
}

ANSWERED: dict[str, Any] = {
    "id": "6690e6c9-3ef0-4ed3-8b37-7f3964730bee",
    "actor": LEARNER,
    "verb": VERB_ANSWERED,
    "object": CHOICE_QUESTION,
    "result": {
        "score": {"scaled": 1.0, "raw": 1, "min": 0, "max": 1},
        "success": True,
        "completion": True,
        "response": "co2",
        "duration": "PT42.5S",
    },
    "context": {
        "registration": REGISTRATION,
        "contextActivities": {
            "parent": [{"id": QUIZ, "objectType": "Activity"}],
            "grouping": [{"id": COURSE}],
            "category": [{"id": "https://w3id.org/xapi/cmi5/context/categories/moveon"}],
        },
        "platform": "Moodle 4.3",
        "language": "en-US",
        "extensions": {f"{LMS}/xapi/ext/attempt": 2, f"{LMS}/xapi/ext/note": None},
    },
    "timestamp": "2024-05-02T09:15:27.341+02:00",
    "version": "1.0.3",
}

COMPLETED: dict[str, Any] = {
    "actor": {"mbox": "mailto:grace.hopper@example.edu", "name": "Grace Hopper"},
    "verb": {
        "id": "http://adlnet.gov/expapi/verbs/completed",
        "display": {"en-US": "completed", "de-DE": "abgeschlossen"},
    },
    "object": {
        "id": f"{COURSE}/module/2",
        "definition": {
            "name": {"en-US": "Module 2: Cells"},
            "type": "http://adlnet.gov/expapi/activities/module",
            "moreInfo": f"{COURSE}/module/2/about",
        },
    },
    "result": {
        "score": {"scaled": 0.83, "raw": 83, "min": 0, "max": 100},
        "success": True,
        "completion": True,
        "duration": "PT1H12M3S",
    },
    "context": {
        "registration": REGISTRATION,
        "instructor": {"mbox_sha1sum": "ebd31e95054c018b10727ccffd2ef2ec3a016ee9"},
        "contextActivities": {"parent": {"id": COURSE}},
    },
    "timestamp": "2024-05-02T10:00:00Z",
    "stored": "2024-05-02T10:00:01.002Z",
    "authority": {
        "objectType": "Group",
        "member": [
            {"account": {"homePage": "https://oauth.example.edu", "name": "lms-client"}},
            {"mbox": "mailto:registrar@example.edu"},
        ],
    },
}

ATTENDED: dict[str, Any] = {
    "actor": {
        "objectType": "Group",
        "name": "Lab group B",
        "member": [
            {"account": {"homePage": LMS, "name": "u-1"}},
            {"account": {"homePage": LMS, "name": "u-2"}},
        ],
    },
    "verb": {"id": "http://adlnet.gov/expapi/verbs/attended", "display": {"en": "attended"}},
    "object": {
        "id": f"{COURSE}/session/2024-05-03",
        "definition": {"type": "http://adlnet.gov/expapi/activities/meeting"},
    },
    "context": {
        "instructor": {"objectType": "Agent", "openid": "https://id.example.edu/t/77"},
        "team": {"objectType": "Group", "account": {"homePage": LMS, "name": "group-b"}},
        "contextActivities": {"grouping": [{"id": COURSE}]},
        "revision": "2",
    },
    "timestamp": "20240503T140000+0100",
}

VOIDING: dict[str, Any] = {
    "actor": {"account": {"homePage": LMS, "name": "admin"}},
    "verb": {"id": "http://adlnet.gov/expapi/verbs/voided", "display": {"en-US": "voided"}},
    "object": {"objectType": "StatementRef", "id": "6690e6c9-3ef0-4ed3-8b37-7f3964730bee"},
}

SUBSTATEMENT: dict[str, Any] = {
    "actor": LEARNER,
    "verb": {"id": "http://adlnet.gov/expapi/verbs/planned"},
    "object": {
        "objectType": "SubStatement",
        "actor": LEARNER,
        "verb": {"id": "http://adlnet.gov/expapi/verbs/attended"},
        "object": {"id": f"{COURSE}/session/2024-06-01"},
        "context": {"contextActivities": {"parent": [{"id": COURSE}]}},
        "timestamp": "2024-06-01T09:00:00+00:00",
    },
}

WITH_ATTACHMENT: dict[str, Any] = {
    "actor": LEARNER,
    "verb": {"id": "http://adlnet.gov/expapi/verbs/attempted"},
    "object": {"id": f"{COURSE}/essay/1"},
    "attachments": [
        {
            "usageType": "http://adlnet.gov/expapi/attachments/signature",
            "display": {"en-US": "Signature"},
            "description": {"en-US": "Signed by the learner"},
            "contentType": "application/octet-stream",
            "length": 4235,
            "sha2": "672fa5fa658017f1b72d65036f13379c6ab05d4ab3b6664908d8acf0b6a0c634",
            "fileUrl": "https://files.example.edu/sig/1",
        }
    ],
}

V2_CONTEXT_AGENTS: dict[str, Any] = {
    "actor": LEARNER,
    "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
    "object": {"id": f"{COURSE}/video/7"},
    "context": {
        "contextAgents": [
            {
                "objectType": "contextAgent",
                "agent": {"mbox": "mailto:mentor@example.edu"},
                "relevantTypes": ["https://example.edu/roles/mentor"],
            }
        ],
        "contextGroups": [
            {
                "objectType": "contextGroup",
                "group": {"objectType": "Group", "account": {"homePage": LMS, "name": "cohort-9"}},
            }
        ],
    },
    "version": "2.0.0",
}

REALISTIC_1_0_3: dict[str, dict[str, Any]] = {
    "answered": ANSWERED,
    "completed": COMPLETED,
    "attended": ATTENDED,
    "voiding": VOIDING,
    "substatement": SUBSTATEMENT,
    "attachment": WITH_ATTACHMENT,
}


def with_value(doc: dict[str, Any], path: JsonPath, value: Any) -> dict[str, Any]:
    """A deep copy of ``doc`` with ``value`` set at ``path``."""
    out = copy.deepcopy(doc)
    node: Any = out
    for segment in path[:-1]:
        node = node[segment]
    node[path[-1]] = value
    return out


def without(doc: dict[str, Any], path: JsonPath) -> dict[str, Any]:
    """A deep copy of ``doc`` with the property at ``path`` removed."""
    out = copy.deepcopy(doc)
    node: Any = out
    for segment in path[:-1]:
        node = node[segment]
    del node[path[-1]]
    return out


#: marker for a table case: delete the property instead of setting it
DEL: Any = object()


def apply_change(doc: dict[str, Any], path: JsonPath, value: Any) -> dict[str, Any]:
    """``without`` when value is :data:`DEL`, else ``with_value``."""
    return without(doc, path) if value is DEL else with_value(doc, path, value)


def assert_violation(
    base: dict[str, Any],
    path: JsonPath,
    value: Any,
    version: XapiVersion,
    where: str,
    rule: str,
) -> None:
    """The valid ``base`` changed at ``path`` must fail with ``rule`` at ``where``."""
    # The unmodified base must be valid, so the violation is caused by the change.
    parse_statement(base, version=XapiVersion.V2_0)
    with pytest.raises(StatementValidationError) as caught:
        parse_statement(apply_change(base, path, value), version=version)
    found = [(v.path, v.rule) for v in caught.value.violations]
    assert (where, rule) in found
    assert all(v.message and rule in str(v) for v in caught.value.violations if v.rule == rule)
