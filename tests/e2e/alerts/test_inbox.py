"""The inbox page in headless Chromium against the real alerts app and database.

Alerts are seeded through the real code path (progress updates through the processor, as the
stream agent would hand them over); the browser signs in with a staff token, filters, reads the
evidence, acknowledges one alert and resolves another with a note, and the changes are checked
in the page and in PostgreSQL. A token of another tenant sees none of these alerts. Screenshots
go to the ``artifacts_dir`` (``test-artifacts/inbox.png``).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, expect

from services.alerts import staff_repository as staff_repo
from services.alerts.inbox import CSP
from tests.integration.alerts.conftest import T0, Running, StartAlerts, learner, progress

pytestmark = pytest.mark.timeout(180)

DS = "data-science-2026"
CYBER = "cyber-2026"
# learner 1 never gets three right in a row: wheel-spinning after 10 attempts
WHEEL = [False, False, True, False, True, False, False, True, False, True, False, False]
WHEEL_MASTERY = [0.3, 0.26, 0.34, 0.3, 0.37, 0.33, 0.29, 0.36, 0.32, 0.38, 0.34, 0.31]
# ways of turning a string into markup: the page uses none of them
HTML_SINKS = re.compile(r"\.(inner|outer)HTML\s*[+]?=|insertAdjacentHTML|document\.write|eval\(")
NOTE = "Called them <b>today</b>; a tutor session is booked for Friday."


async def _seed(running: Running) -> None:
    """acme: wheel-spinning (learner 1, data science, team coaching), failure streak (learner 2,
    cyber, no team), gaming (learner 3, data science, team coaching); globex: a failure streak."""
    async with running.alerts.pool.acquire() as conn:
        await staff_repo.upsert_team(conn, "acme", "coaching", "Coaching")
        await staff_repo.insert_rule(conn, "acme", "coaching", programme=DS)

    async def feed(tenant: str, who: str, payloads: list[dict[str, Any]]) -> None:
        table: dict[bytes, bytes] = {}
        for i, payload in enumerate(payloads):
            env = progress(T0 + timedelta(minutes=3 * i), tenant=tenant, who=who, **payload)
            assert await running.apply(env, table) == "applied"

    await feed(
        "acme",
        learner(1),
        [
            {
                "competency": "python.loops",
                "programme": DS,
                "correct": ok,
                "mastery_after": m,
                "attempts": i + 1,
            }
            for i, (ok, m) in enumerate(zip(WHEEL, WHEEL_MASTERY, strict=True))
        ],
    )
    streak = {"competency": "net.subnets", "programme": CYBER, "business_unit": "security"}
    await feed("acme", learner(2), [{**streak, "correct": False}] * 5)
    fast = {"competency": "sql.joins", "programme": DS, "correct": True, "duration_s": 1.0}
    await feed("acme", learner(3), [fast] * 5)
    await feed("globex", learner(1), [{**streak, "correct": False}] * 5)


async def _alerts(running: Running, tenant: str) -> dict[str, dict[str, Any]]:
    rows = await running.fetch("SELECT * FROM alerts WHERE tenant = $1", tenant)
    return {r["kind"]: r for r in rows}


def _watch(page: Page) -> list[str]:
    """Console errors (CSP violations among them) and uncaught exceptions of the page."""
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text}")

    page.on("console", console)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    return problems


async def _sign_in(page: Page, base: str, token: str) -> None:
    await page.goto(f"{base}/inbox")
    await expect(page.get_by_role("heading", name="Sign in to the inbox")).to_be_visible()
    await page.get_by_label("Staff token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#inbox")).to_be_visible()


async def test_inbox_page_is_static_and_locked_down(start_alerts: StartAlerts) -> None:
    running = await start_alerts()
    async with running.http.get(f"{running.base}/inbox") as r:
        assert r.status == 200
        assert r.content_type == "text/html"
        assert r.headers["Content-Security-Policy"] == CSP
        assert "default-src 'self'" in CSP
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        html = await r.text()
    assert 'src="inbox/inbox.js"' in html
    assert "http://" not in html
    assert "https://" not in html  # nothing from a CDN
    for name, content_type in (("inbox.js", "text/javascript"), ("inbox.css", "text/css")):
        async with running.http.get(f"{running.base}/inbox/{name}") as r:
            assert r.status == 200
            assert r.content_type == content_type
            assert "Content-Security-Policy" in r.headers
            body = await r.text()
        assert not HTML_SINKS.search(body)
        assert "https://" not in body
    async with running.http.get(f"{running.base}/inbox/app.py") as r:
        assert r.status == 404
    async with running.http.get(f"{running.base}/inbox/", allow_redirects=False) as r:
        assert r.status == 302


async def test_inbox_in_chromium(
    start_alerts: StartAlerts, browser: Browser, artifacts_dir: Path
) -> None:
    running = await start_alerts()
    await _seed(running)
    acme = await _alerts(running, "acme")
    assert set(acme) == {"wheel_spinning", "failure_streak", "gaming"}
    globex = await _alerts(running, "globex")
    assert set(globex) == {"failure_streak"}
    lead = await running.token("acme", "lead")
    other = await running.token("globex", "lead")

    context = await browser.new_context(viewport={"width": 1440, "height": 1000})
    page = await context.new_page()
    problems = _watch(page)

    # a wrong token is refused, and says so
    await page.goto(f"{running.base}/inbox")
    await page.get_by_label("Staff token").fill("sst_not-a-real-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#token-error")).to_have_text("This token is unknown or revoked.")
    problems.clear()  # the browser logs the 401 itself

    await _sign_in(page, running.base, lead)
    await expect(page.locator("#who-name")).to_have_text("lead")
    await expect(page.locator("#who-scope")).to_have_text("acme · all teams")
    rows = page.locator("#alert-rows tr")
    await expect(rows).to_have_count(3)
    await expect(page.locator("#count")).to_have_text("3 alerts")
    assert sorted(await rows.evaluate_all("rs => rs.map(r => r.dataset.alertId)")) == sorted(
        str(a["id"]) for a in acme.values()
    )

    # filters: by kind, by team, then back
    kind = page.get_by_label("Kind")
    await kind.select_option("gaming")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-kind", "gaming")
    await kind.select_option("")
    await page.get_by_label("Team").fill("coaching")
    await page.get_by_role("button", name="Apply").click()
    await expect(rows).to_have_count(2)
    await page.get_by_role("button", name="Clear").click()
    await expect(rows).to_have_count(3)
    await kind.select_option("wheel_spinning")
    await expect(rows).to_have_count(1)

    # open the wheel-spinning alert: its evidence
    await rows.first.get_by_role("button").click()
    detail = page.locator("#detail-body")
    await expect(detail).to_be_visible()
    await expect(page.locator("#detail-heading")).to_have_text("Wheel-spinning · python.loops")
    await expect(page.locator("#detail-status")).to_have_text("Open")
    counts = page.locator("#evidence-counts")
    await expect(counts).to_contain_text("Attempts")
    assert await counts.locator("dt:text-is('Attempts') + dd").text_content() == "12"
    rule = page.locator("#evidence-rule")
    await expect(rule).to_contain_text("10 attempts in a row without knowing the skill")
    await expect(counts.locator("dt:text-is('Stall probability') + dd")).to_have_text(
        re.compile(r"^0\.9\d*$")
    )
    wheel_ids = acme["wheel_spinning"]["evidence"]["statement_ids"]
    await expect(page.locator("#statement-count")).to_have_text(str(len(wheel_ids)))
    await expect(page.locator("#statement-ids li")).to_have_text(wheel_ids)
    spark = page.locator("#sparkline svg")
    await expect(spark).to_be_visible()
    points = await spark.locator("polyline").get_attribute("points")
    assert points is not None
    assert len(points.split()) == len(acme["wheel_spinning"]["evidence"]["mastery_trajectory"])
    await expect(spark).to_have_attribute("aria-label", "Mastery over 12 points, from 0.30 to 0.31")

    # acknowledge: the page and the database agree
    await page.get_by_role("button", name="Acknowledge").click()
    await expect(page.locator("#status")).to_have_text("Alert acknowledged.")
    await expect(page.locator("#detail-status")).to_have_text("Acknowledged")
    await expect(rows.first.locator(".status-cell")).to_contain_text("Acknowledged")
    await expect(page.get_by_role("button", name="Acknowledge")).to_be_disabled()
    await expect(page.locator("#history li").last).to_contain_text("Acknowledged")
    await expect(page.locator("#history li").last).to_contain_text("by lead")
    wheel_id = acme["wheel_spinning"]["id"]
    assert await running.fetchval("SELECT status FROM alerts WHERE id = $1", wheel_id) == (
        "acknowledged"
    )
    await page.locator("#trajectory").scroll_into_view_if_needed()
    await page.screenshot(path=str(artifacts_dir / "inbox-evidence.png"), full_page=True)

    # resolve the failure streak with a note (markup in it stays text)
    await kind.select_option("")
    await expect(rows).to_have_count(3)
    streak_id = str(acme["failure_streak"]["id"])
    await page.locator(f"#alert-rows tr[data-alert-id='{streak_id}'] button").click()
    await expect(page.locator("#detail-heading")).to_have_text("Failure streak · net.subnets")
    assert await counts.locator("dt:text-is('Wrong in a row') + dd").text_content() == "5"
    await expect(page.locator("#trajectory")).to_be_hidden()
    await page.get_by_label("Note").fill(NOTE)
    await page.get_by_role("button", name="Resolve").click()
    await expect(page.locator("#status")).to_have_text("Alert resolved.")
    await expect(page.locator("#detail-status")).to_have_text("Resolved")
    last = page.locator("#history li").last
    await expect(last).to_contain_text("Resolved")
    await expect(last).to_contain_text("by lead")
    await expect(last.locator("blockquote")).to_have_text(NOTE)
    assert await page.locator("#history b").count() == 0
    await expect(rows).to_have_count(2)  # the default view shows alerts not resolved
    row = await running.fetch(
        "SELECT status, note, resolution FROM alerts WHERE id = $1", streak_id
    )
    assert row == [{"status": "resolved", "note": NOTE, "resolution": "staff"}]
    actors = await running.fetch(
        "SELECT action, actor, details->>'note' AS note FROM alert_history"
        " WHERE alert_id = $1 ORDER BY id",
        streak_id,
    )
    assert actors[-1] == {"action": "resolved", "actor": "staff:lead", "note": NOTE}

    await page.get_by_label("Status").select_option("")
    await expect(rows).to_have_count(3)
    await expect(page.locator(f"#alert-rows tr[data-alert-id='{streak_id}']")).to_have_attribute(
        "data-status", "resolved"
    )
    await page.screenshot(path=str(artifacts_dir / "inbox.png"), full_page=True)
    assert (artifacts_dir / "inbox.png").stat().st_size > 10_000

    # the token stays in this tab's sessionStorage: a reload keeps the session (and the filters
    # go back to the default view, alerts not resolved)
    assert await page.evaluate("() => sessionStorage.length") == 1
    await page.reload()
    await expect(page.locator("#who-name")).to_have_text("lead")
    await expect(rows).to_have_count(2)

    # another tenant's token sees none of acme's alerts
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in to the inbox")).to_be_visible()
    assert await page.evaluate("() => sessionStorage.length") == 0
    await page.get_by_label("Staff token").fill(other)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#who-scope")).to_have_text("globex · all teams")
    await expect(rows).to_have_count(1)
    seen = await rows.evaluate_all("rs => rs.map(r => r.dataset.alertId)")
    assert seen == [str(globex["failure_streak"]["id"])]
    assert not set(seen) & {str(a["id"]) for a in acme.values()}
    await page.get_by_label("Status").select_option("")
    await expect(rows).to_have_count(1)

    assert problems == []
    await context.close()
