"""The Faust app factory's settings, and an agent with a table under ``agent.test_context()``.

No broker: nothing here starts the app's consumer or producer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.types.tuples import Message

from shared.errors import ConfigError, DependencyUnavailableError
from shared.streaming import (
    CONSUMER_MAX_FETCH_BYTES,
    STREAM_BUFFER_MAXSIZE,
    RawSchema,
    close_unused_loops,
    kafka_urls,
    make_faust_app,
    raw_topic,
    recovery_finished,
    running,
)

BOOTSTRAP = "127.0.0.1:9092"


def _app(**kwargs: Any) -> faust.App:
    options: dict[str, Any] = {"bootstrap": BOOTSTRAP, "topic_prefix": "tunit.", "partitions": 3}
    options.update(kwargs)
    return make_faust_app("counter", **options)


def test_defaults() -> None:
    conf: Any = _app().conf  # faust's Settings stubs mistype some properties

    assert conf.id == "tunit.counter"
    assert [str(url) for url in conf.broker] == ["kafka://127.0.0.1:9092"]
    assert conf.processing_guarantee.value == "at_least_once"
    assert conf.topic_partitions == 3
    assert conf.topic_replication_factor == 1
    assert conf.table_standby_replicas == 0
    assert conf.consumer_auto_offset_reset == "earliest"
    assert conf.consumer_max_fetch_size == CONSUMER_MAX_FETCH_BYTES == 4 << 20
    assert conf.stream_buffer_maxsize == STREAM_BUFFER_MAXSIZE == 16384
    assert conf.key_serializer == "raw"
    assert conf.value_serializer == "raw"
    assert conf.web_enabled is False
    assert conf.consumer_group_instance_id is None
    assert str(conf.store) == "memory:"


def test_group_instance_id_and_overrides() -> None:
    conf = _app(
        group_instance_id="progress-0",
        topic_replication_factor=3,
        web_enabled=True,
        broker_commit_every=50,
        consumer_max_fetch_size=1 << 20,
    ).conf

    assert conf.consumer_group_instance_id == "progress-0"
    assert conf.topic_replication_factor == 3
    assert conf.web_enabled is True
    assert conf.broker_commit_every == 50
    assert conf.consumer_max_fetch_size == 1 << 20


def test_environment_is_ignored_unless_passed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Faust would let these override the explicit arguments
    monkeypatch.setenv("TOPIC_PARTITIONS", "17")
    monkeypatch.setenv("CONSUMER_GROUP_INSTANCE_ID", "from-env")

    assert _app().conf.topic_partitions == 3
    assert _app().conf.consumer_group_instance_id is None
    opted_in = _app(env={"CONSUMER_GROUP_INSTANCE_ID": "from-env"}).conf
    assert opted_in.consumer_group_instance_id == "from-env"


def test_several_bootstrap_servers() -> None:
    assert kafka_urls(" a:9092, b:9093 ,") == ["kafka://a:9092", "kafka://b:9093"]
    with pytest.raises(ConfigError):
        kafka_urls(" , ")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"partitions": 0}, "partitions"),
        ({"store": "rocksdb://"}, "data_dir"),
    ],
)
def test_refused_settings(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _app(**kwargs)


def test_disk_store_with_data_dir(tmp_path: Path) -> None:
    conf = _app(store="rocksdb://", data_dir=str(tmp_path)).conf
    assert str(conf.store) == "rocksdb:"
    assert conf.datadir == tmp_path


def test_raw_topic() -> None:
    app = _app()
    topic = raw_topic(app, "tunit.src", 3)

    assert topic.get_topic_name() == "tunit.src"
    assert topic.partitions == 3
    assert topic.key_type is bytes
    assert topic.value_type is bytes
    assert topic.key_serializer == "raw"
    assert topic.value_serializer == "raw"


def test_table_changelog_is_compacted_without_retention() -> None:
    app = _app()
    table = app.Table("counts", default=int, key_type=bytes, value_type=int)
    changelog: Any = table.changelog_topic  # TopicT does not declare the serializers

    assert changelog.get_topic_name() == "tunit.counter-counts-changelog"
    assert changelog.compacting is True
    assert not changelog.deleting
    assert changelog.retention is None
    assert changelog.partitions is None  # so: the app's topic_partitions
    assert changelog.key_serializer == "raw"
    assert changelog.value_serializer == "json"


def test_not_ready_before_start() -> None:
    assert recovery_finished(_app()) is False


class _Counter:
    """An app with one agent counting raw values per key into a memory:// table."""

    def __init__(self, bootstrap: str = BOOTSTRAP, data_dir: Path | None = None) -> None:
        self.app = _app(bootstrap=bootstrap, data_dir=None if data_dir is None else str(data_dir))
        self.table = self.app.Table("counts", default=int, key_type=bytes, value_type=int)
        self.seen: list[bytes] = []

        async def count(stream: Any) -> AsyncIterator[bytes]:
            async for key, value in stream.items():
                self.table[key] += 1
                self.seen.append(value)
                yield value

        self.agent = self.app.agent(raw_topic(self.app, "tunit.src", 3), name="count")(count)


@pytest.fixture
async def counter() -> AsyncIterator[_Counter]:
    counter = _Counter()
    # faust-notes.md: the testing recipe without pytest-asyncio's removed event_loop fixture
    counter.app.loop = asyncio.get_running_loop()
    counter.app.finalize()
    counter.app.flow_control.resume()
    yield counter
    close_unused_loops(counter.app)  # test_context built a consumer, never started


async def test_agent_counts_per_key_in_table(counter: _Counter) -> None:
    async with counter.agent.test_context() as agent:
        for key, value in [(b"a", b"1"), (b"b", b"2"), (b"a", b"3")]:
            await agent.put(value, key=key)

    assert counter.seen == [b"1", b"2", b"3"]
    assert dict(counter.table.items()) == {b"a": 2, b"b": 1}


async def test_each_app_has_its_own_table(counter: _Counter) -> None:
    other = _Counter()  # never started: builds no consumer
    async with counter.agent.test_context() as agent:
        await agent.put(b"x", key=b"a")

    assert dict(counter.table.items()) == {b"a": 1}
    assert dict(other.table.items()) == {}


async def test_running_fails_fast_without_a_broker(tmp_path: Path) -> None:
    counter = _Counter(bootstrap="127.0.0.1:1", data_dir=tmp_path)  # nothing listens on port 1

    with pytest.raises(DependencyUnavailableError, match="could not start"):
        async with running(counter.app, start_timeout=10):
            pytest.fail("the app started without a broker")


async def test_a_raw_topic_decodes_records_as_fausts_raw_codec_does() -> None:
    """Raw topics hand the record's bytes over as they are: the same key and value (and the
    same objects) as Faust's own schema with the raw codec gives, ``None`` and empty included."""
    app = make_faust_app("source", bootstrap="127.0.0.1:9", topic_prefix="tunit.", partitions=2)
    fast = raw_topic(app, "tunit.raw", 2)
    plain: Any = app.topic(
        "tunit.plain",
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    assert isinstance(fast.schema, RawSchema)
    assert not isinstance(plain.schema, RawSchema)
    assert (fast.key_type, fast.value_type) == (plain.key_type, plain.value_type) == (bytes, bytes)
    decode_fast, decode_plain = fast.schema.compile(app), plain.schema.compile(app)
    value = b'{"schema": "xapi.statement/v1"}'
    for key, val in ((b"acme|x", value), (None, value), (b"acme|x", None), (b"", b"")):
        message = Message("tunit.raw", 1, 7, 0.0, 0, [], key, val, None)
        got, want = await decode_fast(message), await decode_plain(message)
        assert (got.key, got.value) == (want.key, want.value) == (key, val)
        assert got.key is key
        assert got.value is val
        assert got.message is message
    close_unused_loops(app)
