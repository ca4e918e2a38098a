"""Kafka helpers: topic declarations and aiokafka clients as async context managers.

Topic names come from :class:`Topics`, built from settings (so tests and environments can put a
prefix in front of every name). Every topic after ingest is keyed ``"<tenant>|<learner_key>"``
and the keyed ones share one partition count (DESIGN.md, "Keys and ordering").
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from shared.errors import ConfigError, DependencyUnavailableError

log = logging.getLogger(__name__)

TENANT_IN_TOPIC = r"[a-z0-9][a-z0-9_-]{0,62}"
_DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)
    replication_factor: int = 1


@dataclass(frozen=True)
class Topics:
    """The names of Skillstream's topics under one prefix."""

    prefix: str = ""
    partitions: int = 4
    replication_factor: int = 1

    @property
    def statements(self) -> str:
        return f"{self.prefix}xapi.statements"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}xapi.deadletter"

    @property
    def progress_updates(self) -> str:
        return f"{self.prefix}progress.updates"

    @property
    def alerts_events(self) -> str:
        return f"{self.prefix}alerts.events"

    def raw(self, tenant: str) -> str:
        """The topic an LMS produces raw xAPI statements to for ``tenant``."""
        return f"{self.prefix}xapi.raw.{tenant}"

    @property
    def raw_pattern(self) -> str:
        """Regex ingest subscribes to; group 1 is the tenant."""
        return f"^{re.escape(self.prefix)}xapi\\.raw\\.({TENANT_IN_TOPIC})$"

    def tenant_of_raw(self, topic: str) -> str | None:
        match = re.match(self.raw_pattern, topic)
        return match.group(1) if match else None

    def specs(self) -> list[TopicSpec]:
        """The topics Skillstream owns. Raw topics belong to the tenants and are not here."""
        keyed = {"cleanup.policy": "delete", "retention.ms": str(30 * _DAY_MS)}
        rf = self.replication_factor
        return [
            # the canonical stream: kept, so progress can be rebuilt by replaying it
            TopicSpec(self.statements, self.partitions, {"retention.ms": "-1"}, rf),
            TopicSpec(self.deadletter, 1, {"retention.ms": str(30 * _DAY_MS)}, rf),
            TopicSpec(self.progress_updates, self.partitions, keyed, rf),
            TopicSpec(self.alerts_events, self.partitions, keyed, rf),
        ]


@asynccontextmanager
async def kafka_admin(bootstrap: str, **kwargs: Any) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kwargs)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


@asynccontextmanager
async def kafka_producer(bootstrap: str, **kwargs: Any) -> AsyncIterator[AIOKafkaProducer]:
    """An idempotent producer that waits for all in-sync replicas (``acks="all"``)."""
    options: dict[str, Any] = {"acks": "all", "enable_idempotence": True, "linger_ms": 5}
    options.update(kwargs)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **options)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


@asynccontextmanager
async def kafka_consumer(
    bootstrap: str, *topics: str, **kwargs: Any
) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer with manual commits (commit after the effect, never before)."""
    options: dict[str, Any] = {"enable_auto_commit": False, "auto_offset_reset": "earliest"}
    options.update(kwargs)
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, **options)
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def ensure_topics(
    admin: AIOKafkaAdminClient, specs: list[TopicSpec], settle: float = 10.0
) -> list[str]:
    """Create the topics that are missing; check the partitions of those that exist.

    Returns the names created. A topic that exists with another partition count is a
    :class:`ConfigError`: co-partitioned topics and tables would silently break. A topic just
    created (by us or by another replica) may be described with no partitions for a moment;
    that is waited out for up to ``settle`` seconds.
    """
    existing = set(await admin.list_topics())
    missing = [s for s in specs if s.name not in existing]
    if missing:
        new = [
            NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=dict(s.config))
            for s in missing
        ]
        try:
            await admin.create_topics(new)
        except TopicAlreadyExistsError:
            log.info("topics were created concurrently")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settle
    while True:
        described = await admin.describe_topics([s.name for s in specs])
        counts = {d["topic"]: len(d["partitions"]) for d in described}
        if all(counts.get(s.name) for s in specs) or loop.time() > deadline:
            break
        await asyncio.sleep(0.1)
    for spec in specs:
        if counts.get(spec.name) != spec.partitions:
            raise ConfigError(
                f"topic {spec.name} has {counts.get(spec.name)} partitions, "
                f"{spec.partitions} are configured"
            )
    return [s.name for s in missing]


async def wait_for_broker(bootstrap: str, wait: float = 30.0) -> None:
    """Wait until the broker answers a metadata request, or raise after ``wait`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    last: BaseException | None = None
    while loop.time() < deadline:
        try:
            async with kafka_admin(bootstrap, request_timeout_ms=5000) as admin:
                await admin.list_topics()
        except (KafkaError, OSError) as exc:
            last = exc
            await asyncio.sleep(0.5)
        else:
            return
    raise DependencyUnavailableError(f"Kafka at {bootstrap} did not answer: {last!r}")
