"""Checks of the rendered Kubernetes resources, one resource or workload at a time.

Each check returns a list of problems (empty when all is well): every resource against the
Kubernetes OpenAPI schemas with ``kubernetes-validate`` (strict: unknown fields are errors; the
Strimzi CRDs are skipped), the namespace, the workloads and the module each runs, the variables
each container gets versus what its settings class reads (and the bind address, port and scrape
annotations the settings lead to), the probe routes, and the pod and container security contexts.
"""

from __future__ import annotations

import importlib.util

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from shared.settings import env_names
from tests.unit.ops.k8s_helpers import (
    CUSTOM_KINDS,
    KUBERNETES_VERSION,
    NAMESPACE,
    NON_ROOT_UID,
    REQUIRED_SHARED,
    SETTINGS,
    WORKLOAD_KIND,
    container_env,
    container_ports,
    kinds,
    ops_routes,
    pod_labels,
    pod_spec,
    resolve_port,
    selects,
    service_of,
    workloads,
)
from tests.unit.ops.kustomize import Resource


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
