"""The real Kubernetes manifests (deploy/k8s): rendered, schema-validated and held against the code.

``kubectl`` and ``kustomize`` are not installed here, so :mod:`tests.unit.ops.kustomize` renders
each overlay (and the base), and the checks of :mod:`tests.unit.ops.k8s_workload_checks` and
:mod:`tests.unit.ops.k8s_wiring_checks` must find no problem in them: the schemas, the variables
the settings classes read, the HTTP ports, the probe routes, partitions versus replicas, selectors
versus labels, the network policies, the Strimzi topics versus ``shared.kafka.Topics.specs()``.
The tests here also check the kinds each overlay ships, where dev and prod differ, the Secret
templates and the shared ConfigMap.
"""

from __future__ import annotations

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from shared.kafka import Topics
from shared.settings import env_names
from tests.unit.ops.k8s_helpers import (
    DIRECTORY_TEMPLATE,
    K8S,
    KUBERNETES_VERSION,
    OVERLAYS,
    ROOT,
    SECRET_VARS,
    SETTINGS,
    config_data,
    kinds,
    pod_spec,
    secret_template,
    service_of,
    workloads,
)
from tests.unit.ops.k8s_wiring_checks import all_problems
from tests.unit.ops.k8s_workload_checks import schema_problems
from tests.unit.ops.kustomize import Resource, render


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
