"""Ralph's LRS (PyPI ``ralph-malph`` 5.1.0) as a baseline, in a virtualenv of its own.

    .venv/bin/python bench/ralph_lrs.py [--venv .local/ralph-venv]     (or: make ralph-venv)

creates that virtualenv (never the project's ``.venv``: Ralph pins its own FastAPI, pydantic,
uvicorn ...) with ``ralph-malph[cli,lrs]==5.1.0`` -- ``lrs`` for the API server, ``cli`` for
``ralph auth``; the filesystem backend needs no extra; plus ``requests``, which Ralph's API
imports but no extra of these pulls in -- and a one-module package that registers
two LRS backends in Ralph's ``ralph.backends.lrs`` entry-point group, the group Ralph's
``RALPH_RUNSERVER_BACKEND`` setting picks backends from, both Ralph's own filesystem backend
(``FSLRSBackend``) with one thing changed:

* ``fs_append``: its default operation type is ``append`` instead of ``create``. As released,
  the filesystem LRS backend writes every POST with ``create`` to the same file
  (``fs_lrs.jsonl``), so every POST after the first answers 500 ("Statements bulk indexation
  failed"); with ``append`` (an operation the backend supports) each POST appends its
  statements to the file, one JSON line each. Each POST still reads the whole file first, to
  find duplicate ids, and rewrites Ralph's history file (a JSON list, one entry per write so
  far), so it slows down as they grow;
* ``null``, storing nothing: only the last step, ``_write_bytes`` (open the file, write the
  encoded statements, append to the history file), is replaced by one that consumes the encoded
  statements and counts them: the request, the authentication, the validation, the duplicate
  check (it finds no file, so no statement) and the encoding are Ralph's; nothing is stored.

``bench_ingest.py`` and ``bench_xapi_validation.py`` take ``--ralph-python PATH`` (default: this
venv's python when it exists); ``bench/run_all.py`` (``make bench``) creates the venv first.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import Result, bodies_of, free_port, post_bodies, process_cpu_seconds

ROOT = Path(__file__).resolve().parents[1]
RALPH_VENV = ROOT / ".local" / "ralph-venv"
RALPH_REQUIREMENT = "ralph-malph[cli,lrs]==5.1.0"
# ralph.api.auth imports ``requests`` (for OIDC), which none of the extras above pulls in
RALPH_EXTRA = ["requests", "setuptools>=70.1"]  # setuptools: to install the null backend
RALPH_VERSION = "5.1.0"
HOW_TO = (
    "no Ralph virtualenv (create it with `make ralph-venv`, i.e. "
    "`.venv/bin/python bench/ralph_lrs.py`, or pass `--ralph-python PATH`)"
)
NULL_BACKEND_MODULE = "skillstream_ralph_null"

_NULL_BACKEND = '''\
"""Ralph's filesystem LRS backend, appending or storing nothing (Skillstream's baselines)."""

from ralph.backends.data.base import BaseOperationType
from ralph.backends.lrs.fs import FSLRSBackend


class AppendFSLRSBackend(FSLRSBackend):
    """``FSLRSBackend`` appending to its file (it creates it, then refuses every later write)."""

    name = "fs_append"
    default_operation_type = BaseOperationType.APPEND


class NullLRSBackend(FSLRSBackend):
    """``FSLRSBackend`` whose final write step discards the encoded statements."""

    name = "null"

    def _write_bytes(self, data, target, chunk_size, ignore_errors, operation_type):
        return sum(1 for _ in data)
'''

_NULL_PYPROJECT = f"""\
[build-system]
requires = ["setuptools>=70.1"]
build-backend = "setuptools.build_meta"

[project]
name = "skillstream-ralph-null-backend"
version = "1.0"

[tool.setuptools]
py-modules = ["{NULL_BACKEND_MODULE}"]

[project.entry-points."ralph.backends.lrs"]
null = "{NULL_BACKEND_MODULE}:NullLRSBackend"
fs_append = "{NULL_BACKEND_MODULE}:AppendFSLRSBackend"
"""


def default_python() -> str | None:
    """The Ralph venv's interpreter, when ``make ralph-venv`` has created it."""
    python = RALPH_VENV / "bin" / "python"
    return str(python) if (RALPH_VENV / ".installed").is_file() and python.is_file() else None


def not_run(reason: str = HOW_TO) -> str:
    return f"not run: {reason}"


def resolve_python(explicit: str | None, *, disabled: bool, smoke: bool) -> tuple[str | None, str]:
    """(the Ralph interpreter to use, or None; why not): ``--ralph-python`` if given, else none
    for ``--no-ralph`` or a smoke run (which must not need the venv), else the venv's."""
    if disabled:
        return None, "--no-ralph given"
    if explicit:
        if not Path(explicit).is_file():
            return None, f"--ralph-python {explicit} does not exist; {HOW_TO}"
        return str(Path(explicit).absolute()), ""  # not resolve(): a venv's python is a link
    if smoke:
        return None, "smoke run (tiny counts; pass --ralph-python PATH to include Ralph)"
    found = default_python()
    return (found, "") if found else (None, HOW_TO)


def create_venv(venv: Path) -> Path:
    """Create ``venv`` with Ralph and the two backends; returns its python. Idempotent (its
    ``.installed`` stamp is written last; ``--recreate`` after changing the backends here)."""
    python = venv / "bin" / "python"
    if (venv / ".installed").is_file() and python.is_file():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, RALPH_REQUIREMENT, *RALPH_EXTRA], check=True)
    with tempfile.TemporaryDirectory() as src:
        Path(src, "pyproject.toml").write_text(_NULL_PYPROJECT, encoding="utf-8")
        Path(src, f"{NULL_BACKEND_MODULE}.py").write_text(_NULL_BACKEND, encoding="utf-8")
        subprocess.run([*pip, "--no-build-isolation", src], check=True)
    check = "from ralph.backends.loader import get_lrs_backends; print(sorted(get_lrs_backends()))"
    found = subprocess.run(
        [str(python), "-c", check], check=True, capture_output=True, text=True
    ).stdout
    if "'fs_append'" not in found or "'null'" not in found:
        raise SystemExit(f"Ralph's LRS backends in {venv}: {found.strip()} (fs_append, null)")
    (venv / ".installed").write_text(RALPH_REQUIREMENT + "\n", encoding="utf-8")
    return python


class RalphServer:
    """One Ralph LRS process (uvicorn, one worker, no reload, no access log), HTTP Basic
    credentials made with ``ralph auth``, its data in a temporary directory."""

    def __init__(self, python: str, backend: str) -> None:
        self.python, self.backend = python, backend
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._dir = tempfile.TemporaryDirectory(prefix="ralph-bench-")
        self.data_dir = Path(self._dir.name, "data")
        self.data_dir.mkdir()
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self._dir.name,
            "RALPH_APP_DIR": self._dir.name,
            "RALPH_AUTH_FILE": str(Path(self._dir.name, "auth.json")),
            "RALPH_RUNSERVER_BACKEND": backend,
            "RALPH_RUNSERVER_AUTH_BACKENDS": "basic",
            "RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH": str(self.data_dir),
            "RALPH_BACKENDS__DATA__FS__DEFAULT_DIRECTORY_PATH": str(self.data_dir),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.auth = ""

    @property
    def lrs_file(self) -> Path:
        """Where the filesystem backend appends the statements (its DEFAULT_LRS_FILE)."""
        return self.data_dir / "fs_lrs.jsonl"

    def stored_lines(self) -> int:
        if not self.lrs_file.is_file():
            return 0
        with self.lrs_file.open("rb") as file:
            return sum(1 for line in file if line.strip())

    def _credentials(self) -> None:
        """``ralph auth``, as Ralph's documentation sets up Basic authentication."""
        password = secrets.token_urlsafe(16)
        ralph = str(Path(self.python).parent / "ralph")
        subprocess.run(
            [
                ralph,
                "auth",
                "-u",
                "bench",
                "-p",
                password,
                "-s",
                "all",
                "-M",
                "mailto:b@x.org",
                "-w",
            ],
            env=self.env,
            check=True,
            capture_output=True,
        )
        self.auth = "Basic " + base64.b64encode(f"bench:{password}".encode()).decode()

    async def __aenter__(self) -> RalphServer:
        self._credentials()
        command = [self.python, "-m", "uvicorn", "ralph.api:app", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--no-access-log", "--log-level", "warning"]
        self.proc = subprocess.Popen(
            command,
            env=self.env,
            cwd=self._dir.name,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{self.base}/whoami", headers=self.headers()) as r:
                        if r.status == 200:
                            return self
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise RuntimeError(f"Ralph exited: {err[-2000:]}")
                await asyncio.sleep(0.2)
        raise RuntimeError("Ralph did not answer in 60 s")

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": self.auth,
            "X-Experience-API-Version": "1.0.3",
            "Content-Type": "application/json",
        }

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._dir.cleanup()


RALPH_BACKENDS = {  # backend registered in the Ralph venv -> what the rows call it
    "fs_append": "filesystem backend (appending)",
    "null": "storing nothing",
}
RALPH_RUNS = ((1, 16), (100, 4))  # (statements per POST, requests in flight), as ours


def ralph_name(backend: str, batch: int, in_flight: int) -> str:
    how = "1 statement per POST" if batch == 1 else f"batches of {batch}"
    return f"Ralph LRS {RALPH_VERSION}, {RALPH_BACKENDS[backend]}: {how}, {in_flight} in flight"


async def ralph_backend(
    python: str, backend: str, runs: Sequence[tuple[int, int, Sequence[bytes]]]
) -> list[Result]:
    """One Ralph server with ``backend``; ``runs`` one after the other against it."""
    results: list[Result] = []
    async with RalphServer(python, backend) as server:
        assert server.proc is not None
        accepted = 0
        for batch, in_flight, statements in runs:
            name = ralph_name(backend, batch, in_flight)
            cpu = process_cpu_seconds(server.proc.pid)
            seconds, statuses, error = await ralph_http(server, statements, batch, in_flight)
            used = process_cpu_seconds(server.proc.pid)
            answers = ", ".join(f"{n} x {code}" for code, n in sorted(statuses.items()))
            if error:
                note = f"FAILED: answers {answers}; the first error {error}"
                results.append(Result(name, len(statements), seconds, note=note))
                continue
            accepted += len(statements)
            cpu_used = None if cpu is None or used is None else used - cpu
            checks = f"{len(bodies_of(statements, batch))} POSTs answered {answers}"
            results.append(Result(name, len(statements), seconds, cpu_used, checks=checks))
        lines = server.stored_lines()
    results[-1].checks += (
        f"; afterwards {lines:,} statements in {server.lrs_file.name} for {accepted:,} accepted"
        if backend != "null"
        else f"; afterwards no file written ({lines} lines)"
    )
    if backend != "null" and lines != accepted:
        for r in results:
            r.note = r.note or f"FAILED: {accepted} statements accepted, {lines} in its file"
    return results


async def bench_ralph(
    python: str | None, reason: str, single: Sequence[bytes], batched: Sequence[bytes]
) -> list[Result]:
    """Ralph's LRS on the same statements, one server process per backend: the single POSTs,
    then the batches (as ingest gets them). A statement counts once Ralph answered 200; for
    the filesystem backend, the lines of its file are counted afterwards and must match."""
    runs = [
        (batch, in_flight, single if batch == 1 else batched) for batch, in_flight in RALPH_RUNS
    ]
    results: list[Result] = []
    for backend in RALPH_BACKENDS:

        def rows(note: str, backend: str = backend) -> list[Result]:
            return [Result(ralph_name(backend, b, f), len(s), 0.0, note=note) for b, f, s in runs]

        if python is None:
            results += rows(not_run(reason))
            continue
        try:
            results += await ralph_backend(python, backend, runs)
        except (RuntimeError, OSError, subprocess.SubprocessError, aiohttp.ClientError) as exc:
            results += rows(f"FAILED: {type(exc).__name__}: {exc}"[:600])
    return results


async def ralph_http(
    server: RalphServer, statements: Sequence[bytes], batch: int, in_flight: int
) -> tuple[float, Counter[int], str]:
    """POST ``statements`` to Ralph's ``/xAPI/statements``: (seconds, status counts, first
    error). Ralph answers once the backend's write returned (the file written, for fs)."""
    bodies = bodies_of(statements, batch)
    started = time.monotonic()
    statuses, error = await post_bodies(
        f"{server.base}/xAPI/statements", server.headers(), bodies, in_flight
    )
    return time.monotonic() - started, statuses, error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--venv", type=Path, default=RALPH_VENV)
    parser.add_argument("--recreate", action="store_true", help="delete the venv first")
    args = parser.parse_args()
    if args.recreate and args.venv.exists():
        shutil.rmtree(args.venv)
    print(create_venv(args.venv))


if __name__ == "__main__":
    main()
