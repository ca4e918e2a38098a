"""The error hierarchy every service builds on.

Two families decide what happens to a message or request that failed:

* :class:`RetriableError` - the world is temporarily unhelpful (broker or database unreachable,
  a serialisation conflict, a timeout). Retry with backoff; never dead-letter for this alone.
* :class:`PermanentError` - the input itself is wrong (invalid JSON, unknown schema version, a
  statement that breaks the xAPI rules). Retrying cannot help: dead-letter it with the reason,
  or answer 4xx.

:func:`is_retriable` classifies third-party exceptions (asyncpg, aiokafka, OS errors) as well.
"""

from __future__ import annotations

import asyncio


class SkillstreamError(Exception):
    """Base of every error raised on purpose by Skillstream code."""


class RetriableError(SkillstreamError):
    """A failure that may succeed if tried again later."""


class PermanentError(SkillstreamError):
    """A failure that will fail the same way every time: dead-letter or reject it."""

    #: a short, stable machine-readable reason (used as dead-letter reason and metric label)
    reason: str = "permanent"


class ConfigError(PermanentError):
    """The configuration is unusable (bad value, missing secret)."""

    reason = "config"


class InvalidMessageError(PermanentError):
    """A message that cannot be decoded or does not match its schema."""

    reason = "invalid_message"


class UnknownSchemaError(InvalidMessageError):
    """An envelope whose ``schema`` name or version this reader does not know."""

    reason = "unknown_schema"


class DependencyUnavailableError(RetriableError):
    """A server this service needs (Kafka, PostgreSQL, a webhook) did not answer."""


class MigrationError(PermanentError):
    """A migration file is malformed, destructive, or was changed after being applied."""

    reason = "migration"


# Names of third-party exception classes that mean "try again later". Matched by name along the
# MRO so this module needs neither asyncpg nor aiokafka imported to classify their errors.
_RETRIABLE_NAMES = frozenset(
    {
        # asyncpg
        "PostgresConnectionError",
        "ConnectionDoesNotExistError",
        "CannotConnectNowError",
        "TooManyConnectionsError",
        "SerializationError",
        "DeadlockDetectedError",
        "InterfaceError",
        "AdminShutdownError",
        "CrashShutdownError",
        "QueryCanceledError",
        # aiokafka
        "KafkaConnectionError",
        "KafkaTimeoutError",
        "RequestTimedOutError",
        "NotLeaderForPartitionError",
        "LeaderNotAvailableError",
        "NodeNotReadyError",
        "CoordinatorNotAvailableError",
        "NotCoordinatorError",
    }
)


def is_retriable(exc: BaseException) -> bool:
    """True when ``exc`` is worth retrying; False when it is permanent or unknown.

    Unknown exceptions count as permanent: a bug must surface (dead-letter with its reason),
    not loop forever.
    """
    if isinstance(exc, RetriableError):
        return True
    if isinstance(exc, PermanentError):
        return False
    if isinstance(exc, (ConnectionError, TimeoutError, asyncio.TimeoutError)):
        return True
    if getattr(exc, "retriable", False) is True:  # aiokafka marks its transient errors this way
        return True
    return any(cls.__name__ in _RETRIABLE_NAMES for cls in type(exc).__mro__)
