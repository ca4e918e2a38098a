"""HTTP Basic credentials, one set per tenant, kept as scrypt hashes in ``credentials``.

* The Basic username is ``<tenant>.<name>`` (tenants cannot contain a dot); the password is the
  secret printed once by ``python -m services.ingest.cli credentials create``.
* Secrets are hashed with ``hashlib.scrypt`` (n=2**14, r=8, p=1, 32 bytes) under a random
  per-credential salt; the parameters are stored per row, so they can be raised later.
* scrypt runs in a worker thread (``asyncio.to_thread``) so the event loop is never blocked.
* Unknown user, malformed username, revoked credential and wrong secret all run one scrypt
  (against a dummy hash when there is no row) and all answer the same 401: no timing or
  message difference tells whether a user exists.
* Throughput: a successful verification is remembered in memory for ``auth_cache_seconds``
  (default 60 s), keyed by the SHA-256 of the whole ``Authorization`` header (the secret itself is
  not kept). Without it every request would pay ~50 ms of CPU for scrypt. The price: a revoked
  credential keeps working on a running process for at most that long. Failures are never
  cached.
* Concurrent requests with the same uncached ``Authorization`` header share one verification
  (one database read, one scrypt) instead of each running their own: a client opening 16
  connections at once would otherwise pay 16 scrypts before the first answer. Each waiter gets
  the shared outcome, a 401 included (failures are still not cached afterwards).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import asyncpg

from services.ingest.errors import UnauthorizedError
from services.ingest.repository import ACQUIRE_TIMEOUT_SECONDS, CredentialRow, fetch_credential

SCRYPT_N: Final = 2**14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
HASH_BYTES: Final = 32
SALT_BYTES: Final = 16
_MAXMEM: Final = 64 * 1024 * 1024
NAME_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
REALM: Final = 'Basic realm="skillstream-xapi", charset="UTF-8"'


@dataclass(frozen=True)
class Principal:
    """Who sent a request: the tenant and the credential's name."""

    tenant: str
    name: str


def hash_secret(
    secret: str, salt: bytes, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = 1
) -> bytes:
    return hashlib.scrypt(
        secret.encode(), salt=salt, n=n, r=r, p=p, dklen=HASH_BYTES, maxmem=_MAXMEM
    )


def verify_secret(row: CredentialRow, secret: str) -> bool:
    """Constant-time check of ``secret`` against ``row`` (slow on purpose: scrypt)."""
    computed = hash_secret(secret, row.salt, row.n, row.r, row.p)
    return hmac.compare_digest(computed, row.secret_hash)


def new_credential(tenant: str, name: str, secret: str | None = None) -> tuple[CredentialRow, str]:
    """A credential row and its secret (generated unless given); store the row, show the
    secret once."""
    if not NAME_PATTERN.match(name):
        raise ValueError(f"credential name {name!r} must match {NAME_PATTERN.pattern}")
    secret = secret or secrets.token_urlsafe(32)
    salt = os.urandom(SALT_BYTES)
    row = CredentialRow(
        tenant, name, salt, hash_secret(secret, salt), SCRYPT_N, SCRYPT_R, SCRYPT_P, False
    )
    return row, secret


def username_of(tenant: str, name: str) -> str:
    return f"{tenant}.{name}"


def parse_basic(header: str | None) -> tuple[str, str, str]:
    """``(tenant, name, secret)`` from an ``Authorization: Basic`` value; tenant and name are
    empty strings when the username is not ``<tenant>.<name>``."""
    if not header:
        raise UnauthorizedError("credentials are required (HTTP Basic)", rule="auth.missing")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token:
        raise UnauthorizedError("only HTTP Basic credentials are accepted", rule="auth.scheme")
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise UnauthorizedError("malformed Basic credentials", rule="auth.malformed") from None
    username, sep, secret = decoded.partition(":")
    if not sep:
        raise UnauthorizedError("malformed Basic credentials", rule="auth.malformed")
    tenant, _, name = username.partition(".")
    return tenant, name, secret


class Authenticator:
    """Checks Basic credentials against the ``credentials`` table, with a short success cache."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        *,
        cache_seconds: float = 60.0,
        max_cached: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._ttl = cache_seconds
        self._max = max_cached
        self._clock = clock
        self._cache: dict[bytes, tuple[Principal, float]] = {}
        self._pending: dict[bytes, asyncio.Future[Principal]] = {}
        # verified against when there is no row: random, so it never matches
        self._dummy = CredentialRow(
            "", "", os.urandom(SALT_BYTES), os.urandom(HASH_BYTES), SCRYPT_N, SCRYPT_R, SCRYPT_P,
            False,
        )  # fmt: skip

    async def authenticate(self, header: str | None) -> Principal:
        """The principal of a valid, unrevoked credential; else :class:`UnauthorizedError`."""
        cache_key = hashlib.sha256((header or "").encode()).digest()
        now = self._clock()
        cached = self._cache.get(cache_key)
        if cached is not None and cached[1] > now:
            return cached[0]
        while (pending := self._pending.get(cache_key)) is not None:
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not pending.cancelled() or (task is not None and task.cancelling()):
                    raise
                # the request that was verifying went away: verify again (or join the next)
        future: asyncio.Future[Principal] = asyncio.get_running_loop().create_future()
        self._pending[cache_key] = future
        try:
            principal = await self._verify(header)
        except BaseException as exc:
            if isinstance(exc, Exception):
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning without waiters
            else:
                future.cancel()
            raise
        else:
            future.set_result(principal)
            if self._ttl > 0:
                self._remember(cache_key, principal, now + self._ttl)
            return principal
        finally:
            del self._pending[cache_key]

    async def _verify(self, header: str | None) -> Principal:
        tenant, name, secret = parse_basic(header)
        row: CredentialRow | None = None
        if tenant and name:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as conn:
                row = await fetch_credential(conn, tenant, name)
        ok = await asyncio.to_thread(verify_secret, row or self._dummy, secret)
        if row is None or row.revoked or not ok:
            raise UnauthorizedError("unknown, revoked or wrong credentials", rule="auth.invalid")
        return Principal(row.tenant, row.name)

    def _remember(self, key: bytes, principal: Principal, until: float) -> None:
        if len(self._cache) >= self._max:
            now = self._clock()
            self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
            if len(self._cache) >= self._max:
                self._cache.clear()
        self._cache[key] = (principal, until)

    def forget(self) -> None:
        """Drop every cached verification (e.g. after revoking a credential in-process)."""
        self._cache.clear()
