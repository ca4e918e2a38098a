from __future__ import annotations

import base64

import pytest
from pydantic import SecretStr

from services.ingest import cli
from services.ingest.config import IngestSettings
from tests.integration.ingest.conftest import StartIngest


async def test_credentials_create_list_revoke(
    start_ingest: StartIngest,
    database_url: str,
    db_schema: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = await start_ingest(auth_cache_seconds=0)
    settings = IngestSettings(database_url=SecretStr(database_url), db_schema=db_schema)
    assert (
        await cli.run(["credentials", "create", "--tenant", "initech", "--name", "lms9"], settings)
        == 0
    )
    out = capsys.readouterr().out
    lines = dict(line.split(":", 1) for line in out.strip().splitlines())
    username, secret = lines["username"].strip(), lines["secret"].strip()
    assert username == "initech.lms9"
    assert (
        await cli.run(["credentials", "create", "--tenant", "initech", "--name", "lms9"], settings)
        == 1
    )
    capsys.readouterr()
    assert await cli.run(["credentials", "list", "--tenant", "initech"], settings) == 0
    listed = capsys.readouterr().out
    assert "initech.lms9\tactive" in listed
    assert secret not in listed

    header = "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()
    headers = {"Authorization": header, "X-Experience-API-Version": "2.0.0"}
    url = f"{run.base}/xapi/statements"
    async with run.http.get(url, params={"statementId": "6d1b9a5e-5a57-4f67-9a8c-2f8e2d1d0c11"},
                            headers=headers) as r:  # fmt: skip
        assert r.status == 404  # authenticated, nothing there
    assert (
        await cli.run(["credentials", "revoke", "--tenant", "initech", "--name", "lms9"], settings)
        == 0
    )
    async with run.http.get(url, params={"statementId": "6d1b9a5e-5a57-4f67-9a8c-2f8e2d1d0c11"},
                            headers=headers) as r:  # fmt: skip
        assert r.status == 401
    assert (
        await cli.run(["credentials", "create", "--tenant", "Bad Tenant", "--name", "x"], settings)
        == 2
    )
