"""Staff tokens: bearer tokens scoped to one tenant and optionally one team.

A token is 32 random bytes (URL-safe base64, prefixed ``sst_``), printed once by
``python -m services.alerts.cli tokens create``; only its SHA-256 is stored (a random 256-bit
secret needs no slow hash: it cannot be guessed from its hash). A token with a team sees only
that team's alerts; one without sees every alert of its tenant. No token ever sees another
tenant's alerts: every query filters by the token's tenant.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

import asyncpg

from services.alerts.errors import UnauthorizedError

PREFIX = "sst_"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")


@dataclass(frozen=True)
class StaffPrincipal:
    tenant: str
    team: str | None
    name: str
    see_names: bool = False  # may see learner display names (cli: tokens create --see-names)

    @property
    def actor(self) -> str:
        return f"staff:{self.name}"


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


class StaffAuth:
    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    async def authenticate(self, header: str | None) -> StaffPrincipal:
        scheme, _, token = (header or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token.startswith(PREFIX):
            raise UnauthorizedError("a staff bearer token is required")
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT tenant, team, name, see_names FROM staff_tokens"
                " WHERE token_hash = $1 AND NOT revoked",
                hash_token(token),
            )
        if row is None:
            raise UnauthorizedError("unknown or revoked token")
        return StaffPrincipal(row["tenant"], row["team"], row["name"], row["see_names"])
