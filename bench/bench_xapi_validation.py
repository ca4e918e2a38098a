"""Throughput of strict xAPI validation versus a minimal JSON + dict baseline.

Usage: .venv/bin/python bench/bench_xapi_validation.py [N] [REPEATS]

Both sides get the same N encoded statements (realistic LMS shapes with distinct ids).
Baseline: ``orjson.loads`` + ``TypeAdapter(dict).validate_python`` (shape-free).
Subject: ``shared.xapi.parse_statement`` (decode + full rule validation).
Best-of-REPEATS wall time is reported for each side.
"""

from __future__ import annotations

import sys
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
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
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


if __name__ == "__main__":
    main()
