"""Smoke tests against the real broker: Faust table recovery, and the aiokafka helpers.

(a) An app counts raw messages per key into a changelog-backed memory:// table. A second app
    object with the same id (what a restarted process builds) recovers the counts from the
    changelog, does not re-read the source (the offsets were committed) and counts on from the
    recovered values.
    Both times, once recovered, the table's changelog partitions are paused in aiokafka too:
    the app's own table writes are not fetched back (``pause_changelogs_when_recovered``).
(b) ``ensure_topics`` plus a produce/consume round trip through ``shared.kafka``.

Every wait has a deadline, so a hang fails in seconds with what was awaited.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.errors import ConfigError
from shared.kafka import (
    Topics,
    TopicSpec,
    ensure_topics,
    kafka_admin,
    kafka_consumer,
    kafka_producer,
)
from shared.streaming import make_faust_app, raw_topic, recovery_finished, running

pytestmark = pytest.mark.timeout(90)

PARTITIONS = 2
WAIT = 20.0
_TOPIC_CONFIG = 1  # DescribeConfigs config_source: set on the topic itself


async def _wait_until(what: str, check: Callable[[], bool], state: Callable[[], Any]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"gave up after {WAIT} s waiting for {what}; now: {state()!r}")
        await asyncio.sleep(0.05)


async def _topic_config(admin: AIOKafkaAdminClient, topic: str) -> dict[str, tuple[str, int]]:
    """``{name: (value, config_source)}`` of a topic's configuration."""
    [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    entries = response.resources[0][4]
    return {entry[0]: (entry[1], entry[3]) for entry in entries}


class CounterApp:
    """What a counting service builds at start-up: a new app object, agent and table."""

    def __init__(self, bootstrap: str, prefix: str, data_dir: Path) -> None:
        self.source = f"{prefix}counter.source"
        self.app = make_faust_app(
            "counter",
            bootstrap=bootstrap,
            topic_prefix=prefix,
            partitions=PARTITIONS,
            data_dir=str(data_dir),  # memory:// keeps nothing there, but Faust makes the dirs
        )
        self.table = self.app.Table("counts", default=int, key_type=bytes, value_type=int)
        self.seen: list[bytes] = []

        async def count(stream: Any) -> AsyncIterator[bytes]:
            async for key, value in stream.items():
                self.table[key] += 1
                self.seen.append(value)
                yield value

        self.app.agent(raw_topic(self.app, self.source, PARTITIONS), name="count")(count)

    def counts(self) -> dict[bytes, int]:
        return dict(self.table.items())

    def changelog(self) -> set[tuple[str, int]]:
        name = self.table.changelog_topic.get_topic_name()
        return {(name, partition) for partition in range(PARTITIONS)}

    def fetcher_state(self) -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
        """(partitions paused in aiokafka, partitions with fetched records not yet read)."""
        consumer: Any = self.app.consumer._thread._ensure_consumer()  # type: ignore[attr-defined]
        paused = {(tp.topic, tp.partition) for tp in consumer.paused()}
        buffered = {(tp.topic, tp.partition) for tp in consumer._fetcher._records}
        return paused, buffered

    async def assert_changelog_not_fetched(self) -> None:
        """The changelog partitions are paused in aiokafka (and only they), and none of the
        table's writes came back into aiokafka's fetch buffer."""
        await _wait_until(
            "the changelog partitions to be paused in aiokafka",
            lambda: self.fetcher_state()[0] == self.changelog(),
            self.fetcher_state,
        )
        await asyncio.sleep(0.5)  # fetches made meanwhile would have brought the writes back
        paused, buffered = self.fetcher_state()
        assert paused == self.changelog()
        assert not buffered & self.changelog(), buffered


async def _produce(bootstrap: str, topic: str, values: range) -> Counter[bytes]:
    """Send ``m<i>`` keyed ``k<i % 5>`` for each i; return how many each key got."""
    sent: Counter[bytes] = Counter()
    async with kafka_producer(bootstrap) as producer:
        for i in values:
            key = f"k{i % 5}".encode()
            await producer.send(topic, key=key, value=f"m{i}".encode())
            sent[key] += 1
        await producer.flush()
    return sent


async def test_table_recovers_from_changelog_without_reprocessing(
    kafka_bootstrap: str, topic_prefix: str, kafka_cleanup: None, tmp_path: Path
) -> None:
    first = CounterApp(kafka_bootstrap, topic_prefix, tmp_path / "first")
    async with kafka_admin(kafka_bootstrap) as admin:
        # source topics are the services' (ensure_topics); Faust creates only its own
        await admin.create_topics([NewTopic(first.source, PARTITIONS, 1)])

    async with running(first.app):
        assert recovery_finished(first.app)
        expected = await _produce(kafka_bootstrap, first.source, range(40))
        await _wait_until(
            "the first app to count 40 messages",
            lambda: first.counts() == dict(expected),
            first.counts,
        )
        await first.assert_changelog_not_fetched()
    assert sorted(first.seen) == sorted(f"m{i}".encode() for i in range(40))

    async with kafka_admin(kafka_bootstrap) as admin:
        committed = await admin.list_consumer_group_offsets(first.app.conf.id)
        changelog = first.table.changelog_topic.get_topic_name()
        config = await _topic_config(admin, changelog)
    source_offsets = {
        tp.partition: o.offset for tp, o in committed.items() if tp.topic == first.source
    }
    assert sum(source_offsets.values()) == 40, committed
    assert config["cleanup.policy"] == ("compact", _TOPIC_CONFIG)
    assert config["retention.ms"][1] != _TOPIC_CONFIG, "changelog must have no time retention"

    # same id, fresh memory:// store and data directory: what a new process would build
    second = CounterApp(kafka_bootstrap, topic_prefix, tmp_path / "second")
    assert second.counts() == {}
    async with running(second.app):
        # App.start() returned after recovery: the counts are back before anything is consumed
        assert recovery_finished(second.app)
        assert second.counts() == dict(expected)
        assert second.seen == []

        expected += await _produce(kafka_bootstrap, second.source, range(40, 55))
        await _wait_until(
            "the second app to count 15 new messages",
            lambda: len(second.seen) >= 15,  # counted before appended: all 15 are counted
            lambda: (second.counts(), second.seen),
        )
        # only the new messages were read: nothing before the committed offsets came again
        assert sorted(second.seen) == sorted(f"m{i}".encode() for i in range(40, 55))
        assert second.counts() == dict(expected)
        await second.assert_changelog_not_fetched()


async def test_ensure_topics_and_round_trip(
    kafka_bootstrap: str, topics: Topics, kafka_cleanup: None
) -> None:
    specs = topics.specs()
    async with kafka_admin(kafka_bootstrap) as admin:
        created = await ensure_topics(admin, specs)
        assert sorted(created) == sorted(spec.name for spec in specs)

        # a just-created topic may be described with no partitions for a moment
        wanted = {spec.name: spec.partitions for spec in specs}
        partitions: dict[str, int] = {}

        async def described() -> None:
            while partitions != wanted:
                found = await admin.describe_topics(list(wanted))
                partitions.update((d["topic"], len(d["partitions"])) for d in found)
                if partitions != wanted:
                    await asyncio.sleep(0.1)

        try:
            await asyncio.wait_for(described(), WAIT)
        except TimeoutError:
            pytest.fail(f"partitions {partitions} are not {wanted} after {WAIT} s")
        config = await _topic_config(admin, topics.statements)
        assert config["retention.ms"] == ("-1", _TOPIC_CONFIG)

        assert await ensure_topics(admin, specs) == []
        with pytest.raises(ConfigError, match="partitions"):
            await ensure_topics(admin, [TopicSpec(topics.statements, topics.partitions + 1)])

    sent = {(f"t|l{i}".encode(), f"v{i}".encode()) for i in range(10)}
    async with kafka_producer(kafka_bootstrap) as producer:
        for key, value in sent:
            await producer.send(topics.statements, key=key, value=value)
        await producer.flush()

    received: set[tuple[bytes, bytes]] = set()
    group = f"{topics.prefix}round-trip"
    async with kafka_consumer(kafka_bootstrap, topics.statements, group_id=group) as consumer:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while received != sent:
            assert loop.time() < deadline, f"received {len(received)} of {len(sent)} in {WAIT} s"
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                received.update((r.key, r.value) for r in records if r.key and r.value)
        await consumer.commit()

    assert received == sent
