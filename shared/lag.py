"""Consumer lag: how far a consumer group's committed offsets trail the end of its partitions.

:class:`LagMonitor` measures it every ``interval`` seconds in the background (never on the
scrape path) and sets a gauge labelled by topic and partition, both bounded. Each worker reports
only the partitions it owns (``owned``), so summing over workers does not count twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition
from prometheus_client import Gauge

log = logging.getLogger(__name__)

#: the partitions this process owns now, as (topic, partition) pairs
Owned = Callable[[], Iterable[tuple[str, int]]]


async def group_lag(
    admin: AIOKafkaAdminClient,
    consumer: AIOKafkaConsumer,
    group_id: str,
    partitions: Iterable[tuple[str, int]],
) -> dict[tuple[str, int], int]:
    """Lag per partition: end offset minus the group's committed offset (all of it when the
    group has committed nothing there yet)."""
    wanted = [TopicPartition(topic, partition) for topic, partition in partitions]
    if not wanted:
        return {}
    committed = await admin.list_consumer_group_offsets(group_id, partitions=wanted)
    ends = await consumer.end_offsets(wanted)
    lag: dict[tuple[str, int], int] = {}
    for tp in wanted:
        meta = committed.get(tp)
        position = meta.offset if meta is not None and meta.offset >= 0 else 0
        lag[(tp.topic, tp.partition)] = max(0, ends[tp] - position)
    return lag


class LagMonitor:
    def __init__(
        self,
        bootstrap: str,
        group_id: str,
        owned: Owned,
        gauge: Gauge,
        interval: float = 15.0,
    ) -> None:
        self._bootstrap = bootstrap
        self._group_id = group_id
        self._owned = owned
        self._gauge = gauge
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._reported: set[tuple[str, int]] = set()

    async def measure_once(self, admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer) -> None:
        lag = await group_lag(admin, consumer, self._group_id, list(self._owned()))
        for gone in self._reported - lag.keys():  # partitions moved to another worker
            self._gauge.remove(gone[0], str(gone[1]))
        for (topic, partition), value in lag.items():
            self._gauge.labels(topic, str(partition)).set(value)
        self._reported = set(lag)

    async def _run(self) -> None:
        while True:
            try:
                admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
                consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap)
                await admin.start()
                try:
                    await consumer.start()
                    try:
                        while True:
                            await self.measure_once(admin, consumer)
                            await asyncio.sleep(self._interval)
                    finally:
                        await consumer.stop()
                finally:
                    await admin.close()
            except (KafkaError, OSError) as exc:
                log.warning("consumer lag not measured", extra={"error": repr(exc)})
                await asyncio.sleep(self._interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"lag:{self._group_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
