"""Self-checks of the Kubernetes manifest checks and of the kustomize renderer.

The checks return lists of problems, so these feed them broken manifests and expect complaints:
the dev overlay with one mistake of each kind the checks look for, the learner-name directory
wiring drifting (wrong port, wrong Service, no egress rule), and KafkaTopics disagreeing with the
code. The renderer must merge like kustomize and refuse kustomizations it does not understand.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.unit.ops.k8s_helpers import K8S, NAMESPACE, kinds, named, pod_spec
from tests.unit.ops.k8s_wiring_checks import all_problems, directory_problems, topic_problems
from tests.unit.ops.kustomize import KustomizeError, Resource, render, strategic_merge


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
