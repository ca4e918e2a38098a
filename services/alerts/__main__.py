"""``python -m services.alerts``: run the alerts service until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio

from services.alerts.app import run
from services.alerts.config import AlertsSettings
from shared.logs import setup_logging
from shared.service import run_until_stopped


def main() -> None:
    settings = AlertsSettings()
    setup_logging("alerts", settings.log_level)

    async def serve(stop: asyncio.Event) -> None:
        await run(settings, stop)

    run_until_stopped(serve, event_loop=settings.event_loop)


if __name__ == "__main__":
    main()
