"""The figures and verdict of ``bench_soak.py``: lag and memory slopes over the steady state,
what was lost, and the markdown section."""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from typing import Any

from soak_measure import GROUPS, Soak

from tools.demo.pipeline import SERVICES

LAG_GROWTH = 0.02  # lag may grow by at most 2 % of the input rate (noise of commit intervals)


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute (0 with fewer than 2)."""
    if len(points) < 2:
        return 0.0
    mx = sum(t for t, _ in points) / len(points)
    my = sum(v for _, v in points) / len(points)
    var = sum((t - mx) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return 60 * sum((t - mx) * (v - my) for t, v in points) / var


def summarize(
    args: argparse.Namespace,
    n: int,
    soak: Soak,
    fed: float,
    drained_at: float | None,
    began: float,
    counts: dict[str, float],
    sent: int,
) -> dict[str, Any]:
    # the first passes create the population's state; with one pass, the first minute
    warm = min(args.warmup_passes, args.passes - 1)
    warmup = fed * warm / args.passes if args.passes > 1 else min(60.0, fed / 5)
    steady = [s for s in soak.samples if s.feeding and s.t >= warmup]
    growing = [s for s in soak.samples if s.feeding and s.t < warmup]
    after = [s for s in soak.samples if not s.feeding]
    services: dict[str, Any] = {}
    for service in GROUPS:
        lags = [s.lag[service] for s in steady]
        trend = slope_per_minute([(s.t, s.lag[service]) for s in steady])
        services[service] = {
            "lag_max": max(lags, default=0),
            "lag_last_fed": lags[-1] if lags else 0,
            "lag_after_drain": after[-1].lag[service] if after else None,
            "lag_slope_per_min": round(trend, 1),
            # the consumer keeps at least 98 % of the input's pace, and catches up at the end
            "lag_bounded": trend <= LAG_GROWTH * args.rate * 60
            and bool(after)
            and after[-1].lag[service] == 0,
        }
    for service in SERVICES:
        points = [(s.t, s.rss[service]) for s in steady]
        start = points[0][1] if points else float("nan")
        slope = slope_per_minute(points)
        services.setdefault(service, {}).update(
            rss_slope_warmup_mib_per_min=round(
                slope_per_minute([(s.t, s.rss[service]) for s in growing]), 2
            ),
            rss_start_mib=round(start, 1),
            rss_end_mib=round(points[-1][1], 1) if points else float("nan"),
            rss_slope_mib_per_min=round(slope, 2),
            memory_flat=slope <= max(1.0, 0.01 * start),
        )
    # what some stage had not passed when the drain wait ended: lost if the pipeline drained
    # (every stage idle), merely pending if the wait ran out first
    missing = {
        stage: max(0, int(sent - counts[stage]))
        for stage in ("accepted", "archived", "published", "projected")
    }
    missing["updates applied by alerts"] = max(
        0, int(counts["updates published"] - counts["updates applied by alerts"])
    )
    lag_ok = all(services[s]["lag_bounded"] for s in GROUPS)
    mem_ok = all(services[s]["memory_flat"] for s in SERVICES)
    drained = drained_at is not None
    loss = sum(missing.values()) + (n - sent)
    return {
        "rate": args.rate,
        "limit": args.limit,
        "minutes": args.minutes,
        "passes": args.passes,
        "warmup_passes": min(args.warmup_passes, args.passes - 1),
        "statements": n,
        "sent": sent,
        "fed_seconds": round(fed, 1),
        "achieved_per_s": round(sent / fed, 1),
        "drain_seconds": None if drained_at is None else round(drained_at - began - fed, 1),
        "warmup_seconds": round(warmup, 1),
        "steady_samples": len(steady),
        "services": services,
        "counts": counts,
        "drained": drained,
        "missing": missing,
        "loss": loss,
        "verdict": {
            "lag_bounded": lag_ok,
            "memory_flat": mem_ok,
            "nothing_lost": drained and loss == 0,
        },
        "samples": [asdict(s) for s in soak.samples],
    }


def markdown(r: dict[str, Any], command: str) -> str:
    v = r["verdict"]
    word = {True: "yes", False: "**NO**"}
    lines = [
        "## Soak: steady rate through the whole pipeline (ingest -> progress -> alerts)",
        "",
        f"    {command}",
        "",
        (
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {r['sent']:,} statements "
            f"at {r['rate']:g}/s asked, {r['achieved_per_s']:,.1f}/s achieved over "
            f"{r['fed_seconds']:.0f} s, {r['passes']} passes over {r['learners']} learners "
            f"({r['retried_503']} requests answered 503 and retried); "
            + (
                f"drained {r['drain_seconds']} s after the feed stopped. "
                if r["drained"]
                else f"**not drained** {r['limit']:.0f} s after the feed stopped. "
            )
            + f"Steady state from {r['warmup_seconds']:.0f} s ({r['steady_samples']} samples"
            + (f", the passes after the first {r['warmup_passes']})." if r["passes"] > 1 else ").")
        ),
        "",
        (
            "| service | consumer lag max (steady) | lag slope /min | lag at end of feed | "
            "lag after drain | RSS slope MiB/min, warm-up (state created) | "
            "RSS start MiB | RSS end MiB | RSS slope MiB/min |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for service in SERVICES:
        s = r["services"][service]
        lag = (
            (
                f"{s['lag_max']:,}",
                f"{s['lag_slope_per_min']:+,.0f}",
                f"{s['lag_last_fed']:,}",
                f"{s['lag_after_drain']}",
            )
            if service in GROUPS
            else ("-", "-", "-", "-")
        )
        lines.append(
            f"| {service} | {lag[0]} | {lag[1]} | {lag[2]} | {lag[3]} | "
            f"{s['rss_slope_warmup_mib_per_min']:+.2f} | {s['rss_start_mib']:.1f} | "
            f"{s['rss_end_mib']:.1f} | {s['rss_slope_mib_per_min']:+.2f} |"
        )
    gap = "lost" if r["drained"] else "not there yet (pending)"
    lines += ["", f"| stage | statements (or updates) | {gap} |", "| --- | ---: | ---: |"]
    lines.append(f"| sent | {r['sent']:,} | {r['statements'] - r['sent']} |")
    for stage, value in r["counts"].items():
        lines.append(f"| {stage} | {int(value):,} | {r['missing'].get(stage, '-')} |")
    lines += [
        "",
        (
            f"Verdict: lag bounded {word[v['lag_bounded']]}, memory flat "
            f"{word[v['memory_flat']]}, nothing lost {word[v['nothing_lost']]} "
            + (f"({r['loss']} lost)." if r["drained"] else f"(not drained: {r['loss']} pending).")
        ),
    ]
    return "\n".join(lines)
