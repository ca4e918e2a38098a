"""Checks of a docker-compose document, each returning a list of problems (empty when all is well).

Returning problems rather than asserting lets the self-checks feed the checks broken input: health
checks, ``depends_on`` conditions, every variable a service container gets being one its settings
class reads, the published and health-check ports versus the settings' port, commands naming
modules that exist, the broker being a valid single-node KRaft set-up the services can reach,
every DATABASE_URL naming the postgres service, and the services building the shared Dockerfile.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from shared.settings import ServiceSettings, env_names
from tests.unit.compose.helpers import (
    ALLOWED_EXTRA_ENV,
    COMPOSE_FILE,
    DOCKERFILE,
    HEALTHZ_URL,
    KAFKA_SINGLE_NODE_ONES,
    REQUIRED_SHARED,
    ROOT,
    SETTINGS,
    Compose,
    command_of,
    environment_of,
    healthcheck_text,
    published_container_ports,
)


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
