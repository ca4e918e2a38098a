"""The README is the front door: what it says about configuration and commands must be true."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from services.config_table import settings_classes
from shared.settings import markdown_table

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_configuration_table_matches_the_settings_classes() -> None:
    match = re.search(
        r"<!-- config-table:start -->\n(.*?)<!-- config-table:end -->", README, re.DOTALL
    )
    assert match, "README.md lacks the config-table markers"
    assert match.group(1) == markdown_table(settings_classes()), (
        "README's configuration table is stale: run `make config-table` and paste it"
    )


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in README
    assert re.search(r"^exec make test$", ci, re.MULTILINE)


def test_every_make_target_the_readme_names_exists() -> None:
    named = set(re.findall(r"`make ([a-z-]+)", README))
    listed = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "help"], capture_output=True, text=True, check=True
    ).stdout
    targets = set(re.findall(r"make (\S+)", listed))
    assert named, "README names no make target"
    assert named <= targets, f"README names targets the Makefile lacks: {named - targets}"
