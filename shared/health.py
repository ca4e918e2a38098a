"""Liveness and readiness.

* Liveness (``/healthz``) says only that the process answers: restarting it cannot fix a
  database outage, so liveness never looks at dependencies.
* Readiness (``/readyz``) runs named checks (database, broker, table recovery...) concurrently,
  each bounded by a timeout; the service is ready when all pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

#: a readiness check raises (anything) when the dependency is not usable
Check = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Readiness:
    ready: bool
    checks: Mapping[str, str]  # check name -> "ok" or the reason it failed


class Health:
    def __init__(self, checks: Mapping[str, Check], timeout: float = 3.0) -> None:
        self._checks = dict(checks)
        self._timeout = timeout

    def add(self, name: str, check: Check) -> None:
        self._checks[name] = check

    async def _run(self, check: Check) -> str:
        try:
            await asyncio.wait_for(check(), self._timeout)
        except TimeoutError:
            return f"timed out after {self._timeout}s"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", with its reason
            return f"{type(exc).__name__}: {exc}"[:300]
        return "ok"

    async def readiness(self) -> Readiness:
        names = list(self._checks)
        results = await asyncio.gather(*(self._run(self._checks[n]) for n in names))
        checks = dict(zip(names, results, strict=True))
        return Readiness(all(r == "ok" for r in results), checks)
