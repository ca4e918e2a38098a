"""Strict xAPI (1.0.3 and 2.0 / IEEE 9274.1.1) statement validation models.

Use :func:`parse_statement` / :func:`parse_statements` with an explicit
:class:`XapiVersion`; failures raise :class:`StatementValidationError`, whose
``violations`` carry a JSON path, a stable rule id and a human-readable message.
"""

from shared.xapi.actors import Account, Actor, Agent, Group, learner_ifi
from shared.xapi.api import (
    parse_statement,
    parse_statements,
    statement_to_dict,
    statement_to_json,
)
from shared.xapi.context import Context, ContextActivities, ContextAgent, ContextGroup
from shared.xapi.errors import StatementValidationError, Violation
from shared.xapi.lenient import LENIENT_RULES, Deviation, Profile, parse_statements_profiled
from shared.xapi.objects import Activity, ActivityDefinition, InteractionComponent, StatementRef
from shared.xapi.primitives import XapiVersion
from shared.xapi.results import Result, Score
from shared.xapi.statement import (
    SIGNATURE_CONTENT_TYPE,
    SIGNATURE_USAGE,
    VOIDED_VERB,
    Attachment,
    Statement,
    SubStatement,
    Verb,
)

__all__ = [
    "LENIENT_RULES",
    "SIGNATURE_CONTENT_TYPE",
    "SIGNATURE_USAGE",
    "VOIDED_VERB",
    "Account",
    "Activity",
    "ActivityDefinition",
    "Actor",
    "Agent",
    "Attachment",
    "Context",
    "ContextActivities",
    "ContextAgent",
    "ContextGroup",
    "Deviation",
    "Group",
    "InteractionComponent",
    "Profile",
    "Result",
    "Score",
    "Statement",
    "StatementRef",
    "StatementValidationError",
    "SubStatement",
    "Verb",
    "Violation",
    "XapiVersion",
    "learner_ifi",
    "parse_statement",
    "parse_statements",
    "parse_statements_profiled",
    "statement_to_dict",
    "statement_to_json",
]
