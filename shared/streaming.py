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
through :func:`_drain_messages` (:func:`quick_delivery`). ``App.start()`` returns once table
recovery has finished, so ``async with running(app):`` is "started and recovered".
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import tempfile
import types
from collections.abc import AsyncIterator, Coroutine, Generator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import faust
from aiokafka.errors import KafkaError
from faust.transport.consumer import CONSUMER_FETCHING, Consumer

from shared.errors import ConfigError, DependencyUnavailableError

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


@types.coroutine
def _resumed(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """The rest of ``coro``, which yielded ``yielded`` in its first step (run by the caller):
    what ``yield from coro`` would have done from there, for a task to run."""
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # noqa: BLE001 - thrown in by the task: passed on
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


async def _drain_messages(  # noqa: PLR0912, PLR0915 - Faust's loop, kept as it is
    self: Any, fetcher: Any
) -> None:
    """Faust's ``Consumer._drain_messages`` (faust-streaming 0.15.3: the loop that hands each
    fetched record to the conductor), except how each record's delivery is awaited.

    Faust awaits ``wait_first(callback(message), suspend_flow.wait())`` per record: four tasks
    (the delivery, the flow, the consumer's stopped and crashed events), ``asyncio.wait`` and
    three cancellations -- about as much as the rest of Faust's per-record work. Here the
    delivery's first step runs at once: it almost always completes there (the conductor puts
    the event in the stream's queue without waiting), and then ``wait_first`` would have
    returned with it (its task ran first; the return value is not used) and nothing else
    differs. A delivery that waits (flow control held during a rebalance, a full producer
    buffer or stream queue) goes on in a task under Faust's own ``wait_first`` with the flow
    event, as before. The loop still yields to the event loop every 100 records and at each
    fetch (Faust's own ``yield_every``)."""
    callback = self.callback
    getmany = self.getmany
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set
    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    flag_consumer_fetching = CONSUMER_FETCHING
    set_flag = self.diag.set_flag
    unset_flag = self.diag.unset_flag
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for
    yield_every = 100
    num_since_yield = 0
    sleep = asyncio.sleep
    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(flag_consumer_fetching)
            ait = getmany(timeout=1.0)
            # Sleeping because sometimes getmany is called in a loop never releasing to the
            # event loop (Faust's comment)
            await self.sleep(0)
            if not self.should_stop:
                async for tp, message in ait:
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await sleep(0)
                        num_since_yield = 0
                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is None or offset >= r_offset:
                        gap = offset - (r_offset or 0)
                        # We have a gap in income messages
                        if gap > 1 and r_offset and acks_enabled_for(message.topic):
                            await self._add_gap(tp, r_offset + 1, offset)
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        delivery = callback(message)
                        try:
                            yielded = delivery.send(None)
                        except StopIteration:
                            pass  # delivered in its first step
                        else:
                            rest = asyncio.ensure_future(_resumed(delivery, yielded))
                            await self.wait_first(rest, self.suspend_flow.wait())
                        set_read_offset(tp, offset)
                    else:
                        self.log.dev(
                            "DROPPED MESSAGE ROFF %r: k=%r v=%r",
                            offset,
                            message.key,
                            message.value,
                        )
                unset_flag(flag_consumer_fetching)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            # we're already stopping so ignore
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            # we're already stopping so ignore
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)  # noqa: TRY401 - Faust's
        raise
    finally:
        unset_flag(flag_consumer_fetching)


#: sha256 of the source of the ``Consumer._drain_messages`` that :func:`_drain_messages` copies
DRAIN_SOURCE_SHA256: Final = "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"


def copies_fausts_drain() -> bool:
    """Whether the installed Faust's ``Consumer._drain_messages`` is the one copied here
    (False too when its source cannot be read)."""
    try:
        source = inspect.getsource(Consumer._drain_messages).encode()
    except (OSError, TypeError):
        return False
    return hashlib.sha256(source).hexdigest() == DRAIN_SOURCE_SHA256


def quick_delivery(app: faust.App) -> bool:
    """Make the app's consumer hand records to the streams through :func:`_drain_messages`;
    only if the installed Faust's loop is the one copied (any other keeps Faust's own).
    Returns whether it did."""
    if not copies_fausts_drain():
        log.warning("Faust's Consumer._drain_messages changed: records delivered its own way")
        return False
    consumer: Any = app.consumer
    consumer._drain_messages = types.MethodType(_drain_messages, consumer)
    return True


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
