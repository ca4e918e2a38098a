"""Kafka intake: statements that LMSs produce to ``xapi.raw.<tenant>``.

* One consumer subscribed by pattern (``Topics.raw_pattern``); the tenant is the topic's
  suffix, so Kafka ACLs on topic prefixes isolate tenants. New raw topics are picked up
  within ``intake_metadata_max_age_ms``.
* A record holds one statement or an array. Its xAPI version comes from a record header
  ``X-Experience-API-Version`` (same values as over HTTP); without one, ``raw_default_version``
  (2.0.0) applies.
* Statements without an id get ``uuid5(topic|partition|offset|index)``: a replayed record
  yields the same ids, so it adds no row and no event (the archive is idempotent by id).
* The tenant's validation profile applies (``strict``, or ``lenient``: documented deviations
  repaired and recorded on the archive row, see ``shared.xapi.lenient``).
* Valid records are archived (and queued in the outbox, which publishes them) in one
  transaction per polled batch and tenant (one multi-row insert); offsets are committed, all
  partitions in one request, only after that transaction commits (and after dead-letters are
  acked). While a batch is archived the next one is fetched and validated (one batch in
  flight, archived and committed in order). An invalid record, or one whose id is stored with
  other content, goes to ``xapi.deadletter`` with the reason, the source and the original
  (:mod:`services.ingest.deadletter`) and the partition moves on.
* A record whose parsing fails unexpectedly (a bug, not a rule) is dead-lettered with reason
  ``unexpected`` rather than stalling its partition.
* Database or broker unavailable: the batch is retried with back-off, nothing is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from services.ingest.archive import Archive
from services.ingest.canonical import utc_ms
from services.ingest.config import IngestSettings
from services.ingest.deadletter import DeadLetters, Rejected
from services.ingest.errors import IngestError
from services.ingest.handlers import (
    VERSION_HEADER,
    Prepared,
    authority_for,
    parse_version,
    prepare,
    raw_statement_id,
)
from services.ingest.metrics import IngestMetrics
from services.ingest.profiles import TenantProfiles
from shared.errors import is_retriable
from shared.kafka import Topics, kafka_consumer
from shared.xapi import (
    Profile,
    StatementValidationError,
    Violation,
    XapiVersion,
    parse_statements_profiled,
)

log = logging.getLogger(__name__)

RAW_AUTHORITY_NAME = "kafka-intake"
#: records validated between two yields to the event loop
_YIELD_EVERY = 200


@dataclass
class _Polled:
    """One polled batch, validated: the accepted records by tenant, the refused ones, and the
    offsets to commit once both are dealt with."""

    good: dict[str, list[tuple[ConsumerRecord[Any, Any], list[Prepared]]]] = field(
        default_factory=dict
    )
    rejected: list[Rejected] = field(default_factory=list)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)


def record_version(record: ConsumerRecord[Any, Any], default: XapiVersion) -> XapiVersion:
    for key, value in record.headers or ():
        if key.lower() == VERSION_HEADER.lower():
            return parse_version(value.decode("utf-8", "replace") if value else None)
    return default


class RawIntake:
    def __init__(
        self,
        settings: IngestSettings,
        archive: Archive,
        producer: AIOKafkaProducer,
        topics: Topics,
        metrics: IngestMetrics,
        *,
        profiles: TenantProfiles | None = None,
    ) -> None:
        self._settings = settings
        self._archive = archive
        self._deadletters = DeadLetters(producer, topics.deadletter, metrics, self._pause)
        self._topics = topics
        self._metrics = metrics
        self._profiles = profiles
        self._salt = settings.learner_key_salt.get_secret_value()
        self._default_version = parse_version(settings.raw_default_version)
        self._task: asyncio.Task[None] | None = None
        self.assigned: frozenset[TopicPartition] = frozenset()

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="raw-intake")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check(self) -> None:
        if self._task is None or self._task.done():
            raise RuntimeError("the raw-topic intake is not running")

    async def _pause(self, attempt: int) -> None:
        await asyncio.sleep(min(self._settings.retry_max_seconds, 0.2 * 2 ** min(attempt, 8)))

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                async with kafka_consumer(
                    self._settings.kafka_bootstrap_servers,
                    group_id=self._settings.consumer_group,
                    metadata_max_age_ms=self._settings.intake_metadata_max_age_ms,
                ) as consumer:
                    consumer.subscribe(pattern=self._topics.raw_pattern)
                    await self._consume(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - never stop the worker; log and reconnect
                attempt += 1
                log.warning(
                    "raw intake failed; reconnecting",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:300]},
                )
                await self._pause(attempt)
            else:
                attempt = 0

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        """Poll, validate, then archive + dead-letter + commit, with one batch in flight: while
        batch N is being archived (PostgreSQL works) batch N+1 is fetched and validated (the
        CPU part). Batches are archived and committed strictly in order."""
        inflight: asyncio.Task[None] | None = None
        try:
            while True:
                polled = await consumer.getmany(
                    timeout_ms=500, max_records=self._settings.intake_max_records
                )
                self.assigned = frozenset(consumer.assignment())
                work = await self._examine(polled)
                if inflight is not None:
                    await inflight  # raises what archiving batch N raised: reconnect, replay
                    inflight = None
                if work.offsets:
                    inflight = asyncio.create_task(self._finish(consumer, work))
        finally:
            if inflight is not None and not inflight.done():
                inflight.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await inflight

    async def _examine(
        self, polled: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]
    ) -> _Polled:
        """Validate and prepare the polled records (no I/O but the cached profile lookup).

        The cyclic garbage collector is paused meanwhile (statements are trees, freed by
        reference counting): one young-generation pass after the batch instead of one every
        few hundred records, each scanning the batch's prepared statements again."""
        paused = gc.isenabled()
        gc.disable()
        try:
            return await self._examine_records(polled)
        finally:
            if paused:
                gc.enable()

    async def _examine_records(
        self, polled: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]
    ) -> _Polled:
        work = _Polled()
        handled = 0
        for tp, records in polled.items():
            if not records:
                continue
            work.offsets[tp] = records[-1].offset + 1
            tenant = self._topics.tenant_of_raw(tp.topic)
            if tenant is None:
                work.rejected.extend(Rejected(r, "unknown_topic", "topic") for r in records)
                continue
            profile = Profile.STRICT
            if self._profiles is not None:
                profile = await self._profiles.get(tenant)
            good = work.good.setdefault(tenant, [])
            # one time and one authority for the batch: its statements are stored together
            # (truncated to stored's millisecond precision once, not in every prepare)
            stored = utc_ms(datetime.now(UTC))
            authority = authority_for(tenant, RAW_AUTHORITY_NAME)
            for record in records:
                parsed = self._parse(tenant, record, profile, stored, authority)
                if isinstance(parsed, Rejected):
                    work.rejected.append(parsed)
                else:
                    good.append((record, parsed))
                handled += 1
                if handled % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # let HTTP requests and heartbeats through
        return work

    async def _finish(self, consumer: AIOKafkaConsumer, work: _Polled) -> None:
        """Archive the batch (one transaction per tenant), dead-letter the refused records,
        then commit every partition's offset in one request."""
        for tenant, good in work.good.items():
            if good:
                await self._store(tenant, good, work.rejected)
        by_tenant: dict[str | None, list[Rejected]] = {}
        for r in work.rejected:
            by_tenant.setdefault(self._topics.tenant_of_raw(r.record.topic), []).append(r)
        for owner, rejected in by_tenant.items():
            await self._deadletters.send(owner, rejected)
        with contextlib.suppress(Exception):  # not committed: replayed, and idempotent
            await consumer.commit(work.offsets)

    async def _store(
        self,
        tenant: str,
        good: list[tuple[ConsumerRecord[Any, Any], list[Prepared]]],
        rejected: list[Rejected],
    ) -> None:
        outcomes = await self._archive_with_retry(tenant, [items for _, items in good])
        observe = self._metrics.batch_size.labels("kafka").observe
        for (record, items), outcome in zip(good, outcomes, strict=True):
            if outcome is None:
                observe(len(items))
                continue
            rule = outcome.rule if isinstance(outcome, IngestError) else "storage"
            reason = outcome.reason if isinstance(outcome, IngestError) else "storage"
            rejected.append(
                Rejected(record, reason, rule, [Violation("$", rule, str(outcome)[:500])])
            )

    def _parse(
        self,
        tenant: str,
        record: ConsumerRecord[Any, Any],
        profile: Profile,
        stored: datetime,
        authority: dict[str, Any],
    ) -> list[Prepared] | Rejected:
        if record.value is None:
            return Rejected(record, "invalid_statement", "null_value")
        try:
            version = record_version(record, self._default_version)
            statements = parse_statements_profiled(record.value, version=version, profile=profile)
            return [
                prepare(
                    stmt,
                    tenant=tenant,
                    version=version,
                    stored=stored,
                    authority=authority,
                    salt=self._salt,
                    statement_id=None
                    if stmt.id is not None  # the id is the statement's own: none derived
                    else raw_statement_id(record.topic, record.partition, record.offset, index),
                    deviations=found,
                )
                for index, (stmt, found) in enumerate(statements)
            ]
        except StatementValidationError as exc:
            rule = exc.violations[0].rule if exc.violations else "invalid"
            return Rejected(record, "invalid_statement", rule, exc.violations)
        except IngestError as exc:
            return Rejected(record, exc.reason, exc.rule)
        except ValueError as exc:
            return Rejected(
                record, "invalid_statement", "invalid", [Violation("$", "invalid", str(exc))]
            )
        except Exception as exc:  # a bug must not stall the partition
            error = f"{type(exc).__name__}: {exc}"[:500]
            log.exception(
                "raw record could not be handled; dead-lettering it",
                extra={"tenant": tenant, "topic": record.topic, "partition": record.partition,
                       "offset": record.offset, "error": error},
            )  # fmt: skip
            return Rejected(
                record, "unexpected", "unexpected", [Violation("$", "unexpected", error)]
            )

    async def _archive_with_retry(
        self, tenant: str, records: list[list[Prepared]]
    ) -> list[Exception | None]:
        attempt = 0
        while True:
            try:
                return await self._archive.accept_records(tenant, records)
            except Exception as exc:
                if not is_retriable(exc):
                    raise
                attempt += 1
                log.warning(
                    "archiving raw records failed; retrying",
                    extra={"tenant": tenant, "error": f"{type(exc).__name__}"},
                )
                await self._pause(attempt)
