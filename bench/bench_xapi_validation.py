"""Throughput of strict xAPI validation versus a minimal JSON + dict baseline and Ralph's model.

Usage: .venv/bin/python bench/bench_xapi_validation.py [N] [REPEATS]
                                                      [--ralph-python PATH | --no-ralph]

All sides get the same N encoded statements (realistic LMS shapes with distinct ids).
Baseline: ``orjson.loads`` + ``TypeAdapter(dict).validate_python`` (shape-free).
Second baseline: Ralph's strict xAPI statement model (``ralph-malph`` 5.1.0,
``ralph.models.xapi.base.statements.BaseXapiStatement``: pydantic, extra fields forbidden, no
empty values) -- ``BaseXapiStatement.model_validate(json.loads(raw))`` on the same bytes, as
Ralph's API decodes a body then validates it (faster here than ``model_validate_json``, whose
before-validator needs the dict anyway), in Ralph's own
virtualenv (``make ralph-venv``; default: its python when it exists), one subprocess that
prints its figures as JSON. A statement Ralph rejects still counts as validated (its error is
the work); how many it rejected, and the first reason, are printed. Without the venv, or with
``--no-ralph``, its line says "not run" and why.
Subject: ``shared.xapi.parse_statement`` (decode + full rule validation).
Best-of-REPEATS wall time is reported for each side.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from pydantic import TypeAdapter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.xapi import XapiVersion, parse_statement
from tests.unit.xapi.samples import ANSWERED, ATTENDED, COMPLETED, SUBSTATEMENT

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ralph_lrs import RALPH_VERSION, not_run, resolve_python

# runs in the Ralph venv: argv = payload file (one statement per line), repeats
_RALPH = """
import json, sys, time
from pydantic import ValidationError
from ralph.models.xapi.base.statements import BaseXapiStatement
payloads = open(sys.argv[1], "rb").read().split(b"\\n")
def run(items):
    rejected, first = 0, ""
    for raw in items:
        try:
            BaseXapiStatement.model_validate(json.loads(raw))
        except ValidationError as exc:
            rejected += 1
            first = first or str(exc).splitlines()[1] + ": " + exc.errors()[0]["msg"]
    return rejected, first
run(payloads[:100])  # warm-up
best = float("inf")
for _ in range(int(sys.argv[2])):
    started = time.perf_counter()
    rejected, first = run(payloads)
    best = min(best, time.perf_counter() - started)
print(json.dumps({"seconds": best, "rejected": rejected, "first_error": first}))
"""


def ralph_rate(python: str, payloads: list[bytes], repeats: int) -> dict[str, Any]:
    """Ralph's strict model on ``payloads``, best of ``repeats``, in the Ralph venv."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as file:
        file.write(b"\n".join(payloads))
        file.flush()
        out = subprocess.run(
            [python, "-c", _RALPH, file.name, str(repeats)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _payloads(n: int) -> list[bytes]:
    templates = [ANSWERED, COMPLETED, ATTENDED, SUBSTATEMENT]
    out: list[bytes] = []
    for i in range(n):
        doc: dict[str, Any] = dict(templates[i % len(templates)])
        doc["id"] = str(uuid.UUID(int=i + 1, version=4))
        out.append(orjson.dumps(doc))
    return out


def _best(fn: Callable[[list[bytes]], None], payloads: list[bytes], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(payloads)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("n", type=int, nargs="?", default=20_000, help="statements")
    parser.add_argument("repeats", type=int, nargs="?", default=5, help="best of")
    parser.add_argument("--ralph-python", help="the Ralph venv's interpreter")
    parser.add_argument("--no-ralph", action="store_true", help="leave Ralph's line out")
    args = parser.parse_args()
    n, repeats = args.n, args.repeats
    ralph_python, reason = resolve_python(args.ralph_python, disabled=args.no_ralph, smoke=False)
    payloads = _payloads(n)
    as_dict = TypeAdapter(dict[str, Any])

    def baseline(items: list[bytes]) -> None:
        for raw in items:
            as_dict.validate_python(orjson.loads(raw))

    def strict(items: list[bytes]) -> None:
        for raw in items:
            parse_statement(raw, version=XapiVersion.V1_0_3)

    strict(payloads[:100])  # warm-up (schema build, caches)
    base_s = _best(baseline, payloads, repeats)
    strict_s = _best(strict, payloads, repeats)
    print(f"statements: {n}, best of {repeats}")
    print(f"baseline orjson+TypeAdapter(dict): {n / base_s:>12,.0f} statements/s")
    print(f"shared.xapi.parse_statement:       {n / strict_s:>12,.0f} statements/s")
    print(f"ratio (strict time / baseline time): {strict_s / base_s:.1f}x")
    label = f"Ralph {RALPH_VERSION} BaseXapiStatement:"
    if ralph_python is None:
        print(f"{label:<35}{not_run(reason)}")
        return
    try:
        ralph = ralph_rate(ralph_python, payloads, repeats)
    except (OSError, subprocess.CalledProcessError, ValueError) as exc:
        err = getattr(exc, "stderr", "") or ""
        print(f"{label:<35}FAILED: {type(exc).__name__}: {exc} {err.strip()[-500:]}")
        return
    print(f"{label:<35}{n / ralph['seconds']:>12,.0f} statements/s")
    print(f"ratio (Ralph's time / strict time): {ralph['seconds'] / strict_s:.1f}x")
    if ralph["rejected"]:
        print(
            f"Ralph rejected {ralph['rejected']:,} of the {n:,} statements; the first: "
            f"{ralph['first_error']}"
        )


if __name__ == "__main__":
    main()
