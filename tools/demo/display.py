"""The demo's terminal view: an ANSI redraw on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, TextIO, get_args

from shared.alert_events import AlertKind
from tools.demo.metrics import Metrics, describe, format_count

KINDS: Final = get_args(AlertKind)
CLEAR: Final = "\x1b[H\x1b[2J"
BOLD: Final = "\x1b[1m"
DIM: Final = "\x1b[2m"
RESET: Final = "\x1b[0m"


@dataclass
class Progress:
    """What the stream has done so far (updated by the sender, read by the display)."""

    generated: int = 0
    sent: int = 0
    event_ms: int | None = None
    finished: bool = False
    error: str | None = None


@dataclass
class Display:
    header: list[str]
    urls: list[str]
    out: TextIO = field(default_factory=lambda: sys.stdout)
    tty: bool = False
    plain_lines: int = 0

    def __post_init__(self) -> None:
        self.tty = self.out.isatty()

    def intro(self) -> None:
        """Printed once (also in plain mode, where it is not redrawn)."""
        if not self.tty:
            for line in [*self.header, "", *self.urls, ""]:
                print(line, file=self.out)
            self.out.flush()

    def status_lines(self, elapsed: float, progress: Progress, m: Metrics) -> list[str]:
        event = (
            datetime.fromtimestamp(progress.event_ms / 1000, UTC).strftime("%a %d %b %H:%M")
            if progress.event_ms is not None
            else "-"
        )
        kinds = [(k, m.raised.get(k, 0.0)) for k in KINDS if m.raised.get(k)]
        stream = "finished" if progress.finished else "streaming"
        if progress.error:
            stream = f"stopped: {progress.error}"
        return [
            f"elapsed {elapsed:5.0f} s   simulated time {event}   stream {stream}",
            (
                f"statements  sent {format_count(progress.sent)} of "
                f"{format_count(progress.generated)} · accepted {format_count(m.accepted)} · "
                f"rejected {format_count(m.rejected)} · published {format_count(m.published)}"
            ),
            (
                f"mastery     statements processed {format_count(m.processed)} · "
                f"mastery updates {format_count(m.updates)}"
            ),
            f"alerts      raised {format_count(m.raised_total)}: {describe(kinds)}",
        ]

    def render(self, elapsed: float, progress: Progress, m: Metrics) -> None:
        lines = self.status_lines(elapsed, progress, m)
        if self.tty:
            text = [
                CLEAR + BOLD + self.header[0] + RESET,
                *self.header[1:],
                "",
                *lines,
                "",
                *self.urls,
                "",
                DIM + "Ctrl-C stops everything." + RESET,
            ]
            self.out.write("\n".join(text) + "\n")
        else:
            self.out.write(
                f"[{elapsed:4.0f}s] {lines[0]}\n"
                + "".join(f"        {line}\n" for line in lines[1:])
            )
        self.out.flush()
