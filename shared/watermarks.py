"""Per-partition offset watermarks kept with a projection (the progress and alerts schemas each
have a ``watermarks`` table of this shape, written in or right after the transaction of the
effects): the last offset of each source partition whose effects are durable. They only move
forward. A worker resumes a partition after its watermark (``shared/delivery.py``); progress
also drops what is at or below it (already projected)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Conn: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]


async def read(
    conn: Conn, topic: str, partitions: Sequence[int] | None = None, *, lock: bool = False
) -> dict[int, int]:
    """``{partition: offset}`` of ``topic`` (all partitions, or those given); ``lock``: the
    rows are locked for the rest of the transaction."""
    sql = 'SELECT partition, "offset" FROM watermarks WHERE topic = $1'
    args: list[Any] = [topic]
    if partitions is not None:
        sql += " AND partition = ANY($2::integer[])"
        args.append(list(partitions))
    if lock:
        sql += " FOR UPDATE"
    rows = await conn.fetch(sql, *args)
    return {int(r["partition"]): int(r["offset"]) for r in rows}


async def move(conn: Conn, topic: str, offsets: dict[int, int]) -> None:
    """Raise the watermarks of ``topic`` to ``offsets`` (never lowers one); rows in partition
    order (a fixed lock order between concurrent writers)."""
    parts = sorted(offsets)
    await conn.execute(
        'INSERT INTO watermarks (topic, partition, "offset")'
        " SELECT $1, u.p, u.o FROM unnest($2::integer[], $3::bigint[]) AS u(p, o)"
        ' ON CONFLICT (topic, partition) DO UPDATE SET "offset" ='
        ' GREATEST(watermarks."offset", EXCLUDED."offset")',
        topic,
        parts,
        [offsets[p] for p in parts],
    )


async def next_offset(pool: asyncpg.Pool[Any], topic: str, partition: int) -> int | None:
    """The offset after ``partition``'s watermark: where processing resumes (None: nothing
    from it yet)."""
    async with pool.acquire() as conn:
        marks = await read(conn, topic, [partition])
    return marks[partition] + 1 if partition in marks else None
