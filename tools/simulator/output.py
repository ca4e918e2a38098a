"""Files written by a simulation run (all byte-identical for a seed).

* ``statements.jsonl`` — one xAPI statement a line, in event-time order.
* ``truth.jsonl`` — the ground truth (format in :mod:`tools.simulator.truth`).
* ``framework.yaml`` — one competency framework document per tenant (``---`` separated), and
  ``frameworks/<tenant>.yaml`` — the same documents one per file, for loaders taking one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import orjson

from tools.simulator.academy import framework_of
from tools.simulator.simulate import Simulation

STATEMENTS: Final = "statements.jsonl"
TRUTH: Final = "truth.jsonl"
FRAMEWORK: Final = "framework.yaml"
FRAMEWORKS_DIR: Final = "frameworks"

_LINE: Final = orjson.OPT_APPEND_NEWLINE


def truth_lines(sim: Simulation) -> Iterator[bytes]:
    """Learner records, then state / stall / dropout records in event-time order."""
    for record in sim.learners:
        yield orjson.dumps(record, option=_LINE)
    extra = sorted(sim.extra_truth, key=lambda x: (x[0], x[1]["tenant"], x[1]["learner"]))
    k = 0
    for event in sim.events:
        while k < len(extra) and extra[k][0] < event.ms:
            yield orjson.dumps(extra[k][1], option=_LINE)
            k += 1
        for record in event.truth:
            yield orjson.dumps(record, option=_LINE)
    for _, record in extra[k:]:
        yield orjson.dumps(record, option=_LINE)


def framework_documents(sim: Simulation) -> dict[str, str]:
    """tenant -> its framework as YAML text (JSON text, also valid YAML, without PyYAML)."""
    docs = {}
    for tenant in sim.academy.tenants:
        data: dict[str, Any] = framework_of(sim.academy, tenant).model_dump(
            mode="json", exclude_none=True
        )
        try:
            import yaml
        except ImportError:  # pragma: no cover - PyYAML comes with the test extras
            docs[tenant.id] = orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n"
        else:
            docs[tenant.id] = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return docs


def write_files(sim: Simulation, out: Path) -> dict[str, Path]:
    """Write every file under ``out`` (created if missing); returns name -> path."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"statements": out / STATEMENTS, "truth": out / TRUTH, "framework": out / FRAMEWORK}
    with paths["statements"].open("wb") as fh:
        fh.writelines(orjson.dumps(e.statement, option=_LINE) for e in sim.events)
    with paths["truth"].open("wb") as fh:
        fh.writelines(truth_lines(sim))
    docs = framework_documents(sim)
    paths["framework"].write_text("---\n".join(docs.values()), encoding="utf-8")
    (out / FRAMEWORKS_DIR).mkdir(exist_ok=True)
    for tenant, text in docs.items():
        paths[f"framework:{tenant}"] = out / FRAMEWORKS_DIR / f"{tenant}.yaml"
        paths[f"framework:{tenant}"].write_text(text, encoding="utf-8")
    return paths
