"""Process and port helpers of :mod:`tools.demo.pipeline` (Linux ``/proc`` where it matters).

Free ports (:func:`port_free`, :func:`free_port`), a child's death with its parent
(:func:`terminate_with_parent`), CPU seconds of one process or of the PostgreSQL and Kafka
servers (:func:`cpu_seconds`, :func:`server_cpu_seconds`) and whether a pid still runs
(:func:`pid_alive`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def terminate_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to send the child SIGTERM when its parent dies (prctl).

    Without it a demo or benchmark killed with SIGKILL (a timeout, a crashed terminal) leaves
    its services running. libc is looked up here, in the parent, so that the child between fork
    and exec makes one call and nothing else. ``None`` elsewhere than Linux.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def child() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    return child


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``), None when unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by the PostgreSQL server (every ``postgres`` process, backends
    included) and the Kafka broker (``java`` running ``kafka.Kafka``) on this machine: a
    whole-server figure, meaningful when nothing else uses them."""
    totals = {"postgres": 0.0, "kafka": 0.0}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text(encoding="ascii", errors="replace").strip()
            if comm == "postgres":
                server = "postgres"
            elif comm == "java" and b"kafka.Kafka" in (entry / "cmdline").read_bytes():
                server = "kafka"
            else:
                continue
        except OSError:
            continue
        used = cpu_seconds(int(entry.name))
        if used is not None:
            totals[server] += used
    return totals


def pid_alive(pid: int) -> bool:
    """True if ``pid`` names a running (not zombie) process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rpartition(")")[2].split()[0] not in {"Z", "X"}
