"""Reading and checking deploy/Dockerfile without Docker.

:func:`parse_dockerfile` splits a Dockerfile into stages with their instructions (continuation
lines joined, comments dropped, global ARGs substituted into FROM), and
:func:`dockerfile_problems` returns a list of problems (empty when all is well): a multi-stage
build whose final stage copies from the builder, runs as a non-root user, EXPOSEs the compose
ports, installs no compiler and sets the Python environment variables, with no HEALTHCHECK.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from tests.unit.compose.helpers import COMPILERS, interpolate


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, instruction: str) -> list[str]:
        return [args for ins, args in self.instructions if ins == instruction]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages with their instructions, continuation lines joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    if pending:
        lines.append(pending)

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        instruction, _, args = line.partition(" ")
        instruction, args = instruction.upper(), args.strip()
        if instruction == "ARG" and not stages:
            key, _, default = args.partition("=")
            global_args[key] = default
        elif instruction == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            base = interpolate(words[0], global_args)
            stage_name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, stage_name))
        elif stages:
            stages[-1].instructions.append((instruction, args))
    return stages


def env_of_stage(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.args("ENV"):
        words = shlex.split(args)
        if words and "=" not in words[0]:  # legacy "ENV KEY value"
            env[words[0]] = " ".join(words[1:])
            continue
        env.update(word.partition("=")[::2] for word in words)
    return env


def dockerfile_problems(text: str, ports: set[int]) -> list[str]:
    stages = parse_dockerfile(text)
    if len(stages) < 2:
        return ["Dockerfile: not multi-stage (a builder stage and a runtime stage)"]
    final = stages[-1]
    problems = []
    if final.base != "python:3.11-slim":
        problems.append(f"Dockerfile: final stage is based on {final.base}")
    if not any(a.startswith("--from=") for a in final.args("COPY")):
        problems.append("Dockerfile: final stage copies nothing from the builder")

    users = final.args("USER")
    user = users[-1].split(":", 1)[0] if users else "root"
    uid = user
    if not user.isdigit():  # a name: the uid it was created with in this stage
        found = [
            m["uid"]
            for run in final.args("RUN")
            if re.search(rf"useradd\b.*\b{re.escape(user)}\b", run)
            for m in [re.search(r"(?:--uid|-u)\s+(?P<uid>\d+)", run)]
            if m
        ]
        uid = found[0] if found else "0"
    if uid == "0" or user == "root":
        problems.append(f"Dockerfile: final stage runs as {user!r} (root)")

    exposed = {int(word.split("/", 1)[0]) for args in final.args("EXPOSE") for word in args.split()}
    problems += [f"Dockerfile: port {p} is not EXPOSEd" for p in sorted(ports - exposed)]

    for run in final.args("RUN"):
        if re.search(r"\b(apt-get|apt|apk)\b.*\binstall\b", run):
            problems += [
                f"Dockerfile: final stage installs the compiler {tool}"
                for tool in COMPILERS
                if re.search(rf"(?<![\w.-]){re.escape(tool)}(?![\w.-])", run)
            ]
    env = env_of_stage(final)
    problems += [
        f"Dockerfile: final stage does not set {var}=1"
        for var in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED")
        if env.get(var) != "1"
    ]
    if any(ins == "HEALTHCHECK" for stage in stages for ins, _ in stage.instructions):
        problems.append("Dockerfile: has a HEALTHCHECK (compose and Kubernetes define them)")
    return problems
