"""``python -m services.progress``: run the progress service until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio

from services.progress.app import run
from services.progress.config import ProgressSettings
from shared.logs import setup_logging
from shared.service import run_until_stopped


def main() -> None:
    settings = ProgressSettings()
    setup_logging("progress", settings.log_level)

    async def serve(stop: asyncio.Event) -> None:
        await run(settings, stop)

    run_until_stopped(serve, event_loop=settings.event_loop)


if __name__ == "__main__":
    main()
