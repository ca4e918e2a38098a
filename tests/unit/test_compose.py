"""Static checks of docker-compose.yml, deploy/Dockerfile and .dockerignore.

Docker does not run where the unit tests run, so these read the files and hold them against the
code: every variable a service container gets is one its settings class reads, the published
ports are the ports the settings end up with, the commands name modules that exist, the broker
is a valid single-node KRaft set-up and the image runs as a non-root user.

Each check is a function returning a list of problems (empty when all is well), so the
self-check tests at the end can feed it broken input and see it complain.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from services.alerts.config import AlertsSettings
from services.ingest.config import IngestSettings
from services.progress.config import ProgressSettings
from shared.settings import ServiceSettings, env_names

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

#: compose service name -> the settings class of the service it runs
SETTINGS: dict[str, type[ServiceSettings]] = {
    "ingest": IngestSettings,
    "progress": ProgressSettings,
    "alerts": AlertsSettings,
}
#: the variables every service needs in a real deployment (their defaults are for development)
REQUIRED_SHARED = ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "SKILLSTREAM_LEARNER_KEY_SALT")
#: variables read by Python itself rather than by a settings class
ALLOWED_EXTRA_ENV = frozenset(
    {"PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONFAULTHANDLER", "PYTHONHASHSEED", "TZ"}
)
#: internal-topic settings that must be 1 on a one-node cluster
KAFKA_SINGLE_NODE_ONES = (
    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
    "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
)
COMPILERS = ("gcc", "g++", "cc", "clang", "build-essential", "make")
HEALTHZ_URL = re.compile(r"https?://(?P<host>[^/:'\"\s]+):(?P<port>\d+)/healthz\b")

Compose = dict[str, Any]


# ---------------------------------------------------------------- reading compose


def load_compose() -> Compose:
    doc = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), "docker-compose.yml is not a mapping"
    assert isinstance(doc.get("services"), dict), "docker-compose.yml has no services mapping"
    return doc


_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's variable substitution: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``,
    ``${VAR-default}``, ``${VAR:?message}`` and ``${VAR?message}``."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        current = env.get(name)
        missing = current is None or (op is not None and op.startswith(":") and current == "")
        if not missing:
            return current or ""
        if op is not None and op.endswith("?"):
            raise ValueError(f"${{{name}}} is required: {arg}")
        return arg if op is not None else ""

    return _INTERPOLATION.sub(substitute, value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def environment_of(
    service: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The service's environment after interpolation (with the defaults written in the file,
    not whatever the shell running the tests happens to export)."""
    raw = service.get("environment") or {}
    pairs: dict[str, Any]
    if isinstance(raw, list):
        pairs = dict(str(item).partition("=")[::2] for item in raw)
    else:
        pairs = dict(raw)
    return {str(k): interpolate(_scalar(v), env or {}) for k, v in pairs.items()}


def command_of(service: Mapping[str, Any]) -> list[str]:
    command = service.get("command")
    if isinstance(command, str):
        return shlex.split(command)
    return [str(part) for part in command or []]


def healthcheck_text(service: Mapping[str, Any]) -> str:
    test = (service.get("healthcheck") or {}).get("test")
    return test if isinstance(test, str) else " ".join(str(part) for part in test or [])


def published_container_ports(service: Mapping[str, Any]) -> list[int]:
    """Container-side ports of ``ports:``, short (``[ip:][host:]container[/proto]``) or long."""
    ports: list[int] = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            ports.append(int(entry["target"]))
            continue
        container = str(entry).split("/", 1)[0].rsplit(":", 1)[-1]
        ports.append(int(container))  # a range "8080-8081" fails here, on purpose
    return ports


def app_services(compose: Compose) -> Iterator[tuple[str, dict[str, Any]]]:
    for name in SETTINGS:
        yield name, compose["services"][name]


# ---------------------------------------------------------------- checks (return problems)


def healthcheck_problems(compose: Compose) -> list[str]:
    problems = []
    for name, service in compose["services"].items():
        check = service.get("healthcheck")
        if not isinstance(check, dict) or check.get("disable"):
            problems.append(f"{name}: no health check")
        elif healthcheck_text(service).strip() in ("", "NONE"):
            problems.append(f"{name}: health check has no test")
    return problems


def depends_on_problems(compose: Compose) -> list[str]:
    services = compose["services"]
    problems = []
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            problems.append(f"{name}: depends_on is a list (no condition: service_healthy)")
            continue
        for dep, spec in depends.items():
            if dep not in services:
                problems.append(f"{name}: depends_on names undefined service {dep!r}")
            elif not services[dep].get("healthcheck"):
                problems.append(f"{name}: depends on {dep!r}, which has no health check")
            condition = (spec or {}).get("condition")
            if condition != "service_healthy":
                problems.append(f"{name}: depends_on {dep!r} with condition {condition!r}")
    return problems


def env_problems(name: str, env: Mapping[str, str], cls: type[ServiceSettings]) -> list[str]:
    known = env_names(cls)
    problems = [
        f"{name}: {var} is not read by {cls.__name__}"
        for var in sorted(env)
        if var not in known and var not in ALLOWED_EXTRA_ENV
    ]
    problems += [f"{name}: {var} is not set" for var in REQUIRED_SHARED if not env.get(var)]
    return problems


def port_problems(name: str, service: Mapping[str, Any], settings: ServiceSettings) -> list[str]:
    problems = []
    published = published_container_ports(service)
    if not published:
        problems.append(f"{name}: publishes no port")
    problems += [
        f"{name}: publishes container port {port}, the service listens on {settings.http_port}"
        for port in published
        if port != settings.http_port
    ]
    if settings.http_host not in ("0.0.0.0", "::"):
        problems.append(f"{name}: binds {settings.http_host}, unreachable from outside")
    urls = list(HEALTHZ_URL.finditer(healthcheck_text(service)))
    if not urls:
        problems.append(f"{name}: health check requests no http://host:port/healthz URL")
    problems += [
        f"{name}: health check asks port {url['port']}, the service listens on {settings.http_port}"
        for url in urls
        if int(url["port"]) != settings.http_port
    ]
    return problems


def command_problems(name: str, service: Mapping[str, Any]) -> list[str]:
    command = command_of(service)
    if len(command) != 3 or command[:2] != ["python", "-m"]:
        return [f"{name}: command {command!r} is not python -m <module>"]
    module = command[2]
    problems = []
    if module != f"services.{name}":
        problems.append(f"{name}: runs {module}, not services.{name}")
    spec = importlib.util.find_spec(module)
    if spec is None:
        problems.append(f"{name}: module {module} does not exist")
    elif spec.submodule_search_locations is not None and (
        importlib.util.find_spec(f"{module}.__main__") is None
    ):
        problems.append(f"{name}: package {module} has no __main__ (python -m cannot run it)")
    return problems


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    """``NAME://host:port,...`` -> {NAME: (host, port)}."""
    parsed = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        listener_name, _, address = item.partition("://")
        host, _, port = address.rpartition(":")
        parsed[listener_name] = (host, int(port))
    return parsed


def kafka_problems(compose: Compose, service_name: str = "kafka") -> list[str]:
    service = compose["services"][service_name]
    env = environment_of(service)
    problems = []

    def get(var: str) -> str:
        if var not in env:
            problems.append(f"kafka: {var} is not set")
        return env.get(var, "")

    roles = {role.strip() for role in get("KAFKA_PROCESS_ROLES").split(",")}
    if roles != {"broker", "controller"}:
        problems.append(f"kafka: process roles {sorted(roles)}, want broker,controller")
    node_id = get("KAFKA_NODE_ID")
    if not get("CLUSTER_ID"):
        problems.append("kafka: CLUSTER_ID is empty (the image needs it in KRaft mode)")
    problems += [
        f"kafka: {var}={env.get(var)!r}, a single node needs 1"
        for var in KAFKA_SINGLE_NODE_ONES
        if get(var) != "1"
    ]
    if get("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS") != "0":
        problems.append("kafka: KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS is not 0")
    if get("KAFKA_AUTO_CREATE_TOPICS_ENABLE").lower() != "false":
        problems.append("kafka: topics are auto-created (KAFKA_AUTO_CREATE_TOPICS_ENABLE)")

    listeners = _listeners(get("KAFKA_LISTENERS"))
    advertised = _listeners(get("KAFKA_ADVERTISED_LISTENERS"))
    protocols = dict(
        item.split(":", 1)
        for item in get("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP").split(",")
        if item
    )
    controllers = [c.strip() for c in get("KAFKA_CONTROLLER_LISTENER_NAMES").split(",") if c]
    voters = [v.strip() for v in get("KAFKA_CONTROLLER_QUORUM_VOTERS").split(",") if v]
    if len(voters) != 1:
        problems.append(f"kafka: {len(voters)} quorum voters, a single node has 1")
    controller_ports = {listeners[c][1] for c in controllers if c in listeners}
    for voter in voters:
        voter_id, _, address = voter.partition("@")
        if voter_id != node_id:
            problems.append(f"kafka: quorum voter {voter!r} is not node {node_id!r}")
        if int(address.rpartition(":")[2] or 0) not in controller_ports:
            problems.append(f"kafka: quorum voter {voter!r} is not a controller listener port")
    if not controllers or not set(controllers) <= set(listeners):
        problems.append(f"kafka: controller listeners {controllers} not all in KAFKA_LISTENERS")
    problems += [
        f"kafka: listener {listener} has no security protocol"
        for listener in set(listeners) | set(advertised)
        if listener not in protocols
    ]
    if get("KAFKA_INTER_BROKER_LISTENER_NAME") not in listeners:
        problems.append("kafka: the inter-broker listener is not one of KAFKA_LISTENERS")

    # every bootstrap address a service uses must be advertised, and its host a compose service
    advertised_addresses = {f"{host}:{port}" for host, port in advertised.values()}
    for name, app in compose["services"].items():
        bootstrap = environment_of(app).get("KAFKA_BOOTSTRAP_SERVERS")
        for address in filter(None, (bootstrap or "").split(",")):
            if address not in advertised_addresses:
                problems.append(f"{name}: bootstrap {address} is not an advertised listener")
            if address.rpartition(":")[0] not in compose["services"]:
                problems.append(f"{name}: bootstrap {address} is not a compose service")

    check = healthcheck_text(service)
    if not re.search(r"kafka-(broker-api-versions|topics)\.sh", check) or not any(
        f"{host}:{port}" in check
        for host in ("localhost", "127.0.0.1")
        for _, port in listeners.values()
    ):
        problems.append(f"kafka: health check {check!r} does not query the broker on localhost")
    return problems


def database_problems(compose: Compose, service_name: str = "postgres") -> list[str]:
    """Every DATABASE_URL names the postgres service with the user, password and db it creates."""
    pg = environment_of(compose["services"][service_name])
    user = pg.get("POSTGRES_USER", "postgres")
    want = (user, pg.get("POSTGRES_PASSWORD"), pg.get("POSTGRES_DB", user))
    problems = []
    if not pg.get("POSTGRES_PASSWORD"):
        problems.append("postgres: POSTGRES_PASSWORD is not set")
    for name, app in compose["services"].items():
        dsn = environment_of(app).get("DATABASE_URL")
        if dsn is None:
            continue
        url = urlsplit(dsn)
        if url.scheme not in ("postgresql", "postgres"):
            problems.append(f"{name}: DATABASE_URL is not a postgresql:// URL")
        if (url.hostname, url.port or 5432) != (service_name, 5432):
            problems.append(f"{name}: DATABASE_URL points at {url.hostname}:{url.port}")
        if (url.username, url.password, url.path.lstrip("/")) != want:
            problems.append(f"{name}: DATABASE_URL user/password/db differ from {service_name}'s")
    return problems


def build_problems(compose: Compose) -> list[str]:
    problems = []
    for name in SETTINGS:
        service = compose["services"].get(name)
        if service is None:
            problems.append(f"{name}: not defined")
            continue
        build = service.get("build")
        if not isinstance(build, dict):
            problems.append(f"{name}: build is not a mapping with context and dockerfile")
            continue
        context = (COMPOSE_FILE.parent / str(build.get("context", "."))).resolve()
        dockerfile = (context / str(build.get("dockerfile", "Dockerfile"))).resolve()
        if dockerfile != DOCKERFILE.resolve():
            problems.append(f"{name}: builds {dockerfile}, not {DOCKERFILE}")
        if context != ROOT:
            problems.append(f"{name}: build context {context} is not the repository root")
    return problems


# ---------------------------------------------------------------- reading the Dockerfile


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


# ---------------------------------------------------------------- the real files


@pytest.fixture(scope="module")
def compose() -> Compose:
    return load_compose()


def settings_for(
    cls: type[ServiceSettings], env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch
) -> ServiceSettings:
    """Build ``cls`` the way the container does: from the compose environment alone."""
    for var in env_names(cls):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    return cls()


def test_compose_parses_and_defines_the_expected_services(compose: Compose) -> None:
    assert {"kafka", "postgres", *SETTINGS} <= set(compose["services"])
    assert compose["services"]["kafka"]["image"] == "apache/kafka:4.1.1"
    assert str(compose["services"]["postgres"]["image"]).startswith("postgres:15")


def test_every_service_has_a_health_check(compose: Compose) -> None:
    assert healthcheck_problems(compose) == []


def test_depends_on_waits_for_healthy_defined_services(compose: Compose) -> None:
    assert depends_on_problems(compose) == []
    for name, service in app_services(compose):
        assert {"kafka", "postgres"} <= set(service["depends_on"]), name
        assert service.get("restart") == "unless-stopped", name


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_service_environment_is_read_by_its_settings(compose: Compose, name: str) -> None:
    env = environment_of(compose["services"][name])
    assert env_problems(name, env, SETTINGS[name]) == []


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_published_and_health_check_ports_are_the_settings_port(
    compose: Compose, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = compose["services"][name]
    settings = settings_for(SETTINGS[name], environment_of(service), monkeypatch)
    assert port_problems(name, service, settings) == []


def test_services_use_distinct_ports(compose: Compose) -> None:
    ports = [p for _, service in app_services(compose) for p in published_container_ports(service)]
    assert len(ports) == len(set(ports)) == len(SETTINGS)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_command_runs_an_existing_module(compose: Compose, name: str) -> None:
    assert command_problems(name, compose["services"][name]) == []


def test_kafka_is_a_single_node_kraft_cluster_reachable_by_the_services(compose: Compose) -> None:
    assert kafka_problems(compose) == []


def test_database_url_matches_the_postgres_service(compose: Compose) -> None:
    assert database_problems(compose) == []
    check = healthcheck_text(compose["services"]["postgres"])
    assert "pg_isready" in check


def test_named_volumes_are_declared(compose: Compose) -> None:
    declared = set(compose.get("volumes") or {})
    for name in ("kafka", "postgres"):
        mounts = compose["services"][name].get("volumes") or []
        sources = {str(m).split(":", 1)[0] if isinstance(m, str) else m["source"] for m in mounts}
        assert sources, f"{name} keeps its data in no volume"
        assert sources <= declared, f"{name}: volumes {sources - declared} are not declared"


def test_services_build_the_shared_dockerfile(compose: Compose) -> None:
    assert build_problems(compose) == []


def test_dockerfile_final_stage_is_safe_and_exposes_compose_ports(compose: Compose) -> None:
    ports = {p for _, service in app_services(compose) for p in published_container_ports(service)}
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert dockerfile_problems(text, ports) == []
    final = parse_dockerfile(text)[-1]
    assert final.args("USER")[-1].split(":", 1)[0] == "10001"
    assert final.args("CMD")[-1] == '["python", "-m", "services.ingest"]'


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    ignored = {
        line.strip().strip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".local", ".pytest_cache", ".mypy_cache"} <= ignored


# ---------------------------------------------------------------- the checks themselves


def broken_compose() -> Compose:
    """A compose document with one mistake of each kind the checks look for."""
    return {
        "services": {
            "kafka": {
                "environment": {
                    "CLUSTER_ID": "x",
                    "KAFKA_NODE_ID": 1,
                    "KAFKA_PROCESS_ROLES": "broker",
                    "KAFKA_LISTENERS": "PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093",
                    "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://localhost:9092",
                    "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
                    "KAFKA_CONTROLLER_QUORUM_VOTERS": "2@kafka:9093",
                    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT",
                    "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
                    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": 3,
                    "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": 0,
                    "KAFKA_AUTO_CREATE_TOPICS_ENABLE": True,
                },
                "healthcheck": {"test": ["CMD", "true"]},
            },
            "postgres": {"environment": {"POSTGRES_PASSWORD": "pw"}},  # no health check
            "ingest": {
                "build": {"context": "deploy"},
                "command": ["python", "-m", "services.nonexistent"],
                "depends_on": {"kafka": {"condition": "service_started"}, "postgres": {}},
                "environment": [
                    "KAFKA_BOOTSTRAP_SERVERS=kafka:9092",
                    "DATABASE_URL=postgresql://app:pw@db:5432/app",
                    "INGEST_HTTP_PROT=8080",
                    "INGEST_HTTP_PORT=9090",
                ],
                "ports": ["8080:8080"],
                "healthcheck": {"test": "python -c 'urlopen(\"http://127.0.0.1:8081/healthz\")'"},
            },
            "progress": {
                "depends_on": ["kafka", "zookeeper"],
                "command": "python -m services.alerts",
            },
        }
    }


def test_checks_report_a_broken_compose_file(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = broken_compose()
    services = doc["services"]
    assert healthcheck_problems(doc) == ["postgres: no health check", "progress: no health check"]
    depends = depends_on_problems(doc)
    assert any("condition 'service_started'" in p for p in depends)
    assert any("condition None" in p for p in depends)
    assert any("which has no health check" in p for p in depends)
    assert any(p.startswith("progress: depends_on is a list") for p in depends)

    env = environment_of(services["ingest"])
    problems = env_problems("ingest", env, IngestSettings)
    assert "ingest: INGEST_HTTP_PROT is not read by IngestSettings" in problems
    assert "ingest: SKILLSTREAM_LEARNER_KEY_SALT is not set" in problems

    settings = settings_for(IngestSettings, env, monkeypatch)
    assert settings.http_port == 9090  # built from the compose environment, not the defaults
    ports = port_problems("ingest", services["ingest"], settings)
    assert any("publishes container port 8080" in p for p in ports)
    assert any("health check asks port 8081" in p for p in ports)
    assert any("binds 127.0.0.1" in p for p in ports)

    assert any("does not exist" in p for p in command_problems("ingest", services["ingest"]))
    assert command_problems("progress", services["progress"]) == [
        "progress: runs services.alerts, not services.progress"
    ]

    kafka = kafka_problems(doc)
    for expected in (
        "process roles ['broker']",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR='3'",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR is not set",
        "quorum voter '2@kafka:9093' is not node '1'",
        "topics are auto-created",
        "listener PLAINTEXT has no security protocol",
        "ingest: bootstrap kafka:9092 is not an advertised listener",
        "health check",
    ):
        assert any(expected in p for p in kafka), (expected, kafka)

    database = database_problems(doc)
    assert any("points at db:5432" in p for p in database)
    assert any("user/password/db differ" in p for p in database)

    builds = build_problems(doc)
    assert any(p.startswith("ingest: build context") for p in builds)  # deploy/, not the root
    services["ingest"]["build"] = {"context": ".", "dockerfile": "Dockerfile"}
    assert any(p.startswith("ingest: builds") for p in build_problems(doc))
    assert any(p.startswith("progress: build is not a mapping") for p in builds)
    assert "alerts: not defined" in builds


def test_checks_report_a_broken_dockerfile() -> None:
    single = "FROM python:3.11-slim\nCMD python\n"
    assert dockerfile_problems(single, {8080}) == [
        "Dockerfile: not multi-stage (a builder stage and a runtime stage)"
    ]
    broken = """\
ARG BASE=python:3.11-slim
FROM ${BASE} AS builder
RUN pip install .
FROM ${BASE}
# USER 10001 (a comment, not an instruction)
RUN apt-get update && apt-get install -y \\
    build-essential && useradd --uid 0 app
ENV PYTHONUNBUFFERED=1
EXPOSE 8080/tcp 8081
USER app:app
HEALTHCHECK CMD true
"""
    problems = dockerfile_problems(broken, {8080, 8081, 8082})
    assert problems == [
        "Dockerfile: final stage copies nothing from the builder",
        "Dockerfile: final stage runs as 'app' (root)",
        "Dockerfile: port 8082 is not EXPOSEd",
        "Dockerfile: final stage installs the compiler build-essential",
        "Dockerfile: final stage does not set PYTHONDONTWRITEBYTECODE=1",
        "Dockerfile: has a HEALTHCHECK (compose and Kubernetes define them)",
    ]
    no_user = dockerfile_problems(broken.replace("USER app:app", ""), set())
    assert "Dockerfile: final stage runs as 'root' (root)" in no_user


def test_interpolation_follows_compose_rules() -> None:
    env = {"SET": "v", "EMPTY": ""}
    assert interpolate("a${SET:-d}b$SET$$x", env) == "avbv$x"
    assert interpolate("${UNSET:-d}|${EMPTY:-d}|${EMPTY-d}|${UNSET}", env) == "d|d||"
    with pytest.raises(ValueError, match="needed"):
        interpolate("${UNSET:?needed}", env)
