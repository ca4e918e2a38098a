"""Detector settings per (tenant, programme), cached (the stream and the scanner read them), and
the record a progress update that cannot be applied is dead-lettered as."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import asyncpg
import orjson

from services.alerts import repository as repo
from services.alerts.rules import DetectorSettings, resolve


class SettingsStore:
    """Detector settings per (tenant, programme), read from ``detector_settings`` and cached."""

    def __init__(
        self, pool: asyncpg.Pool[Any], ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._pool = pool
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[DetectorSettings, float]] = {}

    async def get(self, tenant: str, programme: str | None) -> DetectorSettings:
        key = (tenant, programme or "")
        hit = self._cache.get(key)
        now = self._clock()
        if hit is not None and hit[1] > now:
            return hit[0]
        async with self._pool.acquire() as conn:
            tenant_wide, per_programme = await repo.detector_overrides(conn, tenant, programme)
        settings = resolve(tenant_wide, per_programme)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (settings, now + self._ttl)
        return settings

    def forget(self) -> None:
        self._cache.clear()


def deadletter_record(key: bytes | None, raw: bytes, reason: str, message: str) -> bytes:
    return orjson.dumps(
        {
            "reason": reason,
            "message": message[:1000],
            "key": key.decode("utf-8", "replace") if key else None,
            "original": raw.decode("utf-8", "replace"),
        }
    )
