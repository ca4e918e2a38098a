"""Missed live sessions on the real stack: the schedule loaded by the CLI from a framework file,
attendance arriving as progress updates, the scanner on the event clock raising the alert (with
its evidence, routed, on the outbox) and resolving it when the learner attends; and a replay of
the same updates, scanned only once at the end, giving the same alerts."""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.alerts import cli
from services.alerts.config import AlertsSettings
from shared.envelope import Envelope
from shared.framework import ref_to_key
from tests.conftest import fresh_schema
from tests.integration.alerts.conftest import T0, Running, StartAlerts, progress

pytestmark = pytest.mark.timeout(90)

HOME = "https://lms.example.com"
PROGRAMME = "ds-2026"
DAY = timedelta(days=1)
SESSIONS = 4  # per cohort, every 3.5 days from T0


def session_start(n: int, cohort: str) -> Any:
    return T0 + timedelta(hours=84 * (n - 1) + (2 if cohort == "c2" else 0))


def framework_file(path: Path, sessions: int = SESSIONS) -> Path:
    cohorts = {"c1": ["u-1", "u-2"], "c2": ["u-3"]}
    doc = {
        "tenant": "acme",
        "framework": "acme-academy",
        "version": 1,
        "effective_from": "2026-01-01T00:00:00Z",
        "competencies": [{"id": "py.basics", "name": "Python basics"}],
        "programmes": [
            {
                "id": PROGRAMME,
                "name": "Data science 2026",
                "business_unit": "retail",
                "start": "2026-02-01",
                "end": "2026-06-30",
                "competencies": ["py.basics"],
                "cohorts": [
                    {"id": c, "learners": [f"account:{HOME}|{u}" for u in users]}
                    for c, users in cohorts.items()
                ],
                "sessions": [
                    {
                        "id": f"{c}-s{n}",
                        "activity_id": f"https://vc.example.com/sessions/{c}-{n}",
                        "start": session_start(n, c).isoformat(),
                        "end": (session_start(n, c) + timedelta(hours=1)).isoformat(),
                        "cohort": c,
                    }
                    for c in cohorts
                    for n in range(1, sessions + 1)
                ],
            }
        ],
    }
    path.write_bytes(orjson.dumps(doc))
    return path


def key(user: str, settings: AlertsSettings) -> str:
    return ref_to_key(f"account:{HOME}|{user}", settings.learner_key_salt.get_secret_value())


def timeline(settings: AlertsSettings) -> list[Envelope]:
    """u-1 studies every day but misses c1-s1 and c1-s2, then attends c1-s3 and c1-s4; u-2 and
    u-3 attend every session of their cohorts. Event-time order."""
    k1, k2, k3 = (key(u, settings) for u in ("u-1", "u-2", "u-3"))
    out: list[Envelope] = []

    def attend(who: str, cohort: str, n: int) -> None:
        at = session_start(n, cohort) + timedelta(minutes=61)
        session = f"{cohort}-s{n}"
        update: dict[str, Any] = {"evidence": "attendance", "competency": None}
        out.append(progress(at, who=who, programme=PROGRAMME, session_id=session, **update))

    for n in range(1, SESSIONS + 1):
        attend(k2, "c1", n)
        attend(k3, "c2", n)
        if n >= 3:
            attend(k1, "c1", n)
    out.extend(
        progress(T0 + day * DAY + timedelta(hours=18), who=k1, evidence="activity", competency=None)
        for day in range(15)
    )
    return sorted(out, key=lambda e: e.occurred_at)


async def load(settings: AlertsSettings, *argv: str) -> int:
    return await cli.run(list(argv), settings)


async def alerts_of(running: Running) -> list[dict[str, Any]]:
    return await running.fetch(
        "SELECT learner_key, kind, status, severity, support, team, programme, business_unit,"
        " evidence, first_seen_at, resolved_at, signals FROM alerts ORDER BY first_seen_at"
    )


async def setup(running: Running, path: Path) -> None:
    settings = running.alerts.settings
    assert await load(settings, "teams", "add", "--tenant", "acme", "--team", "care",
                      "--name", "Pastoral care") == 0  # fmt: skip
    assert await load(settings, "rules", "add", "--tenant", "acme", "--team", "care",
                      "--kind", "missed_sessions") == 0  # fmt: skip
    two = '{"missed_sessions": {"m": 2}}'  # the default is 3: set per programme
    assert await load(settings, "settings", "set", "--tenant", "acme", "--programme", PROGRAMME,
                      "--json", two) == 0  # fmt: skip
    file = framework_file(path)
    assert await load(settings, "programmes", "load", "--tenant", "acme", "--file", str(file)) == 0


async def test_missed_sessions_raised_with_evidence_then_resolved_on_attendance(
    start_alerts: StartAlerts, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    running = await start_alerts()
    settings = running.alerts.settings
    await setup(running, tmp_path / "framework.json")
    assert "programme ds-2026: 8 live sessions, 3 learners in cohorts" in capsys.readouterr().out
    k1 = key("u-1", settings)
    tables: dict[str, dict[bytes, bytes]] = {}
    scanner = running.alerts.scanner
    second_due = session_start(2, "c1") + timedelta(hours=3)  # end + 2 h of grace
    opened_by_scan: list[int] = []
    resolved_seen = False
    for env in timeline(settings):
        assert await running.apply(env, tables.setdefault(env.learner_key, {})) == "applied"
        counts = await scanner.scan_once()
        opened_by_scan.append(counts["missed_sessions"])
        found = await alerts_of(running)
        assert len(found) <= 1
        if env.occurred_at < second_due:
            assert found == [], f"raised before it was due, at {env.occurred_at}"
        elif found and found[0]["status"] == "resolved":
            resolved_seen = True
    assert sum(opened_by_scan) == 1
    assert resolved_seen
    [alert] = await alerts_of(running)
    attended = session_start(3, "c1") + timedelta(minutes=61)
    assert alert["learner_key"] == k1
    assert (alert["kind"], alert["status"], alert["severity"]) == (
        "missed_sessions", "resolved", "medium",
    )  # fmt: skip
    assert (alert["support"], alert["team"]) == ("pastoral", "care")
    assert (alert["programme"], alert["business_unit"]) == (PROGRAMME, "retail")
    assert alert["first_seen_at"] == second_due
    assert alert["resolved_at"] == attended
    evidence = alert["evidence"]
    assert evidence["session_ids"] == ["c1-s1", "c1-s2"]
    assert evidence["missed_in_a_row"] == 2
    history = await running.fetch("SELECT action, actor, details FROM alert_history ORDER BY id")
    assert [h["action"] for h in history] == ["opened", "resolved"]
    assert history[1]["details"]["attended_session_id"] == "c1-s3"
    events = await running.fetch("SELECT envelope FROM outbox ORDER BY id")
    payloads = [orjson.loads(e["envelope"])["payload"] for e in events]
    assert [(p["kind"], p["action"]) for p in payloads] == [
        ("missed_sessions", "opened"),
        ("missed_sessions", "resolved"),
    ]
    assert payloads[0]["evidence"]["session_ids"] == ["c1-s1", "c1-s2"]
    # the stream recorded what the walk needs
    rows = await running.fetch(
        "SELECT learner_key, cohort, checked_through, missed FROM session_learners"
        " ORDER BY cohort, learner_key"
    )
    assert {r["learner_key"]: r["cohort"] for r in rows} == {
        k1: "c1", key("u-2", settings): "c1", key("u-3", settings): "c2",
    }  # fmt: skip
    last_end = session_start(SESSIONS, "c1") + timedelta(hours=1)
    assert [r["missed"] for r in rows if r["learner_key"] == k1] == [[]]
    assert [r["checked_through"] for r in rows if r["learner_key"] == k1] == [last_end]


def comparable(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (r["learner_key"], r["kind"], r["status"], r["severity"], r["team"], r["first_seen_at"],
         r["resolved_at"], orjson.dumps(r["evidence"], option=orjson.OPT_SORT_KEYS))
        for r in rows
    ]  # fmt: skip


async def test_a_replay_scanned_once_gives_the_alerts_of_the_live_run(
    start_alerts: StartAlerts, tmp_path: Path, database_url: str
) -> None:
    live = await start_alerts()
    await setup(live, tmp_path / "framework.json")
    events = timeline(live.alerts.settings)
    tables: dict[str, dict[bytes, bytes]] = {}
    for env in events:
        await live.apply(env, tables.setdefault(env.learner_key, {}))
        await live.alerts.scanner.scan_once()
    async with (
        fresh_schema(database_url, f"test_{uuid.uuid4().hex[:12]}_replay") as schema,
        contextlib.AsyncExitStack() as stack,
    ):
        replay = await start_alerts(stack=stack, db_schema=schema)
        await setup(replay, tmp_path / "framework.json")
        replayed: dict[str, dict[bytes, bytes]] = {}
        for env in events:
            await replay.apply(env, replayed.setdefault(env.learner_key, {}))
        assert (await replay.alerts.scanner.scan_once())["missed_sessions"] == 1
        assert (await replay.alerts.scanner.scan_once())["missed_sessions"] == 0
        expected = comparable(await alerts_of(live))
        assert len(expected) == 1
        assert comparable(await alerts_of(replay)) == expected
        history = (
            "SELECT a.kind, h.action FROM alert_history h"
            " JOIN alerts a ON a.id = h.alert_id ORDER BY h.id"
        )
        assert await replay.fetch(history) == await live.fetch(history)


async def test_a_learner_known_only_from_evidence_is_expected_from_the_first_evidence(
    start_alerts: StartAlerts, tmp_path: Path
) -> None:
    """Programme-wide sessions (no cohort) expect every learner of the programme; one that no
    cohort lists is charged only with the sessions ending after their first evidence."""
    running = await start_alerts()
    settings = running.alerts.settings
    path = framework_file(tmp_path / "framework.json")
    doc = orjson.loads(path.read_bytes())
    for session in doc["programmes"][0]["sessions"]:
        session.pop("cohort")
    path.write_bytes(orjson.dumps(doc))
    two = '{"missed_sessions": {"m": 2}}'
    assert await load(settings, "settings", "set", "--tenant", "acme", "--json", two) == 0
    assert await load(settings, "programmes", "load", "--tenant", "acme", "--file", str(path)) == 0
    late = "f" * 32  # in no cohort; first seen after the first day's sessions
    first = T0 + timedelta(hours=12)
    table: dict[bytes, bytes] = {}
    for day in range(12):
        at = first + day * DAY
        await running.apply(progress(at, who=late, programme=PROGRAMME, evidence="activity"), table)
    # the three learners the cohorts list never showed up: expected from the first session
    assert (await running.alerts.scanner.scan_once())["missed_sessions"] == 4
    by_learner = {a["learner_key"]: a for a in await alerts_of(running)}
    listed = {key(u, settings) for u in ("u-1", "u-2", "u-3")}
    assert set(by_learner) == listed | {late}
    for k in listed:
        assert by_learner[k]["evidence"]["session_ids"][:2] == ["c1-s1", "c2-s1"]
    alert = by_learner[late]
    # c1-s1 and c2-s1 ended before the first evidence: the run starts at c1-s2
    ids = [f"{c}-s{n}" for n in range(2, SESSIONS + 1) for c in ("c1", "c2")]
    assert alert["evidence"]["session_ids"] == ids
    assert alert["first_seen_at"] == session_start(2, "c2") + timedelta(hours=3)
    [row] = await running.fetch(
        "SELECT cohort, since FROM session_learners WHERE learner_key = $1", late
    )
    assert row == {"cohort": None, "since": first}
