"""The alerts app in-process (the fixtures of ``tests/integration/alerts/conftest.py``) and a
headless Chromium driven by Playwright for the inbox page.

Chromium is Debian's (``/usr/bin/chromium``, installed by ``deploy/local/browser.sh``); Playwright
only drives it, so ``playwright install`` (a download) is never needed. Without Chromium the
tests FAIL with the command that installs it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.integration.alerts.conftest import settings, start_alerts

__all__ = ["browser", "settings", "start_alerts"]

CHROMIUM = Path(os.environ.get("SKILLSTREAM_CHROMIUM", "/usr/bin/chromium"))
# as in the machine notes: no sandbox as root, and nothing that reaches for the network
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A fresh headless Chromium (Playwright gives every launch a new, empty profile)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: run `deploy/local/browser.sh` "
            "(Debian's chromium and chromium-driver; needs root) or set SKILLSTREAM_CHROMIUM",
            pytrace=False,
        )
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            yield chromium
        finally:
            await chromium.close()
