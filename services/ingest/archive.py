"""Archiving accepted statements: one transaction writes the statements, their learners, the
attachments and the outbox events (see ``repository.store_statements``); concurrent HTTP
requests share transactions (group commit, see :class:`Archive`)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.ingest import repository as repo
from services.ingest.errors import ConflictError
from services.ingest.handlers import Channel, Prepared
from services.ingest.metrics import IngestMetrics
from shared.errors import is_retriable


@dataclass
class _Waiting:
    """One ``accept`` call waiting for its group's transaction."""

    tenant: str
    items: Sequence[Prepared]
    channel: Channel
    attachments: Sequence[tuple[str, str, bytes]]
    started: float
    done: asyncio.Future[repo.StoreResult]


def _give_up(wake: asyncio.Future[bool]) -> None:
    if not wake.done():
        wake.set_result(False)


class Archive:
    """Archives accepted statements.

    ``accept`` (HTTP) uses group commit: the calls that arrive while a transaction is under way
    wait, and the next transaction stores all of them at once (one multi-row insert per tenant,
    one commit), answering each call once that commit is done; at most ``concurrency``
    transactions run at the same time, and a group holds at most ``group_rows`` statements
    (a call is never split); a worker keeps its connection for the groups that are waiting
    when its commit is done or that arrive within ``linger`` seconds. A call whose statements
    conflict, or that PostgreSQL refuses (permanently), fails alone: the group is then stored
    again call by call (one savepoint each, in a new transaction).
    """

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        metrics: IngestMetrics,
        schema: str,
        *,
        concurrency: int = 2,
        group_rows: int = 2000,
        linger: float = 0.2,
    ) -> None:
        self._pool = pool
        self._metrics = metrics
        self._notify = repo.notify_channel(schema)
        self._concurrency = concurrency
        self._group_rows = group_rows
        self._waiting: deque[_Waiting] = deque()
        self._running: set[asyncio.Task[None]] = set()
        #: seconds a worker with nothing to do keeps its connection for the next call
        self._linger = linger
        #: the workers lingering: resolved with True to wake one up, False when it gives up
        self._idle: deque[asyncio.Future[bool]] = deque()

    async def accept(
        self,
        tenant: str,
        items: Sequence[Prepared],
        channel: Channel,
        attachments: Sequence[tuple[str, str, bytes]] = (),
    ) -> repo.StoreResult:
        """All of ``items`` or none (a conflict raises and rolls this call back); returns once
        the transaction that stored them has committed."""
        waiting = _Waiting(
            tenant,
            items,
            channel,
            attachments,
            time.perf_counter(),
            asyncio.get_running_loop().create_future(),
        )
        self._waiting.append(waiting)
        while self._idle:
            worker = self._idle.popleft()
            if not worker.done():
                worker.set_result(True)
                break
        self._kick()
        # shielded: a caller that goes away does not take the group's other calls with it
        return await asyncio.shield(waiting.done)

    def _kick(self) -> None:
        while self._waiting and len(self._running) < self._concurrency:
            task = asyncio.create_task(self._work(self._next_group()), name="ingest-group-commit")
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _next_group(self) -> list[_Waiting]:
        """The waiting calls, in order, up to ``group_rows`` statements (at least one call)."""
        group = [self._waiting.popleft()]
        rows = len(group[0].items)
        while self._waiting and rows + len(self._waiting[0].items) <= self._group_rows:
            rows += len(self._waiting[0].items)
            group.append(self._waiting.popleft())
        return group

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._kick()

    async def _work(self, group: list[_Waiting]) -> None:
        """Commit ``group``, then the groups that are waiting by then or arrive within
        ``linger`` seconds, on one connection (no pool release and reset between them); a
        failed transaction ends the worker."""
        try:
            async with self._pool.acquire(timeout=repo.ACQUIRE_TIMEOUT_SECONDS) as conn:
                while True:
                    if not await self._commit(conn, group):
                        return
                    while not self._waiting:
                        if not await self._linger_for_work():
                            return
                    group = self._next_group()
        except BaseException as exc:  # acquiring or releasing failed: every call waiting did
            self._fail(group, exc)
            if not isinstance(exc, Exception):
                raise

    async def _linger_for_work(self) -> bool:
        """Wait up to ``linger`` seconds for a call; False when none came."""
        loop = asyncio.get_running_loop()
        wake: asyncio.Future[bool] = loop.create_future()
        self._idle.append(wake)
        timer = loop.call_later(self._linger, _give_up, wake)
        try:
            return await wake
        finally:
            timer.cancel()
            if wake in self._idle:
                self._idle.remove(wake)

    @staticmethod
    def _fail(group: list[_Waiting], exc: BaseException) -> None:
        for waiting in group:
            if not waiting.done.done():
                waiting.done.set_exception(exc)

    async def _commit(self, conn: Any, group: list[_Waiting]) -> bool:
        """Store ``group`` and answer its calls; False when its transaction failed (every call
        of it did)."""
        try:
            outcomes = await self._store_group(conn, group)
        except BaseException as exc:
            self._fail(group, exc)
            if not isinstance(exc, Exception):
                raise
            return False
        now = time.perf_counter()
        for waiting, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, Exception):
                waiting.done.set_exception(outcome)
                continue
            channel = waiting.channel
            self._metrics.archive_latency.labels(channel).observe(now - waiting.started)
            self._metrics.accepted.labels(waiting.tenant, channel).inc(len(outcome.inserted))
            self._metrics.batch_size.labels(channel).observe(len(waiting.items))
            self._count_deviations(waiting.tenant, outcome.inserted)
            waiting.done.set_result(outcome)
        return True

    async def _store_group(
        self, conn: Any, group: list[_Waiting]
    ) -> list[repo.StoreResult | Exception]:
        """The fast path stores every call at once: one statement when the group has one tenant
        and channel and no attachments (atomic on its own: no BEGIN/COMMIT), else one
        transaction (no savepoint). If PostgreSQL refuses it for good, or a call conflicts,
        nothing of it is kept and the group is stored again call by call, one savepoint each,
        in a new transaction; a group of one call just fails."""
        try:
            if self._one_statement(group):
                together = await self._store_calls(conn, group)
            else:
                async with conn.transaction():
                    together = await self._store_calls(conn, group)
        except (ConflictError, asyncpg.PostgresError) as exc:
            if is_retriable(exc) or len(group) == 1:
                raise
        else:
            return self._split(group, together)
        outcomes: list[repo.StoreResult | Exception] = []
        async with conn.transaction():
            for waiting in group:  # one call is wrong: find it, keep the others
                try:
                    async with conn.transaction():
                        outcomes.append(await self._store_calls(conn, [waiting]))
                except (ConflictError, asyncpg.PostgresError) as failure:
                    if is_retriable(failure):
                        raise
                    outcomes.append(failure)
        return outcomes

    @staticmethod
    def _one_statement(group: list[_Waiting]) -> bool:
        """Whether ``_store_calls`` sends a single write for ``group``."""
        first = group[0]
        return all(
            w.tenant == first.tenant and w.channel == first.channel and not w.attachments
            for w in group
        )

    async def _store_calls(self, conn: Any, group: list[_Waiting]) -> repo.StoreResult:
        """Store the statements and attachments of ``group`` (one insert per tenant and
        channel); the result lists them all."""
        result = repo.StoreResult()
        keyed: dict[tuple[str, Channel], list[_Waiting]] = {}
        for waiting in group:
            keyed.setdefault((waiting.tenant, waiting.channel), []).append(waiting)
        for (tenant, channel), calls in keyed.items():
            items = [item for waiting in calls for item in waiting.items]
            stored = await repo.store_statements(conn, tenant, items, channel, self._notify)
            result.inserted += stored.inserted
            result.duplicates += stored.duplicates
            for waiting in calls:
                await repo.store_attachments(conn, tenant, waiting.attachments)
        return result

    @staticmethod
    def _split(
        group: list[_Waiting], together: repo.StoreResult
    ) -> list[repo.StoreResult | Exception]:
        inserted = {id(item) for item in together.inserted}
        outcomes: list[repo.StoreResult | Exception] = []
        for waiting in group:
            mine = repo.StoreResult()
            for item in waiting.items:
                (mine.inserted if id(item) in inserted else mine.duplicates).append(item)
            outcomes.append(mine)
        return outcomes

    def _count_deviations(self, tenant: str, inserted: Sequence[Prepared]) -> None:
        for item in inserted:
            for deviation in item.deviations:
                self._metrics.lenient_deviations.labels(tenant, deviation.rule).inc()

    async def accept_records(
        self, tenant: str, records: Sequence[Sequence[Prepared]]
    ) -> list[Exception | None]:
        """Archive the statements of several raw records in one transaction.

        Each record is all-or-nothing; a record that conflicts or that PostgreSQL refuses
        (permanently) is reported by its position (``None`` = stored or already stored) and
        the others are kept. Retriable errors (database away) propagate: nothing was stored.
        """
        started = time.perf_counter()
        outcomes: list[Exception | None] = [None] * len(records)
        async with self._pool.acquire() as conn:
            try:  # the fast path, all records at once: one statement, atomic on its own
                items = [p for record in records for p in record]
                result = await repo.store_statements(
                    conn, tenant, items, Channel.KAFKA, self._notify
                )
                stored = list(result.inserted)
            except (ConflictError, asyncpg.PostgresError) as exc:
                if is_retriable(exc):
                    raise
                stored = []
                async with conn.transaction():  # again, one savepoint per record
                    for index, record in enumerate(records):
                        try:
                            async with conn.transaction():
                                result = await repo.store_statements(
                                    conn, tenant, record, Channel.KAFKA, self._notify
                                )
                            stored += result.inserted
                        except (ConflictError, asyncpg.PostgresError) as failure:
                            if is_retriable(failure):
                                raise
                            outcomes[index] = failure
        inserted = len(stored)
        self._metrics.archive_latency.labels(Channel.KAFKA).observe(time.perf_counter() - started)
        self._metrics.accepted.labels(tenant, Channel.KAFKA).inc(inserted)
        self._count_deviations(tenant, stored)
        return outcomes
