"""``make bench``: run every benchmark in ``bench/`` and rewrite ``BENCHMARKS.md`` with the figures.

    .venv/bin/python bench/run_all.py [--assistments DIR] [--only NAME ...] [--smoke]
                                      [--update] [--output BENCHMARKS.md]

Each script runs as its own process, one after the other (the machine is shared: running them
together would measure the contention). Its output is captured and put in its section, under the
explanatory text kept here (the header template of ``BENCHMARKS.md``), with the command, the date
and the load average before and after it. The machine is described once at the top (cores, CPU
model, memory, OS, Python, load average before and after the whole run).

The ASSISTments data of the mastery-accuracy benchmark comes from ``--assistments``, else
``$SKILLSTREAM_ASSISTMENTS_DIR``, else ``../shared/data/assistments2009`` relative to the
repository; when that folder is missing, only that benchmark is skipped, and its section says so.

A benchmark that fails is reported as FAILED in its section (with the end of its error output)
and the exit code is 1; the others still run. ``--smoke`` passes each script its tiny-run flags
(figures meaningless; checks the harness) and ``--only`` selects scripts by name. With
``--update``, only the selected scripts' sections of the existing file are replaced (each keeps
its own date, wall time and load) and the machine line says which ones were re-run and when.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import asyncpg
from catalogue import Bench, benches

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ".venv/bin/python"

HEADER = """# Benchmarks

Figures measured by `make bench` (`bench/run_all.py`, which writes this file; do not edit it by
hand) on the machine described below, with Apache Kafka 4.1.1 and PostgreSQL 15 from
`make infra-up` on loopback. The machine may be shared and noisy (other builds running at the
same time: the load average is given), so each benchmark compares against a baseline measured in
the same run; read the ratios first. Benchmarks are not part of `make test`;
`tests/integration/bench/` runs a tiny version of each script there so they cannot rot.
"""


def machine() -> dict[str, str]:
    def read(path: str) -> str:
        try:
            return Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    model = re.search(r"^model name\s*:\s*(.+)$", read("/proc/cpuinfo"), re.MULTILINE)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", read("/proc/meminfo"), re.MULTILINE)
    osname = re.search(r'^PRETTY_NAME="?([^"\n]+)', read("/etc/os-release"), re.MULTILINE)
    return {
        "cores": str(os.cpu_count()),
        "cpu": model[1].strip() if model else platform.processor() or "unknown",
        "memory": f"{int(mem[1]) / 2**20:.1f} GiB" if mem else "unknown",
        "os": osname[1] if osname else platform.platform(),
        "python": platform.python_version(),
        "host": platform.node(),
    }


def database_durability(url: str) -> str:
    """What a commit waits for on the benchmarked PostgreSQL (``make infra-up`` runs it with
    fsync off, for test speed: commits then reach the OS, not the disk)."""

    async def ask() -> str:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            fsync = await conn.fetchval("SHOW fsync")
            sync = await conn.fetchval("SHOW synchronous_commit")
        finally:
            await conn.close()
        return f"fsync={fsync}, synchronous_commit={sync}"

    try:
        return asyncio.run(ask())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"unknown ({type(exc).__name__})"


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def clean_output(out: str) -> str:
    """The script's report without its own headings and its trailing machine-readable line."""
    lines = out.rstrip().splitlines()
    if lines and lines[-1].startswith("{") and len(lines) > 1:
        lines = lines[:-1]
    return "\n".join(line for line in lines if not re.match(r"^#{1,2} ", line)).strip()


def is_markdown(text: str) -> bool:
    return any(line.startswith("| ") for line in text.splitlines())


def ralph_args(given: str | None, disabled: bool) -> tuple[list[str], str]:
    """The flags giving the Ralph-baseline benches their interpreter (the venv of
    ``bench/ralph_lrs.py``, created here when missing), and why there is none, if so."""
    if disabled:
        return ["--no-ralph"], ""
    if given:
        return ["--ralph-python", given], ""
    sys.path.insert(0, str(ROOT / "bench"))
    from ralph_lrs import RALPH_VENV, create_venv

    print(f"== Ralph's venv: {RALPH_VENV.relative_to(ROOT)}", file=sys.stderr, flush=True)
    try:
        python = create_venv(RALPH_VENV)
    except (OSError, subprocess.CalledProcessError, SystemExit) as exc:
        print(f"creating Ralph's venv failed: {exc}", file=sys.stderr)
        return [], f"Creating Ralph's venv (`make ralph-venv`) failed here: {exc}."
    return ["--ralph-python", str(python.relative_to(ROOT))], ""


def pybkt_args() -> tuple[list[str], str]:
    """The flag giving the mastery benchmark pyBKT's interpreter (the venv of
    ``bench/pybkt_venv.py``, created here when missing), and why there is none, if so."""
    sys.path.insert(0, str(ROOT / "bench"))
    from pybkt_venv import PYBKT_VENV, ensure

    print(f"== pyBKT's venv: {PYBKT_VENV.relative_to(ROOT)}", file=sys.stderr, flush=True)
    try:
        python = ensure(PYBKT_VENV)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"creating pyBKT's venv failed: {exc}", file=sys.stderr)
        return [], f"Creating pyBKT's venv (`make pybkt-venv`) failed here: {exc}."
    return ["--pybkt-python", str(python.relative_to(ROOT))], ""


def run_one(
    bench: Bench, smoke: bool, env: dict[str, str], extra: Sequence[str] = ()
) -> tuple[str, bool]:
    args = [*(bench.smoke if smoke else bench.args), *extra]
    command = shlex.join([PYTHON, bench.script, *args])
    before, began, started = load(), time.monotonic(), now()
    print(f"== {bench.name}: {command}", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(
            [sys.executable, bench.script, *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=bench.timeout,
            check=False,
        )
        code, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        code, out, err = -1, str(exc.stdout or ""), f"timed out after {bench.timeout:.0f} s"
    took = time.monotonic() - began
    parts = [f"## {bench.title}", "", bench.intro, "", f"    {command}", ""]
    parts.append(
        f"{started}, wall time {took:.0f} s, load average {before} before, {load()} after:"
    )
    parts.append("")
    if code != 0:
        parts += [
            f"**FAILED** (exit code {code}). End of its error output:",
            "",
            *(f"    {line}" for line in err.strip().splitlines()[-20:]),
        ]
        print(err[-3000:], file=sys.stderr)
        return "\n".join(parts), False
    report = clean_output(out)
    if bench.script.endswith(("bench_alert_quality.py", "bench_e2e.py", "bench_soak.py")):
        report = "\n".join(line for line in report.splitlines() if not line.startswith("    "))
        report = report.strip()
    if is_markdown(report):
        parts.append(report)
    else:
        parts += [f"    {line}" if line else "" for line in report.splitlines()]
    if bench.verdict is not None and (verdict := bench.verdict(out)):
        parts += ["", verdict]
    return "\n".join(parts), True


def updated(document: str, sections: list[str], note: str) -> str:
    """``document`` with each of ``sections`` in place of the section of the same ``## `` title
    (added at the end when it has none), and ``note`` after the machine line."""
    blocks = re.split(r"\n(?=## )", document.rstrip("\n"))
    for section in sections:
        title = section.split("\n", 1)[0]
        at = next((i for i, b in enumerate(blocks) if b.split("\n", 1)[0] == title), None)
        if at is None:
            blocks.append(section)
        else:
            blocks[at] = section
    head = re.sub(r"\n\nRe-run on their own: [^\n]*", "", blocks[0])
    blocks[0] = head.rstrip("\n") + "\n\n" + note + "\n"
    return "\n".join(b if b.endswith("\n") else b + "\n" for b in blocks)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/run_all.py", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--assistments",
        type=Path,
        default=Path(
            os.environ.get(
                "SKILLSTREAM_ASSISTMENTS_DIR", str(ROOT.parent / "shared/data/assistments2009")
            )
        ),
        help="ASSISTments 2009 folder (default $SKILLSTREAM_ASSISTMENTS_DIR, else "
        "../shared/data/assistments2009)",
    )
    ap.add_argument("--only", nargs="*", default=None, help="script names (e.g. bench_e2e)")
    ap.add_argument("--smoke", action="store_true", help="tiny runs (checks the harness)")
    ap.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    ap.add_argument(
        "--ralph-python",
        help="interpreter of a Ralph venv (default: create .local/ralph-venv, unless --smoke)",
    )
    ap.add_argument("--no-ralph", action="store_true", help="leave out Ralph's baselines")
    ap.add_argument(
        "--update",
        action="store_true",
        help="replace only the selected sections of the existing output file",
    )
    args = ap.parse_args(argv)
    if args.update and not (args.only and args.output.is_file()):
        ap.error("--update needs --only and an existing --output file")
    env = dict(os.environ)
    env.setdefault("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    env.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:55432/postgres")
    selected = [b for b in benches(args.assistments) if not args.only or b.name in args.only]
    if args.only and len(selected) != len(args.only):
        known = ", ".join(b.name for b in benches(args.assistments))
        ap.error(f"unknown benchmark in {args.only}; known: {known}")
    info, before, began = machine(), load(), now()
    durability = database_durability(env["DATABASE_URL"])
    sections: list[str] = []
    ok = True
    ralph: tuple[list[str], str] | None = None  # made when a bench first needs it
    for bench in selected:
        if (
            bench.name == "bench_mastery_accuracy"
            and not (args.assistments / "builder_train.csv").is_file()
        ):
            sections.append(
                f"## {bench.title}\n\n{bench.intro}\n\n**SKIPPED**: the ASSISTments data was not "
                f"found in `{args.assistments}` (give it with `--assistments DIR` or "
                "`SKILLSTREAM_ASSISTMENTS_DIR`)."
            )
            print(f"== {bench.name}: SKIPPED, no data in {args.assistments}", file=sys.stderr)
            continue
        extra: list[str] = []
        ran = bench
        if bench.ralph and not args.smoke:
            if ralph is None:
                ralph = ralph_args(args.ralph_python, args.no_ralph)
            extra, failure = ralph
            if failure:
                ran = replace(bench, intro=f"{bench.intro} {failure}")
        if bench.pybkt and not args.smoke:
            extra, failure = pybkt_args()
            if failure:
                ran = replace(bench, intro=f"{bench.intro} {failure}")
        text, passed = run_one(ran, args.smoke, env, extra)
        sections.append(text)
        ok = ok and passed
    machine_text = (
        f"Machine: {info['cores']} cores ({info['cpu']}), {info['memory']} memory, {info['os']}, "
        f"Python {info['python']}. Run {began} to {now()}"
        f"{' (smoke: tiny counts, figures meaningless)' if args.smoke else ''}; load average "
        f"(1, 5, 15 min) {before} before, {load()} after. PostgreSQL: {durability} (the "
        'figures of "archived" statements mean committed, not flushed to disk, when fsync is '
        f"off). Command: `make bench` (`{PYTHON} bench/run_all.py`)."
    )
    if args.update:
        names = ", ".join(b.name for b in selected)
        document = updated(
            args.output.read_text(encoding="utf-8"),
            sections,
            f"Re-run on their own: {names}, {began} to {now()} (load average {before} before, "
            f"{load()} after; each section gives its own date).",
        )
    else:
        document = "\n\n".join([HEADER.strip(), machine_text, *sections]) + "\n"
    args.output.write_text(document, encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
