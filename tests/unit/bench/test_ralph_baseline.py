"""Ralph's baseline rows (``bench/ralph_lrs.py``): without its venv they say so, never a figure."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

import ralph_lrs


@pytest.fixture
def no_venv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(ralph_lrs, "RALPH_VENV", tmp_path / "ralph-venv")
    return tmp_path


def test_without_the_venv_the_reason_says_how_to_make_it(no_venv: Path) -> None:
    python, reason = ralph_lrs.resolve_python(None, disabled=False, smoke=False)
    assert python is None
    assert ralph_lrs.not_run(reason).startswith("not run: no Ralph virtualenv")
    assert "make ralph-venv" in reason
    assert "--ralph-python" in reason


def test_a_venv_without_its_stamp_is_not_used(no_venv: Path) -> None:
    (no_venv / "ralph-venv" / "bin").mkdir(parents=True)
    (no_venv / "ralph-venv" / "bin" / "python").touch()  # half-made: pip never finished
    assert ralph_lrs.resolve_python(None, disabled=False, smoke=False)[0] is None
    (no_venv / "ralph-venv" / ".installed").touch()
    found = ralph_lrs.resolve_python(None, disabled=False, smoke=False)[0]
    assert found == str(no_venv / "ralph-venv" / "bin" / "python")


def test_smoke_runs_and_no_ralph_leave_it_out_even_with_the_venv(no_venv: Path) -> None:
    (no_venv / "ralph-venv" / "bin").mkdir(parents=True)
    (no_venv / "ralph-venv" / "bin" / "python").touch()
    (no_venv / "ralph-venv" / ".installed").touch()
    python, reason = ralph_lrs.resolve_python(None, disabled=False, smoke=True)
    assert python is None
    assert "smoke run" in reason
    assert "--ralph-python" in reason
    assert ralph_lrs.resolve_python(None, disabled=True, smoke=False) == (None, "--no-ralph given")


def test_a_given_interpreter_must_exist_and_keeps_its_venv_path(
    no_venv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python, reason = ralph_lrs.resolve_python(str(no_venv / "nope"), disabled=False, smoke=False)
    assert python is None
    assert "does not exist" in reason
    real = no_venv / "python3.11"
    real.touch()
    link = no_venv / "python"
    link.symlink_to(real)
    monkeypatch.chdir(no_venv)
    # absolute, but the venv's link is kept: resolving it would leave the venv
    assert ralph_lrs.resolve_python("python", disabled=False, smoke=True) == (str(link), "")


async def test_not_run_rows_carry_the_reason_and_no_figures() -> None:
    single, batched = [b"{}"] * 3, [b"{}"] * 200
    rows = await ralph_lrs.bench_ralph(
        None, "no Ralph virtualenv (make ralph-venv)", single, batched
    )
    assert [r.statements for r in rows] == [3, 200, 3, 200]
    assert {r.note for r in rows} == {"not run: no Ralph virtualenv (make ralph-venv)"}
    assert all(r.seconds == 0.0 and r.cpu is None and not r.checks for r in rows)
    assert sorted({r.name.split(": ")[0] for r in rows}) == [
        "Ralph LRS 5.1.0, filesystem backend (appending)",
        "Ralph LRS 5.1.0, storing nothing",
    ]
