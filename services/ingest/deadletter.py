"""Dead-lettering the raw records the Kafka intake refuses (:mod:`services.ingest.intake`).

A dead-letter is JSON ``{reason, rule, violations, tenant, source: {topic, partition, offset},
original: base64, original_size, original_truncated, at}`` on ``xapi.deadletter``, keyed like
the raw record. ``original`` holds at most the first :data:`DEADLETTER_ORIGINAL_BUDGET` bytes of
the record (``original_truncated`` says whether it was cut; ``original_size`` is the full size),
so a dead-letter always fits in what the producer may send. Retriable send failures are retried
(those records only); a permanent one is logged, counted (``deadletter_failures``) and skipped.
``python -m tools.deadletters`` reads them back.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer, ConsumerRecord

from services.ingest.metrics import IngestMetrics
from shared.errors import is_retriable
from shared.xapi import Violation

log = logging.getLogger(__name__)

#: most bytes of the original record a dead-letter carries (base64: 4/3 of it)
DEADLETTER_ORIGINAL_BUDGET = 256 * 1024


@dataclass(frozen=True)
class Rejected:
    record: ConsumerRecord[Any, Any]
    reason: str
    rule: str
    violations: Sequence[Violation] = ()


def deadletter_body(rejected: Rejected, tenant: str | None) -> bytes:
    rec = rejected.record
    original = rec.value or b""
    return orjson.dumps(
        {
            "reason": rejected.reason,
            "rule": rejected.rule,
            "violations": [
                {"path": v.path, "rule": v.rule, "message": v.message} for v in rejected.violations
            ],
            "tenant": tenant,
            "source": {"topic": rec.topic, "partition": rec.partition, "offset": rec.offset},
            "original": base64.b64encode(original[:DEADLETTER_ORIGINAL_BUDGET]).decode(),
            "original_size": len(original),
            "original_truncated": len(original) > DEADLETTER_ORIGINAL_BUDGET,
            "at": datetime.now(UTC).isoformat(),
        }
    )


class DeadLetters:
    """Produces the dead-letters of refused records, one polled batch at a time."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        metrics: IngestMetrics,
        pause: Callable[[int], Awaitable[None]],
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._metrics = metrics
        self._pause = pause  # the wait before retry number ``attempt``

    async def send(self, tenant: str | None, rejected: list[Rejected]) -> None:
        """Produce the dead-letters; retriable failures are retried (those records only),
        a permanent failure is logged and counted, and that record is skipped."""
        label = tenant or "unknown"
        pending = list(rejected)
        attempt = 0
        while pending:
            retry: list[Rejected] = []
            sent: list[tuple[Rejected, asyncio.Future[Any]]] = []
            outcomes: dict[int, BaseException | None] = {}
            for r in pending:
                try:
                    future = await self._producer.send(
                        self._topic, deadletter_body(r, tenant), key=r.record.key
                    )
                except Exception as exc:  # noqa: BLE001 - sorted out below
                    outcomes[id(r)] = exc
                else:
                    sent.append((r, future))
            results = await asyncio.gather(*(f for _, f in sent), return_exceptions=True)
            for (r, _), result in zip(sent, results, strict=True):
                outcomes[id(r)] = result if isinstance(result, BaseException) else None
            for r in pending:
                failure = outcomes[id(r)]
                if failure is None:
                    self._sent(label, r)
                elif isinstance(failure, Exception) and is_retriable(failure):
                    retry.append(r)
                elif isinstance(failure, Exception):
                    self._failed(label, r, failure)
                else:
                    raise failure  # cancellation
            pending = retry
            if pending:
                attempt += 1
                await self._pause(attempt)

    def _sent(self, label: str, r: Rejected) -> None:
        self._metrics.deadletters.labels(label, r.rule).inc()
        self._metrics.rejected.labels(label, "kafka", r.rule).inc()
        log.info("raw record dead-lettered", extra=_log_fields(label, r))

    def _failed(self, label: str, r: Rejected, failure: Exception) -> None:
        self._metrics.deadletter_failures.labels(label, r.rule).inc()
        self._metrics.rejected.labels(label, "kafka", r.rule).inc()
        log.error(
            "raw record refused but its dead-letter could not be produced; skipping it",
            extra={**_log_fields(label, r), "error": f"{type(failure).__name__}: {failure}"[:300]},
        )


def _log_fields(label: str, r: Rejected) -> dict[str, Any]:
    """Where a refused record came from, for the log (no learner identifiers)."""
    rec = r.record
    return {
        "tenant": label,
        "rule": r.rule,
        "topic": rec.topic,
        "partition": rec.partition,
        "offset": rec.offset,
    }
