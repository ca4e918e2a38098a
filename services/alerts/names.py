"""Learner display names for the staff allowed to see them, asked of ingest.

Names and raw identifiers stay in ingest; the alerts service knows learner keys only. When a
staff token has ``see_names`` and the service is configured with ingest's address and directory
token (``ALERTS_INGEST_URL``, ``ALERTS_INGEST_DIRECTORY_TOKEN``), the API adds ``learner_name``
to the alerts it returns, asking ingest's ``POST /directory/names`` for the keys of one page at
a time. Names are an aid, not a dependency: if ingest does not answer in time, alerts are
returned without names (and a warning is logged), never an error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final

import aiohttp
import orjson

log = logging.getLogger(__name__)

PATH: Final = "/directory/names"
MAX_KEYS: Final = 500  # ingest's limit per request


class LearnerNames:
    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, token: str, timeout: float = 2.0
    ) -> None:
        self._session = session
        self._url = base_url.rstrip("/") + PATH
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def lookup(self, tenant: str, keys: Iterable[str]) -> dict[str, str]:
        """Names of the tenant's learners among ``keys`` that ingest knows a name for."""
        wanted = sorted(set(keys))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), MAX_KEYS):
            body = orjson.dumps(
                {"tenant": tenant, "learner_keys": wanted[start : start + MAX_KEYS]}
            )
            try:
                async with self._session.post(
                    self._url, data=body, headers=self._headers, timeout=self._timeout
                ) as resp:
                    if resp.status != 200:
                        log.warning(
                            "ingest refused a names lookup; alerts shown without names",
                            extra={"status": resp.status},
                        )
                        return found
                    names = orjson.loads(await resp.read()).get("names", {})
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.warning(
                    "names lookup failed; alerts shown without names",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:200]},
                )
                return found
            found.update({k: v for k, v in names.items() if isinstance(v, str)})
        return found
