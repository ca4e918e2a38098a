"""Static checks of the real docker-compose.yml, deploy/Dockerfile and .dockerignore.

Docker does not run where the unit tests run, so these read the files and hold them against the
code with the checks of :mod:`tests.unit.compose.checks` and :mod:`tests.unit.compose.dockerfile`:
every variable a service container gets is one its settings class reads, the published ports are
the ports the settings end up with, the commands name modules that exist, the broker is a valid
single-node KRaft set-up, the data volumes are declared, the image runs as a non-root user and
the build context leaves local state out.
"""

from __future__ import annotations

import pytest

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
from tests.unit.compose.dockerfile import dockerfile_problems, parse_dockerfile
from tests.unit.compose.helpers import (
    DOCKERFILE,
    DOCKERIGNORE,
    SETTINGS,
    Compose,
    app_services,
    environment_of,
    healthcheck_text,
    load_compose,
    published_container_ports,
    settings_for,
)


@pytest.fixture(scope="module")
def compose() -> Compose:
    return load_compose()


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
