"""Checks of how the rendered Kubernetes resources fit together, and all checks at once.

Each check returns a list of problems (empty when all is well): Services versus the workloads they
select and their ports, StatefulSets versus their headless Services, replicas versus partitions,
autoscalers and disruption budgets, the network policies (default deny, and the ingress and
egress each service needs), the learner-name directory ingest and alerts share, and the Strimzi
KafkaTopics versus ``shared.kafka.Topics.specs()``. :func:`all_problems` runs these and the
checks of :mod:`tests.unit.ops.k8s_workload_checks` together.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import pytest

from shared.kafka import Topics
from tests.unit.ops.k8s_helpers import (
    CUSTOM_KINDS,
    DIRECTORY_VARS,
    DNS_PORT,
    EXTRA_TOPIC_CONFIGS,
    WEBHOOK_PORT,
    config_data,
    container_env,
    container_ports,
    kinds,
    named,
    pod_labels,
    pod_spec,
    resolve_port,
    secret_data,
    secret_key_ref,
    selects,
    service_of,
    workloads,
)
from tests.unit.ops.k8s_workload_checks import (
    env_problems,
    namespace_problems,
    probe_problems,
    schema_problems,
    security_problems,
    workload_problems,
)
from tests.unit.ops.kustomize import Resource


def service_problems(resources: list[Resource]) -> list[str]:
    problems = []
    pods = list(workloads(resources))
    for svc in kinds(resources, "Service"):
        sname = svc["metadata"]["name"]
        selected = [
            w
            for w in pods
            if selects({"matchLabels": svc["spec"].get("selector") or {}}, pod_labels(w))
        ]
        if len(selected) != 1:
            problems.append(f"Service/{sname}: selects {len(selected)} workloads")
            continue
        container = pod_spec(selected[0])["containers"][0]
        problems.extend(
            f"Service/{sname}: targetPort {port.get('targetPort')} is no container port"
            for port in svc["spec"]["ports"]
            if resolve_port(port.get("targetPort", port["port"]), container) is None
        )
    for sts in kinds(resources, "StatefulSet"):
        governing = named(resources, "Service", sts["spec"].get("serviceName", ""))
        if governing is None or governing["spec"].get("clusterIP") != "None":
            problems.append(
                f"StatefulSet/{sts['metadata']['name']}: serviceName is no headless Service"
            )
    return problems


def scaling_problems(resources: list[Resource]) -> list[str]:
    problems = []
    partitions = int(config_data(resources).get("SKILLSTREAM_PARTITIONS", "4"))
    for sts in kinds(resources, "StatefulSet"):
        replicas = int(sts["spec"].get("replicas", 1))
        if replicas > partitions:
            sname = sts["metadata"]["name"]
            problems.append(f"StatefulSet/{sname}: {replicas} replicas > {partitions} partitions")
    for hpa in kinds(resources, "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        target = named(resources, ref["kind"], ref["name"])
        hname = hpa["metadata"]["name"]
        if target is None:
            problems.append(f"HPA/{hname}: targets undefined {ref['kind']}/{ref['name']}")
            continue
        low, high = int(hpa["spec"].get("minReplicas", 1)), int(hpa["spec"]["maxReplicas"])
        if not low <= int(target["spec"].get("replicas", 1)) <= high:
            problems.append(f"HPA/{hname}: the workload's replicas are outside {low}..{high}")
    for pdb in kinds(resources, "PodDisruptionBudget"):
        pname = pdb["metadata"]["name"]
        selected = [
            w for w in workloads(resources) if selects(pdb["spec"]["selector"], pod_labels(w))
        ]
        if len(selected) != 1:
            problems.append(f"PDB/{pname}: selects {len(selected)} workloads")
            continue
        floor = int(selected[0]["spec"].get("replicas", 1))
        scalers = [
            h
            for h in kinds(resources, "HorizontalPodAutoscaler")
            if h["spec"]["scaleTargetRef"]["name"] == service_of(selected[0])
        ]
        if scalers:
            floor = int(scalers[0]["spec"].get("minReplicas", 1))
        if (
            int(pdb["spec"].get("minAvailable", 0)) >= floor
            and floor > 0
            and "minAvailable" in pdb["spec"]
        ):
            problems.append(f"PDB/{pname}: minAvailable >= {floor} replicas blocks every drain")
    return problems


def _ports(rule: Mapping[str, Any]) -> set[int]:
    return {int(p["port"]) for p in rule.get("ports") or []}


def network_problems(resources: list[Resource]) -> list[str]:
    problems = []
    policies = kinds(resources, "NetworkPolicy")
    pods = {service_of(w): w for w in workloads(resources)}
    if not any(
        p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
        for p in policies
    ):
        problems.append("no default-deny NetworkPolicy for ingress and egress")
    for policy in policies:
        selected = [
            w for w in pods.values() if selects(policy["spec"]["podSelector"], pod_labels(w))
        ]
        if not selected:
            problems.append(f"NetworkPolicy/{policy['metadata']['name']}: selects no pod")
        served = {
            p
            for w in selected
            for c in pod_spec(w)["containers"]
            for p in container_ports(c).values()
        }
        pname = policy["metadata"]["name"]
        problems.extend(
            f"NetworkPolicy/{pname}: opens {port}, served by none of its pods"
            for rule in policy["spec"].get("ingress") or []
            for port in sorted(_ports(rule) - served)
        )

    env = config_data(resources)
    kafka_ports = {int(h.rsplit(":", 1)[1]) for h in env["KAFKA_BOOTSTRAP_SERVERS"].split(",")}
    secrets = secret_data(resources)
    db_ports = {
        urlsplit(s["DATABASE_URL"]).port or 5432 for s in secrets.values() if "DATABASE_URL" in s
    }
    for name, workload in pods.items():
        applying = [p for p in policies if selects(p["spec"]["podSelector"], pod_labels(workload))]
        ingress = [r for p in applying for r in p["spec"].get("ingress") or []]
        open_to_all = [r for r in ingress if not r.get("from")]
        if name == "ingest" and not open_to_all:
            problems.append("ingest: not reachable from outside")
        if name != "ingest" and open_to_all:
            problems.append(f"{name}: reachable from anywhere")
        egress = [r for p in applying for r in p["spec"].get("egress") or []]
        allowed = set().union(*(_ports(r) for r in egress)) if egress else set()
        if any(not r.get("ports") for r in egress):
            problems.append(f"{name}: an egress rule allows every port")
        expected = (
            {DNS_PORT}
            | kafka_ports
            | db_ports
            | ({WEBHOOK_PORT} | ingest_ports(resources) if name == "alerts" else set())
        )
        if not kafka_ports | db_ports | {DNS_PORT} <= allowed:
            problems.append(
                f"{name}: egress lacks {sorted(kafka_ports | db_ports | {DNS_PORT} - allowed)}"
            )
        extra = allowed - expected - {9093}
        if extra:
            problems.append(f"{name}: egress also opens {sorted(extra)}")
    return problems


def ingest_ports(resources: list[Resource]) -> set[int]:
    ingest = named(resources, "Deployment", "ingest")
    return set(container_ports(pod_spec(ingest)["containers"][0]).values()) if ingest else set()


def _reaches(rule: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """An egress rule's peers include pods with ``labels`` in the namespace (no ``to``: any)."""
    peers = rule.get("to")
    if not peers:
        return True
    return any(
        "podSelector" in peer
        and "namespaceSelector" not in peer
        and selects(peer["podSelector"], labels)
        for peer in peers
    )


def directory_problems(resources: list[Resource]) -> list[str]:
    """Learner names: ingest and alerts take the directory token from the same Secret key, and
    ALERTS_INGEST_URL names the ingest Service on one of its ports, which alerts may reach."""
    problems = []
    pods = {service_of(w): w for w in workloads(resources)}
    if set(DIRECTORY_VARS) - set(pods):
        return [f"no workload for {sorted(set(DIRECTORY_VARS) - set(pods))}"]
    refs = {
        name: secret_key_ref(pod_spec(pods[name])["containers"][0], var)
        for name, var in DIRECTORY_VARS.items()
    }
    if None in refs.values() or len(set(refs.values())) != 1:
        problems.append(f"ingest and alerts do not share the directory token's Secret key: {refs}")
    alerts = pod_spec(pods["alerts"])["containers"][0]
    env, _ = container_env(pods["alerts"], alerts, resources)
    url = urlsplit(env.get("ALERTS_INGEST_URL", ""))
    service = named(resources, "Service", url.hostname or "")
    if service is None or not selects(
        {"matchLabels": service["spec"].get("selector") or {}}, pod_labels(pods["ingest"])
    ):
        problems.append(f"ALERTS_INGEST_URL {url.geturl()!r} does not name the ingest Service")
        return problems
    port = next((p for p in service["spec"]["ports"] if p["port"] == (url.port or 80)), None)
    if port is None:
        problems.append(f"ALERTS_INGEST_URL port {url.port} is not a port of Service/ingest")
        return problems
    target = resolve_port(
        port.get("targetPort", port["port"]), pod_spec(pods["ingest"])["containers"][0]
    )
    reachable = any(
        target in _ports(rule) and _reaches(rule, pod_labels(pods["ingest"]))
        for policy in kinds(resources, "NetworkPolicy")
        if selects(policy["spec"]["podSelector"], pod_labels(pods["alerts"]))
        for rule in policy["spec"].get("egress") or []
    )
    if not reachable:
        problems.append(f"alerts: no egress rule lets it reach ingest's pods on {target}")
    return problems


def topic_problems(resources: list[Resource]) -> list[str]:
    topics = [r for r in resources if (r["apiVersion"], r["kind"]) in CUSTOM_KINDS]
    if not topics:
        return []
    env = config_data(resources)
    expected = Topics(
        env.get("SKILLSTREAM_TOPIC_PREFIX", ""),
        int(env.get("SKILLSTREAM_PARTITIONS", "4")),
        int(env.get("SKILLSTREAM_REPLICATION_FACTOR", "1")),
    ).specs()
    problems = []
    bootstrap_host = env["KAFKA_BOOTSTRAP_SERVERS"].split(",")[0].split(".")[0]
    by_name = {t["spec"].get("topicName", t["metadata"]["name"]): t for t in topics}
    if set(by_name) != {s.name for s in expected}:
        problems.append(f"KafkaTopics {sorted(by_name)} != {sorted(s.name for s in expected)}")
    for spec in expected:
        topic = by_name.get(spec.name)
        if topic is None:
            continue
        body = topic["spec"]
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", topic["metadata"]["name"]):
            problems.append(f"{spec.name}: metadata.name is not a DNS-1123 name")
        cluster = topic["metadata"].get("labels", {}).get("strimzi.io/cluster")
        if cluster is None or bootstrap_host != f"{cluster}-kafka-bootstrap":
            problems.append(
                f"{spec.name}: strimzi.io/cluster {cluster} is not the bootstrap's cluster"
            )
        if body.get("partitions") != spec.partitions:
            problems.append(
                f"{spec.name}: {body.get('partitions')} partitions, code says {spec.partitions}"
            )
        if body.get("replicas") != spec.replication_factor:
            problems.append(
                f"{spec.name}: {body.get('replicas')} replicas, code says {spec.replication_factor}"
            )
        config = {k: str(v) for k, v in (body.get("config") or {}).items()}
        for key, value in spec.config.items():
            if config.get(key) != value:
                problems.append(f"{spec.name}: {key}={config.get(key)!r}, code says {value!r}")
        extra = set(config) - set(spec.config) - EXTRA_TOPIC_CONFIGS
        if extra:
            problems.append(f"{spec.name}: configs the code does not set: {sorted(extra)}")
        unknown = set(body) - {"topicName", "partitions", "replicas", "config"}
        if unknown:
            problems.append(f"{spec.name}: unknown spec fields {sorted(unknown)}")
    return problems


def all_problems(resources: list[Resource], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return [
        *schema_problems(resources),
        *namespace_problems(resources),
        *workload_problems(resources),
        *env_problems(resources, monkeypatch),
        *probe_problems(resources),
        *security_problems(resources),
        *service_problems(resources),
        *scaling_problems(resources),
        *network_problems(resources),
        *directory_problems(resources),
        *topic_problems(resources),
    ]
