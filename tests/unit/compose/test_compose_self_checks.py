"""Self-checks of the docker-compose and Dockerfile checks, and of Compose's interpolation.

The checks return lists of problems, so these feed them broken input and expect complaints: a
compose document and a Dockerfile with one mistake of each kind the checks look for. The
interpolation must follow Compose's rules for ``$$``, defaults and required variables.
"""

from __future__ import annotations

import pytest

from services.ingest.config import IngestSettings
from tests.unit.compose.checks import (
    build_problems,
    command_problems,
    database_problems,
    depends_on_problems,
    env_problems,
    healthcheck_problems,
    kafka_problems,
    port_problems,
)
from tests.unit.compose.dockerfile import dockerfile_problems
from tests.unit.compose.helpers import Compose, environment_of, interpolate, settings_for


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
