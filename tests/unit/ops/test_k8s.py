"""The Kubernetes manifests (deploy/k8s): rendered, schema-validated and held against the code.

``kubectl`` and ``kustomize`` are not installed here, so :mod:`tests.unit.ops.kustomize` renders
each overlay, ``kubernetes-validate`` checks every resource against the Kubernetes OpenAPI schemas
(strict: unknown fields are errors), and the checks below hold the result against the services:
variables their settings classes read, their HTTP ports, their probe routes, partitions versus
replicas, selectors versus labels, network policies, the Strimzi topics versus
``shared.kafka.Topics.specs()``.

Each check returns a list of problems (empty when all is well); the self-checks at the end feed
them broken manifests to prove they complain.
"""

from __future__ import annotations

import copy
import importlib.util
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from prometheus_client import CollectorRegistry

from services.alerts.config import AlertsSettings
from services.ingest.config import IngestSettings
from services.progress.config import ProgressSettings
from shared.health import Health
from shared.http import ops_app
from shared.kafka import Topics
from shared.metrics import BaseMetrics
from shared.settings import ServiceSettings, env_names
from tests.unit.ops.kustomize import KustomizeError, Resource, render, strategic_merge

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSION = "1.30"
NAMESPACE = "skillstream"
SECRET_TEMPLATE = K8S / "base" / "secret.template.yaml"
#: the learner-name directory token ingest and alerts share (a key, not variables: secretKeyRef)
DIRECTORY_TEMPLATE = K8S / "base" / "directory-secret.template.yaml"
DIRECTORY_VARS = {"ingest": "INGEST_DIRECTORY_TOKEN", "alerts": "ALERTS_INGEST_DIRECTORY_TOKEN"}
SETTINGS: dict[str, type[ServiceSettings]] = {
    "ingest": IngestSettings,
    "progress": ProgressSettings,
    "alerts": AlertsSettings,
}
WORKLOAD_KIND = {"ingest": "Deployment", "progress": "StatefulSet", "alerts": "StatefulSet"}
REQUIRED_SHARED = ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "SKILLSTREAM_LEARNER_KEY_SALT")
SECRET_VARS = frozenset({"DATABASE_URL", "SKILLSTREAM_LEARNER_KEY_SALT"})
NON_ROOT_UID = 10001  # deploy/Dockerfile: USER 10001:10001
#: resources whose schema kubernetes-validate does not ship (CRDs); checked structurally instead
CUSTOM_KINDS = {("kafka.strimzi.io/v1beta2", "KafkaTopic")}
#: configs a KafkaTopic may add to Topics.specs() (broker-side durability, not semantics)
EXTRA_TOPIC_CONFIGS = frozenset({"min.insync.replicas"})
DNS_PORT = 53
WEBHOOK_PORT = 443
POD_NAME_EXAMPLE = "{name}-0"


# ---------------------------------------------------------------- helpers


def kinds(resources: list[Resource], kind: str) -> list[Resource]:
    return [r for r in resources if r["kind"] == kind]


def named(resources: list[Resource], kind: str, name: str) -> Resource | None:
    for res in kinds(resources, kind):
        if res["metadata"]["name"] == name:
            return res
    return None


def workloads(resources: list[Resource]) -> Iterator[Resource]:
    for res in resources:
        if res["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield res


def pod_spec(workload: Resource) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def pod_labels(workload: Resource) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"].get("labels") or {}
    return labels


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) against ``labels``."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def service_of(workload: Resource) -> str:
    return str(workload["metadata"]["name"])


def config_data(resources: list[Resource]) -> dict[str, str]:
    data: dict[str, str] = {}
    for cm in kinds(resources, "ConfigMap"):
        data.update({k: str(v) for k, v in (cm.get("data") or {}).items()})
    return data


def secret_template(path: Path = SECRET_TEMPLATE) -> Resource:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    assert len(docs) == 1
    doc: Resource = docs[0]
    return doc


def secret_data(resources: list[Resource]) -> dict[str, dict[str, str]]:
    """Secret name -> its keys and values: the rendered Secrets, else the templates' (the
    overlays that do not ship a Secret expect one created out of band with the template's keys)."""
    found = {
        s["metadata"]["name"]: {k: str(v) for k, v in (s.get("stringData") or {}).items()}
        for s in kinds(resources, "Secret")
    }
    for path in (SECRET_TEMPLATE, DIRECTORY_TEMPLATE):
        template = secret_template(path)
        found.setdefault(template["metadata"]["name"], dict(template["stringData"]))
    return found


def secret_key_ref(container: Mapping[str, Any], var: str) -> tuple[str, str] | None:
    """``(Secret name, key)`` a container's ``var`` comes from, if it comes from a Secret key."""
    for item in container.get("env") or []:
        ref = (item.get("valueFrom") or {}).get("secretKeyRef")
        if item["name"] == var and ref:
            return str(ref["name"]), str(ref["key"])
    return None


def container_env(
    workload: Resource, container: Mapping[str, Any], resources: list[Resource]
) -> tuple[dict[str, str], list[str]]:
    """The container's environment as the kubelet builds it (ConfigMaps, Secrets, env, the
    pod name for fieldRef metadata.name), and the problems met building it."""
    env: dict[str, str] = {}
    problems: list[str] = []
    name = container["name"]
    secrets = secret_data(resources)
    for source in container.get("envFrom") or []:
        if "configMapRef" in source:
            ref = source["configMapRef"]["name"]
            cm = named(resources, "ConfigMap", ref)
            if cm is None:
                problems.append(f"{name}: envFrom ConfigMap {ref} is not defined")
            else:
                env.update({k: str(v) for k, v in (cm.get("data") or {}).items()})
        elif "secretRef" in source:
            ref = source["secretRef"]["name"]
            if ref not in secrets:
                problems.append(f"{name}: envFrom Secret {ref} is neither defined nor the template")
            else:
                env.update(secrets[ref])
        else:
            problems.append(f"{name}: unsupported envFrom {source}")
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        key_ref = (item.get("valueFrom") or {}).get("secretKeyRef")
        if key_ref is not None:
            value = secrets.get(key_ref["name"], {}).get(key_ref["key"])
            if value is not None:
                env[item["name"]] = value
            elif not key_ref.get("optional"):
                problems.append(f"{name}: {item['name']} comes from a Secret key nobody defines")
            continue
        field = ((item.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        if field == "metadata.name":
            env[item["name"]] = POD_NAME_EXAMPLE.format(name=workload["metadata"]["name"])
        else:
            problems.append(f"{name}: {item['name']} comes from an unsupported source")
    return env, problems


def container_ports(container: Mapping[str, Any]) -> dict[str, int]:
    return {
        str(p.get("name", p["containerPort"])): int(p["containerPort"])
        for p in container.get("ports") or []
    }


def resolve_port(port: int | str, container: Mapping[str, Any]) -> int | None:
    if isinstance(port, int):
        return port if port in container_ports(container).values() else None
    return container_ports(container).get(port)


def ops_routes() -> set[str]:
    app = ops_app(Health({}), BaseMetrics("probe", CollectorRegistry()))
    return {r.canonical for r in app.router.resources()}


# ---------------------------------------------------------------- checks (return problems)


def schema_problems(resources: list[Resource]) -> list[str]:
    problems = []
    for res in resources:
        if (res["apiVersion"], res["kind"]) in CUSTOM_KINDS:
            continue
        where = f"{res['kind']}/{res['metadata'].get('name')}"
        try:
            kubernetes_validate.validate(res, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            problems.append(f"{where}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{where}: no schema ({exc.message})")
    return problems


def namespace_problems(resources: list[Resource]) -> list[str]:
    problems = []
    namespaces = {n["metadata"]["name"] for n in kinds(resources, "Namespace")}
    if namespaces != {NAMESPACE}:
        problems.append(f"namespaces defined: {sorted(namespaces)}, expected [{NAMESPACE!r}]")
    for res in resources:
        if res["kind"] == "Namespace" or (res["apiVersion"], res["kind"]) in CUSTOM_KINDS:
            continue
        ns = res["metadata"].get("namespace")
        if ns != NAMESPACE:
            problems.append(f"{res['kind']}/{res['metadata']['name']}: namespace {ns!r}")
    return problems


def workload_problems(resources: list[Resource]) -> list[str]:
    problems = []
    found = {service_of(w): w for w in workloads(resources)}
    if set(found) != set(SETTINGS):
        problems.append(f"workloads {sorted(found)}, expected {sorted(SETTINGS)}")
    for name, workload in found.items():
        if name not in SETTINGS:
            continue
        if workload["kind"] != WORKLOAD_KIND[name]:
            problems.append(f"{name}: a {workload['kind']}, expected {WORKLOAD_KIND[name]}")
        if not selects(workload["spec"]["selector"], pod_labels(workload)):
            problems.append(f"{name}: selector does not match its pod template's labels")
        containers = pod_spec(workload)["containers"]
        if [c["name"] for c in containers] != [name]:
            problems.append(f"{name}: containers {[c['name'] for c in containers]}")
            continue
        command = containers[0].get("command") or []
        if command[:2] != ["python", "-m"] or len(command) != 3:
            problems.append(f"{name}: command {command} is not `python -m <module>`")
        elif command[2] != f"services.{name}":
            problems.append(f"{name}: runs {command[2]}, not services.{name}")
        elif importlib.util.find_spec(command[2]) is None:
            problems.append(f"{name}: module {command[2]} does not exist")
    images = {c["image"] for w in found.values() for c in pod_spec(w)["containers"]}
    if len(images) != 1:
        problems.append(f"the services run different images: {sorted(images)}")
    return problems


def env_problems(resources: list[Resource], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every variable a container gets is read by its settings class, the required ones are set,
    the settings build from that environment alone, and bind 0.0.0.0 on the container's port."""
    problems = []
    for workload in workloads(resources):
        name = service_of(workload)
        cls = SETTINGS.get(name)
        if cls is None:
            continue
        known = env_names(cls)
        for container in pod_spec(workload)["containers"]:
            env, built = container_env(workload, container, resources)
            problems += built
            problems += [
                f"{name}: {var} is not read by {cls.__name__}"
                for var in sorted(env)
                if var not in known
            ]
            problems += [f"{name}: {var} is not set" for var in REQUIRED_SHARED if not env.get(var)]
            if "group_instance_id" in cls.model_fields:
                var = f"{cls.model_config.get('env_prefix')}GROUP_INSTANCE_ID"
                if workload["kind"] == "StatefulSet" and not env.get(var, "").startswith(name):
                    problems.append(f"{name}: {var} is not the pod name (static membership)")
            with monkeypatch.context() as patch:
                for var in known:
                    patch.delenv(var, raising=False)
                for var, value in env.items():
                    patch.setenv(var, value)
                try:
                    settings = cls()
                except ValueError as exc:
                    problems.append(f"{name}: settings do not build from the manifest: {exc}")
                    continue
            if settings.http_host != "0.0.0.0":  # a pod must listen on its IP
                problems.append(f"{name}: binds {settings.http_host}, unreachable from the pod IP")
            if settings.http_port not in container_ports(container).values():
                problems.append(
                    f"{name}: settings port {settings.http_port} is not a container port "
                    f"{sorted(container_ports(container).values())}"
                )
            annotations = workload["spec"]["template"]["metadata"].get("annotations") or {}
            if str(annotations.get("prometheus.io/port")) != str(settings.http_port):
                problems.append(f"{name}: prometheus.io/port is not {settings.http_port}")
            if annotations.get("prometheus.io/path") != "/metrics":
                problems.append(f"{name}: prometheus.io/path is not /metrics")
    return problems


def probe_problems(resources: list[Resource]) -> list[str]:
    routes = ops_routes()
    expected = {
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
        "startupProbe": "/healthz",
    }
    problems = []
    for workload in workloads(resources):
        name = service_of(workload)
        for container in pod_spec(workload)["containers"]:
            for probe, path in expected.items():
                spec = container.get(probe)
                if spec is None:
                    if probe != "startupProbe":
                        problems.append(f"{name}: no {probe}")
                    continue
                get = spec.get("httpGet") or {}
                if get.get("path") != path:
                    problems.append(f"{name}: {probe} asks {get.get('path')}, expected {path}")
                elif get["path"] not in routes:
                    problems.append(f"{name}: {probe} path {get['path']} is not served")
                if resolve_port(get.get("port", ""), container) is None:
                    problems.append(f"{name}: {probe} port {get.get('port')} is no container port")
    return problems


def security_problems(resources: list[Resource]) -> list[str]:
    problems = []
    for workload in workloads(resources):
        name = service_of(workload)
        spec = pod_spec(workload)
        pod_sc = spec.get("securityContext") or {}
        if pod_sc.get("runAsNonRoot") is not True or pod_sc.get("runAsUser") != NON_ROOT_UID:
            problems.append(f"{name}: pod does not run as non-root uid {NON_ROOT_UID}")
        if (pod_sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: no RuntimeDefault seccomp profile")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: mounts a service account token it does not need")
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        for container in spec["containers"]:
            sc = container.get("securityContext") or {}
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{name}: root file system is writable")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{name}: privilege escalation allowed")
            if (sc.get("capabilities") or {}).get("drop") != ["ALL"]:
                problems.append(f"{name}: capabilities not all dropped")
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts") or []}
            tmp = volumes.get(mounts.get("/tmp", ""))
            if tmp is None or "emptyDir" not in tmp:
                problems.append(
                    f"{name}: /tmp is not an emptyDir (the root file system is read-only)"
                )
            res = container.get("resources") or {}
            for part in ("requests", "limits"):
                missing = {"cpu", "memory"} - set(res.get(part) or {})
                if missing:
                    problems.append(f"{name}: no {part} for {sorted(missing)}")
    return problems


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


# ---------------------------------------------------------------- the real manifests


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[Resource]]:
    name: str = request.param
    return name, render(K8S / "overlays" / name)


def test_overlay_renders_validates_and_matches_the_code(
    overlay: tuple[str, list[Resource]], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, resources = overlay
    assert all_problems(resources, monkeypatch) == []


def test_overlay_has_every_kind_the_issue_asks_for(overlay: tuple[str, list[Resource]]) -> None:
    name, resources = overlay
    present = {r["kind"] for r in resources}
    wanted = {
        "Namespace",
        "ConfigMap",
        "Deployment",
        "StatefulSet",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
    }
    assert wanted <= present, wanted - present
    assert {p["metadata"]["name"] for p in kinds(resources, "PodDisruptionBudget")} == set(SETTINGS)
    if name == "prod":
        assert len(kinds(resources, "KafkaTopic")) == len(Topics().specs())
        assert not kinds(resources, "Secret"), "prod must not ship a Secret with placeholder values"
    else:
        assert kinds(resources, "Secret"), "dev ships its development Secret"


def test_base_renders_and_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    resources = render(K8S / "base")
    assert schema_problems(resources) == []
    assert all_problems(resources, monkeypatch) == []


def test_overlays_differ_where_intended() -> None:
    dev, prod = render(K8S / "overlays" / "dev"), render(K8S / "overlays" / "prod")
    image = {
        n: pod_spec(w)["containers"][0]["image"]
        for n, w in ((service_of(w), w) for w in workloads(dev))
    }
    assert set(image.values()) == {"skillstream:dev"}
    prod_images = {pod_spec(w)["containers"][0]["image"] for w in workloads(prod)}
    assert prod_images == {"registry.example.com/skillstream/skillstream:0.1.0"}
    assert config_data(dev)["SKILLSTREAM_LOG_LEVEL"] == "DEBUG"
    assert int(config_data(prod)["SKILLSTREAM_REPLICATION_FACTOR"]) == 3
    for sts in kinds(prod, "StatefulSet"):
        assert sts["spec"]["replicas"] >= 2, "prod runs more than one member per stream processor"
        assert (
            sts["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
            == "1536Mi"
        )


def test_secret_template_and_dev_secret_hold_exactly_the_secret_variables() -> None:
    template = secret_template()
    assert set(template["stringData"]) == SECRET_VARS
    directory = secret_template(DIRECTORY_TEMPLATE)
    assert set(directory["stringData"]) == {"token"}
    dev = {s["metadata"]["name"]: s for s in kinds(render(K8S / "overlays" / "dev"), "Secret")}
    assert set(dev) == {template["metadata"]["name"], directory["metadata"]["name"]}
    assert set(dev[template["metadata"]["name"]]["stringData"]) == SECRET_VARS
    # the same development token as docker-compose.yml's default
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    token = dev[directory["metadata"]["name"]]["stringData"]["token"]
    assert f"${{SKILLSTREAM_DIRECTORY_TOKEN:-{token}}}" in compose
    assert kubernetes_validate.validate(directory, KUBERNETES_VERSION, strict=True)
    for var in SECRET_VARS:
        for cls in SETTINGS.values():
            assert var in env_names(cls)
    assert kubernetes_validate.validate(template, KUBERNETES_VERSION, strict=True)


def test_config_map_holds_only_shared_settings() -> None:
    """The ConfigMap feeds every service, so it may hold only what every settings class reads."""
    shared = set.intersection(*(set(env_names(cls)) for cls in SETTINGS.values()))
    for overlay_name in OVERLAYS:
        data = config_data(render(K8S / "overlays" / overlay_name))
        assert set(data) <= shared - SECRET_VARS, set(data) - shared


# ---------------------------------------------------------------- the checks themselves


def _broken(resources: list[Resource]) -> list[Resource]:
    """The dev overlay with one mistake of each kind the checks look for."""
    broken = copy.deepcopy(resources)
    ingest = named(broken, "Deployment", "ingest")
    progress = named(broken, "StatefulSet", "progress")
    alerts = named(broken, "StatefulSet", "alerts")
    assert ingest
    assert progress
    assert alerts
    c = pod_spec(ingest)["containers"][0]
    c["env"].append({"name": "INGEST_HTTP_PROT", "value": "8080"})
    c["env"] = [e for e in c["env"] if e["name"] != "INGEST_HTTP_HOST"]
    c["readinessProbe"]["httpGet"]["path"] = "/ready"
    c["securityContext"]["readOnlyRootFilesystem"] = False
    c["volumeMounts"] = []
    c["unknownField"] = True
    pod_spec(ingest)["securityContext"].pop("runAsUser")
    p = pod_spec(progress)["containers"][0]
    p["ports"][0]["containerPort"] = 9000
    p["command"] = ["python", "-m", "services.alerts"]
    p["env"] = [e for e in p["env"] if e["name"] != "PROGRESS_GROUP_INSTANCE_ID"]
    progress["spec"]["replicas"] = 9
    alerts["spec"]["serviceName"] = "alerts"
    for item in pod_spec(alerts)["containers"][0]["env"]:
        if item["name"] == "ALERTS_INGEST_DIRECTORY_TOKEN":
            item["valueFrom"]["secretKeyRef"]["key"] = "other"
    service = named(broken, "Service", "ingest")
    assert service
    service["spec"]["selector"] = {"app.kubernetes.io/name": "ingester"}
    config = named(broken, "ConfigMap", "skillstream-config")
    assert config
    config["data"]["SKILLSTREAM_PARTITION"] = "8"
    policy = named(broken, "NetworkPolicy", "prometheus-scrape")
    assert policy
    policy["spec"]["ingress"][0].pop("from")
    broken = [r for r in broken if r["metadata"]["name"] != "default-deny"]
    broken.append(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "egress-all", "namespace": NAMESPACE},
            "spec": {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "progress"}},
                "policyTypes": ["Egress"],
                "egress": [{}],
            },
        }
    )
    return broken


def test_checks_report_a_broken_overlay(monkeypatch: pytest.MonkeyPatch) -> None:
    problems = all_problems(_broken(render(K8S / "overlays" / "dev")), monkeypatch)
    text = "\n".join(problems)
    for expected in (
        "Deployment/ingest: spec.template.spec.containers.0: Additional properties",
        "ingest: INGEST_HTTP_PROT is not read by IngestSettings",
        "ingest: binds 127.0.0.1",
        "progress: SKILLSTREAM_PARTITION is not read by ProgressSettings",
        "progress: runs services.alerts, not services.progress",
        "progress: PROGRESS_GROUP_INSTANCE_ID is not the pod name",
        "progress: settings port 8081 is not a container port [9000]",
        "ingest: readinessProbe asks /ready, expected /readyz",
        "NetworkPolicy/prometheus-scrape: opens 8081, served by none of its pods",
        "ingest: root file system is writable",
        "ingest: /tmp is not an emptyDir",
        "ingest: pod does not run as non-root uid 10001",
        "Service/ingest: selects 0 workloads",
        "StatefulSet/alerts: serviceName is no headless Service",
        "StatefulSet/progress: 9 replicas > 4 partitions",
        "no default-deny NetworkPolicy",
        "progress: reachable from anywhere",
        "progress: an egress rule allows every port",
        "ingest and alerts do not share the directory token's Secret key",
    ):
        assert expected in text, (expected, problems)


def test_directory_check_reports_drift() -> None:
    resources = render(K8S / "overlays" / "dev")
    assert directory_problems(resources) == []
    alerts = named(resources, "StatefulSet", "alerts")
    assert alerts
    [url] = [
        e for e in pod_spec(alerts)["containers"][0]["env"] if e["name"] == "ALERTS_INGEST_URL"
    ]
    url["value"] = "http://ingest:9999"
    assert directory_problems(resources) == [
        "ALERTS_INGEST_URL port 9999 is not a port of Service/ingest"
    ]
    url["value"] = "http://progress:8081"
    assert directory_problems(resources) == [
        "ALERTS_INGEST_URL 'http://progress:8081' does not name the ingest Service"
    ]
    url["value"] = "http://ingest:8080"
    resources = [r for r in resources if r["metadata"]["name"] != "alerts-to-ingest"]
    assert directory_problems(resources) == [
        "alerts: no egress rule lets it reach ingest's pods on 8080"
    ]


def test_topic_check_reports_drift(monkeypatch: pytest.MonkeyPatch) -> None:
    resources = render(K8S / "overlays" / "prod")
    assert topic_problems(resources) == []
    config = named(resources, "ConfigMap", "skillstream-config")
    assert config
    config["data"]["SKILLSTREAM_PARTITIONS"] = "6"
    topic = next(
        t for t in kinds(resources, "KafkaTopic") if t["spec"]["topicName"] == "xapi.deadletter"
    )
    topic["spec"]["config"]["retention.ms"] = "1"
    topic["spec"]["config"]["cleanup.policy"] = "compact"
    problems = topic_problems(resources)
    assert "xapi.statements: 12 partitions, code says 6" in problems
    assert any("xapi.deadletter: retention.ms='1'" in p for p in problems)
    assert any("configs the code does not set: ['cleanup.policy']" in p for p in problems)
    resources.append(
        copy.deepcopy(topic) | {"metadata": {"name": "xapi.other"}, "spec": {"topicName": "x"}}
    )
    assert any(p.startswith("KafkaTopics") for p in topic_problems(resources))


def test_renderer_merges_like_kustomize(tmp_path: Path) -> None:
    base = {
        "spec": {
            "containers": [{"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}]}],
            "keep": 1,
        }
    }
    patch = {
        "spec": {"containers": [{"name": "a", "env": [{"name": "B", "value": "2"}]}], "keep": None}
    }
    merged = strategic_merge(base, patch)
    assert merged == {
        "spec": {
            "containers": [
                {
                    "name": "a",
                    "image": "x",
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                }
            ]
        }
    }
    (tmp_path / "kustomization.yaml").write_text(
        "resources: []\nnamePrefix: x-\n", encoding="utf-8"
    )
    with pytest.raises(KustomizeError, match="namePrefix"):
        render(tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources: [missing.yaml]\n",
        encoding="utf-8",
    )
    with pytest.raises(KustomizeError, match="does not exist"):
        render(tmp_path)
