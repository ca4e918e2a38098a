"""``cli webhooks add --actions``: the subscription is stored; an unknown action is refused
before anything is written."""

from __future__ import annotations

import asyncpg
import pytest

from services.alerts.cli import run
from services.alerts.config import AlertsSettings


async def test_webhooks_add_with_actions(
    settings: AlertsSettings, database_url: str, db_schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--tenant", "acme"]
    assert await run(["teams", "add", *base, "--team", "coaching", "--name", "C"], settings) == 0
    hook = ["webhooks", "add", *base, "--team", "coaching", "--url", "http://x.invalid"]
    assert await run([*hook, "--actions", "opened, resolved,opened"], settings) == 0
    assert await run(hook, settings) == 0
    with pytest.raises(SystemExit):
        await run([*hook, "--actions", "opened,reopened"], settings)
    assert "reopened" in capsys.readouterr().err
    conn = await asyncpg.connect(database_url, server_settings={"search_path": db_schema})
    try:
        rows = await conn.fetch("SELECT actions FROM webhooks ORDER BY id")
    finally:
        await conn.close()
    assert [r["actions"] for r in rows] == [["opened", "resolved"], None]
