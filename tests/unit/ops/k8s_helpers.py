"""Constants and readers shared by the Kubernetes manifest tests (deploy/k8s).

The paths, overlay names and expectations the checks hold the rendered manifests against (namespace,
settings class and workload kind of each service, the Secret variables, the non-root uid, the
Strimzi kinds, the DNS and webhook ports), and small readers of rendered resources: resources by
kind and name, pod specs and labels, label selectors, the ConfigMap and Secret data, a container's
environment as the kubelet builds it, container ports, and the routes the services' ops app serves.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from services.alerts.config import AlertsSettings
from services.ingest.config import IngestSettings
from services.progress.config import ProgressSettings
from shared.health import Health
from shared.http import ops_app
from shared.metrics import BaseMetrics
from shared.settings import ServiceSettings
from tests.unit.ops.kustomize import Resource

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
