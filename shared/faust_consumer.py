"""What the stream workers change in Faust's consumer (faust-streaming 0.15.3), installed by
:func:`shared.streaming.running`:

* :func:`quick_delivery`: records handed to the streams through :func:`_drain_messages`, a copy
  of Faust's loop that awaits each delivery only when it has to wait;
* :func:`pause_changelogs_when_recovered`: the tables' changelog partitions paused in aiokafka
  (not only in Faust's bookkeeping) once recovery is complete.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import types
from collections.abc import Coroutine, Generator
from typing import Any, Final

import faust
from aiokafka import TopicPartition
from faust.transport.consumer import CONSUMER_FETCHING, Consumer

log = logging.getLogger(__name__)


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


def _pause_in_thread(thread: Any, tps: set[TopicPartition], generation: int) -> None:
    """Pause ``tps`` in aiokafka's consumer if its group generation is still ``generation``
    (the one whose recovery completed): a later rebalance's assignment is left alone (its new
    partition states are not paused, and its own recovery must read the changelogs). Runs in
    the consumer's thread: aiokafka's pause makes a future in the running event loop."""
    try:
        consumer = thread._ensure_consumer()
        if consumer._coordinator.generation != generation:  # no public accessor
            return
        assigned = consumer.assignment()
        consumer.pause(*(tp for tp in tps if tp in assigned))
    except Exception:  # the consumer stopping: nothing to pause
        log.warning("changelog partitions not paused", exc_info=True)


def pause_changelogs_when_recovered(app: faust.App) -> None:
    """Stop fetching the active tables' changelog partitions once recovery is complete.

    Faust pauses a partition in its own bookkeeping only (it stops asking aiokafka for its
    records), never in aiokafka, whose fetcher goes on fetching every assigned partition. After
    recovery the worker's own table writes come back from the changelog, and aiokafka keeps
    them for a reader that never comes: while a partition's records wait unread (up to its
    ``prefetch_backoff``, 0.1 s) it sends no fetch to that broker for any partition, and the
    records stay buffered until the next rebalance. Each changelog partition did this once
    after every start (and, by the same code path, after every rebalance). Traced in
    ``bench/bench_e2e.py`` (2026-11-30, fetch requests logged): in a fresh pipeline, the alerts
    worker read its first progress updates up to 0.39 s after the broker had appended them, and
    in steady state as they were appended; with this pause, its fetches held no changelog
    partition and the first updates were read as they were appended too. A rebalance's new
    assignment resumes everything, so Faust's recovery reads the changelogs again. The
    partitions Faust keeps reading (standbys, and tables whose ``recovery_buffer_size`` is 1)
    are left alone.

    The pause is scheduled in the consumer's thread, not awaited. Awaited through Faust's
    ``call_thread`` (a round trip through the thread's method queue before recovery can end),
    the kill -9 test (``tests/integration/resilience/test_worker_crash.py``) failed in 5 of 27
    runs: once a restarted worker never caught up (before the generation check above), three
    times Faust skipped the records the restarted worker should have seen again (the fifth
    failure was not read). Scheduled, it passed 30 of 30, as it did 10 of 10 without the
    pause. Why awaiting did that was not traced."""

    async def on_complete(_sender: Any, /, *_args: Any, signal: Any = None, **_: Any) -> None:  # noqa: ARG001
        tables: Any = app.tables  # TableManagerT does not declare ``recovery``
        recovery = tables.recovery
        if recovery.signal_recovery_start.is_set():  # another rebalance came: its turn next
            return
        generation = app.consumer_generation_id
        tps = {
            TopicPartition(tp.topic, tp.partition)
            for tp in recovery.active_tps - recovery.standby_tps
            if recovery.tp_to_table[tp].recovery_buffer_size != 1
        }
        thread = getattr(app.consumer, "_thread", None)  # no public accessor
        loop = getattr(thread, "thread_loop", None)
        if not tps or loop is None:
            return
        # scheduled, not awaited: Faust's recovery goes on at once (its method queue, which
        # ``call_thread`` uses, may be busy for up to a second with a fetch)
        loop.call_soon_threadsafe(_pause_in_thread, thread, tps, generation)

    app.on_rebalance_complete.connect(on_complete, weak=False)
