"""Same seed, same bytes: the files are reproducible, and the seed matters."""

from __future__ import annotations

from pathlib import Path

from tools.simulator.cli import main

FILES = ("statements.jsonl", "truth.jsonl", "framework.yaml", "frameworks/acme.yaml")


def run(out: Path, seed: int) -> dict[str, bytes]:
    assert main(["--seed", str(seed), "--learners", "30", "--days", "14", "--out", str(out)]) == 0
    return {name: (out / name).read_bytes() for name in FILES}


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    first = run(tmp_path / "a", 7)
    second = run(tmp_path / "b", 7)
    assert all(first[name] for name in FILES)
    for name in FILES:
        assert first[name] == second[name], name


def test_another_seed_gives_other_statements(tmp_path: Path) -> None:
    assert run(tmp_path / "a", 7)["statements.jsonl"] != run(tmp_path / "b", 8)["statements.jsonl"]


def test_defaults_are_sensible(tmp_path: Path) -> None:
    from tools.simulator.cli import parser

    args = parser().parse_args([])
    assert (args.seed, args.learners, args.days, args.sink) == (7, 200, 30, "file")
    assert args.rate is None
    assert args.speedup is None
