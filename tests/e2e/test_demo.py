"""``python -m tools.demo`` as a newcomer runs it: the three services start, the simulated
academy streams through them, alerts are raised, and nothing is left running afterwards.

The configuration (30 learners, 10 simulated days replayed 20,000 times faster than real time)
streams about 2,700 statements in under a minute; wheel-spinners and failure streaks raise
alerts within the first simulated day, about 20 s into the run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in {"Z", "X"}


def test_demo_streams_raises_alerts_and_stops_cleanly(
    kafka_bootstrap: str, database_url: str
) -> None:
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, DATABASE_URL=database_url)
    env.pop("SKILLSTREAM_LEARNER_KEY_SALT", None)
    began = time.monotonic()
    done = subprocess.run(
        [
            sys.executable, "-m", "tools.demo", "--duration", "60", "--learners", "30",
            "--days", "10", "--speedup", "20000", "--ports", "0,0,0", "--refresh", "2",
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=110, check=False,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert time.monotonic() - began < 110

    # the URLs and a staff token to paste
    assert re.search(r"http://127\.0\.0\.1:\d+/inbox", out), out
    assert re.search(r"acme: sst_\S+", out), out
    assert re.search(r"POST http://127\.0\.0\.1:\d+/xapi/statements", out), out
    assert out.count("/openapi.json") >= 2, out
    assert out.count("/metrics") >= 3, out

    # statements flowed through the whole pipeline
    summary = out[out.index("Summary after") :]
    accepted = int(re.search(r"accepted ([\d,]+)", summary)[1].replace(",", ""))  # type: ignore[index]
    processed = int(re.search(r"([\d,]+) statements processed", summary)[1].replace(",", ""))  # type: ignore[index]
    raised = int(re.search(r"([\d,]+) raised", summary)[1].replace(",", ""))  # type: ignore[index]
    assert accepted >= 500, summary
    assert processed >= 500, summary
    assert raised >= 1, summary
    assert re.search(r"(wheel_spinning|failure_streak) [1-9]", summary), summary

    # nothing is left running
    pids = [int(p) for p in re.findall(r"(?:ingest|progress|alerts) (\d+)", out.split("\n")[1])]
    assert len(pids) == 3, out
    assert "no service process left running" in out
    assert not [pid for pid in pids if _alive(pid)], pids
