"""Faust apps for the stream processors (progress, alerts), built per call and run in-process.

:func:`make_faust_app` is the one place the Faust settings are chosen (faust-notes.md):

* at-least-once processing (``exactly_once`` has open bugs); sinks are idempotent instead;
* the app id is ``<topic_prefix><app_id>``: the consumer group, the changelog topics
  (``<id>-<table>-changelog``) and the assignor topic all carry the prefix, so tests and
  environments stay apart and the ``kafka_cleanup`` fixture deletes them;
* table changelogs: Faust creates them ``cleanup.policy=compact`` with no ``retention.ms``
  for non-windowed tables, which is what recovery needs; no standby replicas (one node);
* fetches of up to :data:`CONSUMER_MAX_FETCH_BYTES` per partition (Faust's default is a
  quarter of it), and streams buffering up to :data:`STREAM_BUFFER_MAXSIZE` records (Faust's:
  4096) so that a fetch fits;
* Faust's own web server is off: each service runs its own aiohttp server;
* Faust's settings are NOT read from ``os.environ`` (Faust lets variables such as
  ``WEB_PORT`` or ``BROKER_URL`` override explicit arguments); services pass everything
  explicitly from their pydantic settings. Pass ``env=os.environ`` to opt back in.

:func:`running` starts an app inside the current event loop without Faust's ``Worker`` (which
installs signal handlers and owns the loop), its consumer handing records to the streams
through a quicker delivery loop, and the tables' changelog partitions paused in aiokafka once
recovered (both in :mod:`shared.faust_consumer`).
``App.start()`` returns once table recovery has finished, so ``async with running(app):`` is
"started and recovered".
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import faust
from aiokafka.errors import KafkaError

from shared.errors import ConfigError, DependencyUnavailableError
from shared.faust_consumer import pause_changelogs_when_recovered, quick_delivery

DEFAULT_START_TIMEOUT = 60.0
DEFAULT_STOP_TIMEOUT = 30.0

#: Most bytes one fetch brings per partition (Faust's ``consumer_max_fetch_size``, aiokafka's
#: ``max_partition_fetch_bytes``; Faust's default is 1 MiB). A worker catching up makes a
#: quarter of the fetches with 4 MiB, and the progress worker's throughput rose by about 20%
#: (``bench/bench_progress_throughput.py``, interleaved on 2026-11-30: 3,926 and 4,048
#: events/s with 1 MiB, 5,134 and 4,551 with 4 MiB; 8 MiB did no better). The buffer this can
#: take is this many bytes per assigned partition (with the default 4 partitions, 16 MiB at
#: most); a worker assigned many partitions can pass a smaller ``consumer_max_fetch_size``.
#: It must stay above the broker's largest record (``message.max.bytes``, 1 MiB by default).
CONSUMER_MAX_FETCH_BYTES: Final = 4 << 20

#: Most records waiting in an agent's stream (Faust's ``stream_buffer_maxsize``, default 4096).
#: A 4 MiB fetch from each of 4 partitions brings about 10,000 statement envelopes, more than
#: 4096. The records handed over the slow way (a delivery that had to wait: a task under
#: ``wait_first``, see :func:`_drain_messages`), counted in ``bench/bench_progress_throughput.py``:
#: 7,700 of 50,000 events with 4096 against 3,050 with this size; and the worker's rate
#: rose by about 15% (interleaved, 2026-11-30: 4,355 events/s on average over 7 runs against
#: 5,067). The price is memory: up to this many records (about 1.7 KB each for statements)
#: per agent, held only while the worker is behind.
STREAM_BUFFER_MAXSIZE: Final = 16384

log = logging.getLogger(__name__)


def kafka_urls(bootstrap: str) -> list[str]:
    """``"h1:9092,h2:9092"`` -> ``["kafka://h1:9092", "kafka://h2:9092"]``."""
    hosts = [h.strip() for h in bootstrap.split(",") if h.strip()]
    if not hosts:
        raise ConfigError("no Kafka bootstrap servers given")
    return [h if "://" in h else f"kafka://{h}" for h in hosts]


def make_faust_app(
    app_id: str,
    *,
    bootstrap: str,
    topic_prefix: str,
    partitions: int,
    store: str = "memory://",
    data_dir: str | None = None,
    web_enabled: bool = False,
    group_instance_id: str | None = None,
    replication_factor: int = 1,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> faust.App:
    """A new, unstarted Faust app. ``overrides`` are any other Faust settings, and win.

    ``group_instance_id`` turns on static group membership (e.g. the pod name), so a restart
    within the session timeout does not rebalance the group. ``replication_factor`` applies to
    the topics Faust creates (changelogs): pass the deployment's ``replication_factor``.
    """
    if partitions < 1:
        raise ConfigError(f"partitions must be >= 1, not {partitions}")
    full_id = f"{topic_prefix}{app_id}"
    if data_dir is None:
        if not store.startswith("memory://"):
            raise ConfigError(f"store {store} keeps data on disk: give data_dir")
        # memory:// stores nothing there, but Faust creates the directory on first start
        data_dir = str(Path(tempfile.gettempdir()) / f"faust-{full_id}")
    settings: dict[str, Any] = {
        "broker": kafka_urls(bootstrap),
        "store": store,
        "datadir": data_dir,
        "processing_guarantee": "at_least_once",
        "topic_partitions": partitions,
        "topic_replication_factor": replication_factor,
        "topic_allow_declare": True,
        "table_standby_replicas": 0,
        "consumer_auto_offset_reset": "earliest",
        "consumer_max_fetch_size": CONSUMER_MAX_FETCH_BYTES,
        "stream_buffer_maxsize": STREAM_BUFFER_MAXSIZE,
        "key_serializer": "raw",
        "value_serializer": "raw",
        "web_enabled": web_enabled,
        "autodiscover": False,
        "env": {} if env is None else env,
    }
    if group_instance_id is not None:
        settings["consumer_group_instance_id"] = group_instance_id
    settings.update(overrides)
    return faust.App(full_id, **settings)


class RawSchema(faust.Schema):  # type: ignore[type-arg]
    """A raw topic's schema: each event's key and value are the record's own bytes.

    What Faust's raw codec gives for ``bytes`` keys and values (``want_bytes``: the same
    object; ``None`` stays ``None``), without its serializer registry and codec layers, which
    cost about as much per record as the rest of Faust's decoding. Encoding (``topic.send``)
    is Faust's own. Nothing is checked or converted: the agents validate the bytes."""

    def loads_key(self, app: Any, message: Any, **_: Any) -> Any:  # noqa: ARG002 - Faust's
        return message.key

    def loads_value(self, app: Any, message: Any, **_: Any) -> Any:  # noqa: ARG002 - Faust's
        return message.value


def raw_topic(app: faust.App, name: str, partitions: int | None = None) -> Any:
    """Declare a topic of raw bytes keys and values (decode with pydantic in the agent),
    read through :class:`RawSchema`."""
    schema = RawSchema(
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    return app.topic(name, schema=schema, partitions=partitions)


def recovery_finished(app: faust.App) -> bool:
    """Readiness: the tables are recovered and no rebalance is under way."""
    tables: Any = app.tables  # TableManagerT does not declare ``recovery``
    return bool(tables.recovery.completed.is_set() and not app.rebalancing)


def failure_of(app: faust.App) -> BaseException | None:
    """Why the app crashed, or ``None`` while it has not."""
    if app._crashed.is_set():  # mode has no public accessor for the flag
        reason: BaseException | None = app.crash_reason
        return reason or RuntimeError(f"Faust app {app.conf.id} crashed")
    return None


def close_unused_loops(app: faust.App) -> None:
    """Close the event loop of a consumer thread that was built but never ran.

    ``app.consumer`` is a ``mode.ServiceThread`` that creates its own event loop when built and
    closes it only after the thread ran. An app that failed to start, or one used only under
    ``agent.test_context()``, leaves it open: a ResourceWarning when garbage-collected.
    """
    thread = getattr(app._consumer, "_thread", None)  # no public accessor
    loop = getattr(thread, "thread_loop", None)
    worker = getattr(thread, "_thread", None)
    if (
        isinstance(loop, asyncio.AbstractEventLoop)
        and worker is None
        and not loop.is_running()
        and not loop.is_closed()
    ):
        loop.close()


@asynccontextmanager
async def running(
    app: faust.App,
    *,
    start_timeout: float | None = DEFAULT_START_TIMEOUT,
    stop_timeout: float = DEFAULT_STOP_TIMEOUT,
) -> AsyncIterator[faust.App]:
    """Run ``app`` in the current event loop, stopping it on exit (also on errors).

    Entering returns once the app has joined its group and recovered its tables; raises
    :class:`DependencyUnavailableError` if the broker cannot be reached (Faust does not retry
    at start-up: call ``shared.kafka.wait_for_broker`` first), if that takes longer than
    ``start_timeout`` or if the app crashed while starting. Faust logs errors of running
    services and marks the app crashed instead of raising: such a crash is raised on exit.
    An app object runs once: build a new one (as a restarted process would) to run again.
    """
    app.loop = asyncio.get_running_loop()
    quick_delivery(app)
    pause_changelogs_when_recovered(app)
    try:
        try:
            await asyncio.wait_for(app.start(), start_timeout)
        except TimeoutError as exc:
            raise DependencyUnavailableError(
                f"Faust app {app.conf.id} did not start within {start_timeout} s"
            ) from exc
        except (KafkaError, OSError) as exc:
            raise DependencyUnavailableError(
                f"Faust app {app.conf.id} could not start: {exc!r}"
            ) from exc
        failure = failure_of(app)
        if failure is not None:
            raise DependencyUnavailableError(
                f"Faust app {app.conf.id} crashed while starting: {failure!r}"
            ) from failure
        yield app
    finally:
        try:
            await asyncio.wait_for(app.stop(), stop_timeout)
        finally:
            close_unused_loops(app)
    failure = failure_of(app)
    if failure is not None:
        raise RuntimeError(f"Faust app {app.conf.id} crashed: {failure!r}") from failure
