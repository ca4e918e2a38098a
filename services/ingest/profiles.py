"""Per-tenant validation profiles (``strict`` unless set otherwise), cached in memory.

Stored in ``tenant_settings``; set with ``python -m services.ingest.cli tenants set-profile``.
A change takes effect within ``cache_seconds``.
"""

from __future__ import annotations

import time
from typing import Any

import asyncpg

from services.ingest import repository as repo
from shared.xapi import Profile


class TenantProfiles:
    def __init__(self, pool: asyncpg.Pool[Any], *, cache_seconds: float = 60.0) -> None:
        self._pool = pool
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[Profile, float]] = {}

    async def get(self, tenant: str) -> Profile:
        now = time.monotonic()
        cached = self._cache.get(tenant)
        if cached is not None and cached[1] > now:
            return cached[0]
        async with self._pool.acquire(timeout=repo.ACQUIRE_TIMEOUT_SECONDS) as conn:
            profile = await repo.fetch_profile(conn, tenant)
        if self._cache_seconds > 0:
            self._cache[tenant] = (profile, now + self._cache_seconds)
        return profile
