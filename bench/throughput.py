"""Rows of the throughput benchmarks and what they measure with (``bench_ingest.py``,
``ralph_lrs.py``): a result row, a process's CPU time, free ports, concurrent POSTs."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from tools.demo.processes import cpu_seconds as process_cpu_seconds

__all__ = ["Result", "bodies_of", "free_port", "post_bodies", "process_cpu_seconds"]


@dataclass
class Result:
    name: str
    statements: int
    seconds: float
    cpu: float | None = None  # CPU seconds the server process used during the run
    note: str = ""  # instead of figures: why the run was not made, or how it failed
    checks: str = ""  # what was verified (HTTP answers, statements stored), printed below

    @property
    def cpu_per_1k(self) -> str:
        return "" if self.cpu is None else f"{self.cpu * 1000 / self.statements:.3f}"

    @property
    def rate(self) -> float:
        return self.statements / self.seconds if self.seconds else 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bodies_of(statements: Sequence[bytes], batch: int) -> list[bytes]:
    """The request bodies: each statement alone, or JSON arrays of ``batch`` statements."""
    if batch == 1:
        return list(statements)
    return [
        b"[" + b",".join(statements[i : i + batch]) + b"]" for i in range(0, len(statements), batch)
    ]


async def post_bodies(
    url: str, headers: dict[str, str], bodies: Sequence[bytes], in_flight: int
) -> tuple[Counter[int], str]:
    """POST every body, ``in_flight`` at a time: the count of each status code answered, and
    the first answer that was not 200 (status and text), if any."""
    queue = list(reversed(bodies))
    statuses: Counter[int] = Counter()
    first_error = ""
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker() -> None:
            nonlocal first_error
            while queue:
                body = queue.pop()
                async with http.post(url, data=body, headers=headers) as response:
                    text = await response.text()
                    statuses[response.status] += 1
                    if response.status != 200 and not first_error:
                        first_error = f"{response.status}: {text[:500]}"

        await asyncio.gather(*(worker() for _ in range(in_flight)))
    return statuses, first_error
