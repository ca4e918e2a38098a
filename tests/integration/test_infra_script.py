"""deploy/local/infra.sh, run for real on spare ports with its own state directory.

The servers the other tests use are left alone: this starts a second Kafka and a second
PostgreSQL cluster (reusing the already fetched Kafka jars), checks that a second `up` is a no-op
and that `down` leaves no process behind.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.ports import answers, free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "local" / "infra.sh"


@pytest.fixture
def infra_env(tmp_path: Path) -> dict[str, str]:
    libs = ROOT / ".local" / "kafka" / "libs"
    if not (libs / ".complete").exists():  # servers given from outside: nothing fetched yet
        fetched = subprocess.run(
            [str(SCRIPT), "fetch"], capture_output=True, text=True, timeout=600, check=False
        )
        assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    # pytest's tmp_path is private to root: the script must cope (it moves the cluster)
    state = tmp_path / "state"
    state.mkdir()
    external = {"KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL"}
    env = {k: v for k, v in os.environ.items() if k not in external}
    env.update(
        SKILLSTREAM_LOCAL_DIR=str(state),
        SKILLSTREAM_KAFKA_LIBS=str(libs),
        SKILLSTREAM_KAFKA_PORT=str(free_port()),
        SKILLSTREAM_KAFKA_CONTROLLER_PORT=str(free_port()),
        SKILLSTREAM_PG_PORT=str(free_port()),
        KAFKA_HEAP_OPTS="-Xms256m -Xmx512m",
    )
    return env


def infra(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=180, check=False
    )


def test_up_twice_is_a_no_op_and_down_leaves_no_process(infra_env: dict[str, str]) -> None:
    kafka_port = int(infra_env["SKILLSTREAM_KAFKA_PORT"])
    pg_port = int(infra_env["SKILLSTREAM_PG_PORT"])
    state = Path(infra_env["SKILLSTREAM_LOCAL_DIR"])
    try:
        first = infra(infra_env, "up")
        assert first.returncode == 0, first.stdout + first.stderr
        assert "kafka: started" in first.stdout
        assert "postgres: started" in first.stdout
        assert answers(kafka_port)
        assert answers(pg_port)
        kafka_pid = int((state / "kafka" / "kafka.pid").read_text())

        second = infra(infra_env, "up")
        assert second.returncode == 0, second.stdout + second.stderr
        assert "kafka: already running" in second.stdout
        assert "postgres: already running" in second.stdout
        assert int((state / "kafka" / "kafka.pid").read_text()) == kafka_pid

        assert infra(infra_env, "status").returncode == 0
    finally:
        down = infra(infra_env, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not answers(kafka_port)
    assert not answers(pg_port)
    with pytest.raises(ProcessLookupError):
        os.kill(kafka_pid, 0)
    leftovers = subprocess.run(
        ["pgrep", "-f", str(state)], capture_output=True, text=True, check=False
    ).stdout
    assert leftovers == "", f"processes left behind: {leftovers}"
    assert infra(infra_env, "status").returncode == 1
    reset = infra(infra_env, "reset")
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert not (state / "kafka" / "data").exists()


def test_external_servers_are_used_not_started(infra_env: dict[str, str]) -> None:
    env = dict(infra_env, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")
    result = infra(env, "up", "kafka")
    assert result.returncode != 0
    assert "does not answer" in result.stderr
    assert not (Path(env["SKILLSTREAM_LOCAL_DIR"]) / "kafka" / "kafka.pid").exists()
