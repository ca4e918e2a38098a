"""``python -m tools.demo``: start the three services, load a simulated academy's frameworks,
stream its statements to ingest at a watchable pace and show what happens.

    python -m tools.demo                        # 200 learners, 30 days, 1 simulated hour/s
    python -m tools.demo --duration 120 --speedup 7200
    python -m tools.demo --ports 0,0,0          # free ports instead of 8080, 8081, 8082

Each run uses a topic prefix and PostgreSQL schemas of its own (``demo<id>.``,
``demo_<id>_<service>``), deleted when it stops (``--keep`` keeps them), and one learner-key salt
for the three services. The inactivity scanner runs on event time (the simulated clock).
Ctrl-C (or ``--duration``) stops the stream and the services (SIGTERM, waited for) and prints a
summary. Service logs go to ``.local/demo/<run>/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from typing import NoReturn, TextIO

import aiohttp

from tools.demo.display import KINDS, Display, Progress
from tools.demo.metrics import Metrics, describe, format_count
from tools.demo.pipeline import DEFAULT_PORTS, SERVICES, Pipeline, PipelineError, tenants_of
from tools.simulator.emit import HttpTarget, Pace, send_http
from tools.simulator.output import write_files
from tools.simulator.simulate import Config, Event, simulate


def _ports(text: str) -> dict[str, int]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3 or not all(p.isdigit() and int(p) < 65536 for p in parts):
        raise argparse.ArgumentTypeError(
            "expected INGEST,PROGRESS,ALERTS ports, e.g. 8080,8081,8082"
        )
    return dict(zip(SERVICES, (int(p) for p in parts), strict=True))


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m tools.demo",
        description="Run the whole pipeline on a simulated academy, with a live display.",
    )
    ap.add_argument(
        "--duration", type=float, default=0, help="stop after this many seconds (0: at Ctrl-C)"
    )
    ap.add_argument("--learners", type=int, default=200, help="simulated learners (200)")
    ap.add_argument("--days", type=int, default=30, help="simulated days (30)")
    ap.add_argument("--tenants", type=int, default=2, choices=range(1, 5), help="tenants (2)")
    pace = ap.add_mutually_exclusive_group()
    pace.add_argument(
        "--speedup",
        type=float,
        default=None,
        help="simulated time runs this many times faster than real time (default 3600: one "
        "simulated hour per second)",
    )
    pace.add_argument("--rate", type=float, help="statements per second instead of --speedup")
    ap.add_argument("--seed", type=int, default=7, help="simulator seed (7)")
    ap.add_argument(
        "--ports",
        type=_ports,
        default=dict(DEFAULT_PORTS),
        metavar="I,P,A",
        help="HTTP ports of ingest, progress, alerts (8080,8081,8082; 0 or busy: a free one)",
    )
    ap.add_argument("--refresh", type=float, default=2.0, help="display refresh, seconds (2)")
    ap.add_argument("--keep", action="store_true", help="keep the run's topics and schemas")
    return ap


def _tracked(events: Iterable[Event], progress: Progress) -> Iterator[Event]:
    for event in events:
        progress.sent += 1
        progress.event_ms = event.ms
        yield event


async def _stream(events: list[Event], target: HttpTarget, pace: Pace, progress: Progress) -> None:
    try:
        await send_http(_tracked(events, progress), target, pace, batch_size=100)
    except Exception as exc:  # noqa: BLE001 - shown on the display; the services keep running
        progress.error = str(exc)[:200]
    progress.finished = True


class _InterruptedError(Exception):
    pass


def _interrupted() -> NoReturn:
    raise _InterruptedError


def _summary(m: Metrics, progress: Progress, elapsed: float) -> list[str]:
    kinds = [(k, m.raised.get(k, 0.0)) for k in KINDS]
    kinds += [(k, v) for k, v in m.raised.items() if k not in KINDS]
    return [
        f"Summary after {elapsed:.0f} s:",
        (
            f"  statements  sent {format_count(progress.sent)}, "
            f"accepted {format_count(m.accepted)}, rejected {format_count(m.rejected)}"
        ),
        (
            f"  mastery     {format_count(m.processed)} statements processed, "
            f"{format_count(m.updates)} mastery updates"
        ),
        f"  alerts      {format_count(m.raised_total)} raised: {describe(kinds)}",
    ]


async def run(args: argparse.Namespace, out: TextIO) -> int:  # noqa: PLR0912, PLR0915 - one linear story
    began = time.monotonic()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    pipeline = Pipeline(
        name="demo",
        ports=args.ports,
        extra_env={
            "ALERTS_INACTIVITY_CLOCK": "event",
            "ALERTS_SCAN_SECONDS": "2",
            "PROGRESS_FRAMEWORK_POLL_SECONDS": "1",
            "INGEST_INTAKE_ENABLED": "false",
        },
    )
    speedup = args.speedup if args.speedup is not None or args.rate is not None else 3600.0
    pace = Pace(rate=args.rate, speedup=speedup if args.rate is None else None)
    progress = Progress()
    metrics = Metrics()

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    say(f"Skillstream demo, run {pipeline.prefix.rstrip('.')}: starting ingest, progress, alerts")
    for note in pipeline.notes:
        say(f"  note: {note}")
    pipeline.start()
    pids = pipeline.pids()
    say("  service pids: " + ", ".join(f"{s} {p}" for s, p in pids.items()))
    say(f"  service logs: {pipeline.log_dir}")
    stream: asyncio.Task[None] | None = None
    code = 0
    assert pipeline.log_dir is not None
    sim_dir = pipeline.log_dir / "simulation"
    try:
        cfg = Config(seed=args.seed, learners=args.learners, days=args.days, tenants=args.tenants)
        say(f"  simulating {args.learners} learners over {args.days} days (seed {args.seed}) ...")
        sim_task = asyncio.ensure_future(asyncio.to_thread(simulate, cfg))
        ready = asyncio.ensure_future(pipeline.wait_ready())
        waiter = asyncio.ensure_future(stop.wait())
        await asyncio.wait({ready, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            ready.cancel()
            _interrupted()
        waiter.cancel()
        say(f"  services ready in {ready.result():.1f} s")
        sim = await sim_task
        paths = await asyncio.to_thread(write_files, sim, sim_dir)
        progress.generated = len(sim.events)
        tenants = tenants_of(paths["framework"])
        say(
            f"  {len(sim.events):,} statements from {len(sim.learners)} learners, "
            f"tenants {', '.join(tenants)}; files in {sim_dir}"
        )
        creds_list = await asyncio.gather(*(pipeline.ingest_credential(t, "demo") for t in tenants))
        creds = dict(zip(tenants, creds_list, strict=True))
        tokens_list = await asyncio.gather(
            *(pipeline.staff_token(t, "demo-coach") for t in tenants),
            pipeline.load_frameworks(paths["framework"]),
        )
        tokens = dict(zip(tenants, tokens_list[:-1], strict=True))
        say("  frameworks loaded:\n    " + tokens_list[-1].strip().replace("\n", "\n    "))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            if not await pipeline.wait_frameworks(http, len(tenants), 30):
                say("  warning: the progress worker has not seen the frameworks yet")
            ingest, prog, alerts = (pipeline.url(s) for s in SERVICES)
            pace_text = f"{args.rate:g} statements/s" if args.rate else f"speedup {speedup:g}x"
            header = [
                (
                    f"Skillstream demo - run {pipeline.prefix.rstrip('.')} - "
                    f"{args.learners} learners, {args.days} days, {pace_text}"
                ),
                "A simulated academy's LMS statements flow: ingest -> progress -> alerts.",
            ]
            urls = [
                f"Inbox (alerts for support staff): {alerts}/inbox   paste a staff token:",
                *(f"    {t}: {tokens[t]}" for t in tenants),
                (
                    f"xAPI endpoint:   POST {ingest}/xapi/statements   (Basic auth, e.g. "
                    f"{creds[tenants[0]][0]} / {creds[tenants[0]][1]})"
                ),
                f"Progress API:    {prog}/openapi.json    Alerts API: {alerts}/openapi.json",
                f"Metrics:         {ingest}/metrics  {prog}/metrics  {alerts}/metrics",
            ]
            display = Display(header, urls, out=out)
            display.intro()
            target = HttpTarget(ingest, credentials=creds)
            stream = asyncio.create_task(_stream(sim.events, target, pace, progress))
            deadline = began + args.duration if args.duration > 0 else None
            while not stop.is_set():
                metrics = await pipeline.metrics(http)
                display.render(time.monotonic() - began, progress, metrics)
                wait = args.refresh if display.tty else max(args.refresh, 5.0)
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
            metrics = await pipeline.metrics(http)
    except _InterruptedError:
        say("interrupted while starting")
        code = 130
    except PipelineError as exc:
        say(f"error: {exc}")
        code = 1
    finally:
        if stream is not None:
            stream.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stream
        say("stopping: SIGTERM to the services ...")
        codes = await asyncio.to_thread(pipeline.stop)
        left = pipeline.leftovers()
        say("  exited: " + ", ".join(f"{s} (pid {pids[s]}) code {c}" for s, c in codes.items()))
        for note in pipeline.notes:
            say(f"  note: {note}")
        if left:
            say(f"  still running: {left}")
            code = code or 1
        else:
            say("  no service process left running")
        if not args.keep:
            await pipeline.cleanup()
            say(
                f"  deleted topics {pipeline.prefix}* and "
                f"schemas {pipeline.name}_{pipeline.run_id}_*"
            )
        for line in _summary(metrics, progress, time.monotonic() - began):
            say(line)
    return code


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return asyncio.run(run(args, sys.stdout))
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 130
