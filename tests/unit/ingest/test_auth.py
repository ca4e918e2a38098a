from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from services.ingest import auth
from services.ingest.auth import (
    SCRYPT_N,
    Authenticator,
    Principal,
    new_credential,
    parse_basic,
    verify_secret,
)
from services.ingest.errors import UnauthorizedError
from services.ingest.repository import CredentialRow


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


class FakeConn:
    def __init__(self, rows: dict[tuple[str, str], CredentialRow]) -> None:
        self.rows = rows
        self.queries = 0

    async def fetchrow(self, _sql: str, tenant: str, name: str) -> dict[str, Any] | None:
        self.queries += 1
        row = self.rows.get((tenant, name))
        if row is None:
            return None
        return {
            "tenant": row.tenant,
            "name": row.name,
            "salt": row.salt,
            "secret_hash": row.secret_hash,
            "scrypt_n": row.n,
            "scrypt_r": row.r,
            "scrypt_p": row.p,
            "revoked": row.revoked,
        }


class FakePool:
    def __init__(self, conn: FakeConn) -> None:
        self.conn = conn
        self.timeout: float | None = None

    @asynccontextmanager
    async def acquire(self, *, timeout: float | None = None) -> AsyncIterator[FakeConn]:  # noqa: ASYNC109 - asyncpg's signature
        self.timeout = timeout
        yield self.conn


@pytest.fixture(scope="module")
def credential() -> tuple[CredentialRow, str]:
    return new_credential("acme", "lms1")


def make_auth(
    rows: dict[tuple[str, str], CredentialRow], **kw: Any
) -> tuple[Authenticator, FakeConn]:
    conn = FakeConn(rows)
    return Authenticator(FakePool(conn), **kw), conn  # type: ignore[arg-type]


def test_hash_uses_scrypt_parameters_and_verifies(credential: tuple[CredentialRow, str]) -> None:
    row, secret = credential
    assert (row.n, row.r, row.p) == (SCRYPT_N, 8, 1)
    assert len(row.salt) == 16
    assert verify_secret(row, secret)
    assert not verify_secret(row, secret + "x")
    other, _ = new_credential("acme", "lms1", secret)
    assert other.salt != row.salt
    assert other.secret_hash != row.secret_hash


def test_bad_credential_names_are_refused() -> None:
    with pytest.raises(ValueError, match="credential name"):
        new_credential("acme", "has space")


@pytest.mark.parametrize(
    ("header", "rule"),
    [
        (None, "auth.missing"),
        ("", "auth.missing"),
        ("Bearer abc", "auth.scheme"),
        ("Basic !!!", "auth.malformed"),
        ("Basic " + base64.b64encode(b"no-colon").decode(), "auth.malformed"),
    ],
)
def test_malformed_headers(header: str | None, rule: str) -> None:
    with pytest.raises(UnauthorizedError) as info:
        parse_basic(header)
    assert info.value.rule == rule
    assert info.value.status == 401


def test_username_is_tenant_dot_name() -> None:
    assert parse_basic(basic("acme.lms.1", "s:e:c")) == ("acme", "lms.1", "s:e:c")
    assert parse_basic(basic("nodot", "s")) == ("nodot", "", "s")


async def test_valid_credentials_and_cache(credential: tuple[CredentialRow, str]) -> None:
    row, secret = credential
    now = [100.0]
    authenticator, conn = make_auth({("acme", "lms1"): row}, clock=lambda: now[0])
    header = basic("acme.lms1", secret)
    assert await authenticator.authenticate(header) == Principal("acme", "lms1")
    assert await authenticator.authenticate(header) == Principal("acme", "lms1")
    assert conn.queries == 1  # the second came from the cache
    now[0] += 61
    await authenticator.authenticate(header)
    assert conn.queries == 2  # expired


async def test_wrong_secret_is_401_and_not_cached(credential: tuple[CredentialRow, str]) -> None:
    row, _ = credential
    authenticator, conn = make_auth({("acme", "lms1"): row})
    for _ in range(2):
        with pytest.raises(UnauthorizedError):
            await authenticator.authenticate(basic("acme.lms1", "wrong"))
    assert conn.queries == 2


async def test_revoked_is_401(credential: tuple[CredentialRow, str]) -> None:
    row, secret = credential
    revoked = CredentialRow(row.tenant, row.name, row.salt, row.secret_hash, 2**14, 8, 1, True)
    authenticator, _ = make_auth({("acme", "lms1"): revoked})
    with pytest.raises(UnauthorizedError):
        await authenticator.authenticate(basic("acme.lms1", secret))


@pytest.mark.parametrize("user", ["acme.unknown", "nodot", "other.lms1"])
async def test_unknown_users_still_run_scrypt(
    monkeypatch: pytest.MonkeyPatch, credential: tuple[CredentialRow, str], user: str
) -> None:
    row, secret = credential
    calls: list[CredentialRow] = []
    real = auth.verify_secret

    def spy(target: CredentialRow, value: str) -> bool:
        calls.append(target)
        return real(target, value)

    monkeypatch.setattr(auth, "verify_secret", spy)
    authenticator, _ = make_auth({("acme", "lms1"): row})
    with pytest.raises(UnauthorizedError) as info:
        await authenticator.authenticate(basic(user, secret))
    assert info.value.rule == "auth.invalid"
    assert len(calls) == 1
    assert calls[0].n == SCRYPT_N  # a dummy row with the same cost as a real one
    assert calls[0] is not row


class SlowConn(FakeConn):
    """Holds every credential read until released, so requests really overlap."""

    def __init__(self, rows: dict[tuple[str, str], CredentialRow]) -> None:
        super().__init__(rows)
        self.release = asyncio.Event()

    async def fetchrow(self, _sql: str, tenant: str, name: str) -> dict[str, Any] | None:
        await self.release.wait()
        return await super().fetchrow(_sql, tenant, name)


async def test_concurrent_requests_share_one_verification(
    monkeypatch: pytest.MonkeyPatch, credential: tuple[CredentialRow, str]
) -> None:
    row, secret = credential
    conn = SlowConn({("acme", "lms1"): row})
    authenticator = Authenticator(FakePool(conn))  # type: ignore[arg-type]
    runs: list[str] = []
    real = auth.verify_secret

    def counted(r: CredentialRow, s: str) -> bool:
        runs.append(s)
        return real(r, s)

    monkeypatch.setattr(auth, "verify_secret", counted)
    header = basic("acme.lms1", secret)
    tasks = [asyncio.create_task(authenticator.authenticate(header)) for _ in range(16)]
    await asyncio.sleep(0.01)
    conn.release.set()
    assert await asyncio.gather(*tasks) == [Principal("acme", "lms1")] * 16
    assert (conn.queries, len(runs)) == (1, 1)


async def test_concurrent_failures_are_shared_but_not_cached(
    credential: tuple[CredentialRow, str],
) -> None:
    row, _ = credential
    conn = SlowConn({("acme", "lms1"): row})
    authenticator = Authenticator(FakePool(conn))  # type: ignore[arg-type]
    header = basic("acme.lms1", "wrong")
    tasks = [asyncio.create_task(authenticator.authenticate(header)) for _ in range(4)]
    await asyncio.sleep(0.01)
    conn.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, UnauthorizedError) for r in results)
    assert conn.queries == 1
    with pytest.raises(UnauthorizedError):
        await authenticator.authenticate(header)
    assert conn.queries == 2  # a failure is never remembered


async def test_a_cancelled_verification_does_not_fail_the_waiters(
    credential: tuple[CredentialRow, str],
) -> None:
    row, secret = credential
    conn = SlowConn({("acme", "lms1"): row})
    authenticator = Authenticator(FakePool(conn))  # type: ignore[arg-type]
    header = basic("acme.lms1", secret)
    first = asyncio.create_task(authenticator.authenticate(header))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(authenticator.authenticate(header))
    await asyncio.sleep(0.01)
    first.cancel()  # e.g. the client of the first request hung up
    await asyncio.sleep(0.01)
    conn.release.set()
    assert await second == Principal("acme", "lms1")
    with pytest.raises(asyncio.CancelledError):
        await first
