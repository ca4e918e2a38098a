"""Print the configuration table of every service (``make config-table``); README.md holds it and
``tests/unit/test_docs.py`` checks the two agree."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from pydantic_settings import BaseSettings

from services.alerts.config import AlertsSettings
from services.progress.config import ProgressSettings
from shared.settings import markdown_table


def settings_classes() -> list[type[BaseSettings]]:
    from services.ingest.config import IngestSettings

    return [IngestSettings, ProgressSettings, AlertsSettings]


def write_readme(path: Path) -> bool:
    """Put the current table between the README's markers; True when the file changed."""
    text = path.read_text(encoding="utf-8")
    table = markdown_table(settings_classes())
    new = re.sub(
        r"(<!-- config-table:start -->\n).*?(<!-- config-table:end -->)",
        lambda m: m.group(1) + table + m.group(2),
        text,
        flags=re.DOTALL,
    )
    path.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"]:
        write_readme(Path(sys.argv[2] if len(sys.argv) > 2 else "README.md"))
    else:
        print(markdown_table(settings_classes()), end="")
