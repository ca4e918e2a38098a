"""A small kustomize renderer for the manifests under ``deploy/k8s``.

``kustomize`` and ``kubectl`` are not installed where the tests run, so this renders the subset of
kustomize the manifests use, with kustomize's semantics:

* ``resources``: YAML files (multi-document) and directories holding a ``kustomization.yaml``;
* ``components``: directories whose ``kustomization.yaml`` is ``kind: Component`` (their
  resources are added, their patches applied, after the including kustomization's resources);
* ``patches`` with ``path:`` only: strategic-merge patches, targeted by the patch's own
  ``apiVersion``'s group, ``kind``, ``metadata.name`` (and ``namespace`` when given);
* ``images``: ``name`` with ``newName`` and/or ``newTag``.

Strategic merge is done as kustomize does for the fields the patches touch: mappings merge
recursively, a ``null`` deletes a key, the lists kustomize merges by key (containers and env by
``name``, ports by ``containerPort``, volumeMounts by ``mountPath``...) merge item by item, other
lists are replaced. Any other kustomization field is refused rather than silently ignored, so a
manifest change the renderer does not understand fails the tests instead of passing them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

SUPPORTED_FIELDS = frozenset({"apiVersion", "kind", "resources", "components", "patches", "images"})
KINDS = {
    "Kustomization": "kustomize.config.k8s.io/v1beta1",
    "Component": "kustomize.config.k8s.io/v1alpha1",
}
#: list fields kustomize merges item by item (from the Kubernetes OpenAPI patch merge keys)
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "tolerations": "key",
}


class KustomizeError(ValueError):
    """The kustomization uses something this renderer does not implement, or is broken."""


def load_yaml_documents(path: Path) -> list[Resource]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            raise KustomizeError(f"{path}: a document without kind/apiVersion")
    return docs


def resource_id(res: Resource) -> tuple[str, str, str, str]:
    """(group, kind, namespace, name): how kustomize identifies a resource."""
    group = str(res["apiVersion"]).rpartition("/")[0]
    meta = res.get("metadata") or {}
    return group, str(res["kind"]), str(meta.get("namespace") or ""), str(meta.get("name"))


def strategic_merge(base: Any, patch: Any, key: str = "") -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for k, v in patch.items():
            if v is None:
                merged.pop(k, None)
            elif k in merged:
                merged[k] = strategic_merge(merged[k], v, k)
            else:
                merged[k] = copy.deepcopy(v)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and key in MERGE_KEYS:
        merge_key = MERGE_KEYS[key]
        result = [copy.deepcopy(item) for item in base]
        for item in patch:
            if not isinstance(item, dict) or merge_key not in item:
                raise KustomizeError(f"patch item of {key} lacks its merge key {merge_key}")
            for i, existing in enumerate(result):
                if isinstance(existing, dict) and existing.get(merge_key) == item[merge_key]:
                    result[i] = strategic_merge(existing, item)
                    break
            else:
                result.append(copy.deepcopy(item))
        return result
    return copy.deepcopy(patch)


def _apply_patch(resources: list[Resource], patch: Resource, origin: Path) -> None:
    group, kind, namespace, name = resource_id(patch)
    matches = [
        i
        for i, res in enumerate(resources)
        if resource_id(res)[:2] == (group, kind)
        and resource_id(res)[3] == name
        and (not namespace or resource_id(res)[2] == namespace)
    ]
    if len(matches) != 1:
        raise KustomizeError(f"{origin}: patch {kind}/{name} matches {len(matches)} resources")
    resources[matches[0]] = strategic_merge(resources[matches[0]], patch)


def _split_image(image: str) -> tuple[str, str]:
    """``registry:5000/name:tag`` -> (``registry:5000/name``, ``tag``); digests kept whole."""
    if "@" in image:
        return image.split("@", 1)[0], ""
    head, _, last = image.rpartition("/")
    name, _, tag = last.partition(":")
    return (f"{head}/{name}" if head else name), tag


def _containers(res: Resource) -> Iterable[dict[str, Any]]:
    spec: dict[str, Any] = res.get("spec") or {}
    pod: dict[str, Any] = (spec.get("jobTemplate") or {}).get("spec") or spec
    pod_spec: dict[str, Any] = (pod.get("template") or {}).get("spec") or {}
    yield from pod_spec.get("initContainers") or []
    yield from pod_spec.get("containers") or []


def _apply_images(resources: list[Resource], images: list[dict[str, Any]]) -> None:
    for rule in images:
        if set(rule) - {"name", "newName", "newTag"}:
            raise KustomizeError(f"unsupported image transform {rule}")
        for res in resources:
            for container in _containers(res):
                name, tag = _split_image(str(container.get("image", "")))
                if name != rule["name"]:
                    continue
                new_name = str(rule.get("newName", name))
                new_tag = str(rule.get("newTag", tag))
                container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name


def render(directory: Path, *, expect_kind: str = "Kustomization") -> list[Resource]:
    """Render the kustomization in ``directory``: its resources with patches and images applied."""
    path = directory / "kustomization.yaml"
    if not path.is_file():
        raise KustomizeError(f"{directory}: no kustomization.yaml")
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(spec, dict):
        raise KustomizeError(f"{path}: not a mapping")
    unknown = set(spec) - SUPPORTED_FIELDS
    if unknown:
        raise KustomizeError(f"{path}: fields this renderer does not implement: {sorted(unknown)}")
    if spec.get("kind") != expect_kind or spec.get("apiVersion") != KINDS[expect_kind]:
        raise KustomizeError(f"{path}: expected {KINDS[expect_kind]} {expect_kind}")

    resources: list[Resource] = []
    for entry in spec.get("resources") or []:
        target = (directory / entry).resolve()
        if target.is_dir():
            resources.extend(render(target))
        elif target.is_file():
            resources.extend(load_yaml_documents(target))
        else:
            raise KustomizeError(f"{path}: resource {entry} does not exist")

    components: list[Path] = []
    for entry in spec.get("components") or []:
        target = (directory / entry).resolve()
        if not target.is_dir():
            raise KustomizeError(f"{path}: component {entry} is not a directory")
        components.append(target)

    for component in components:
        resources.extend(render(component, expect_kind="Component"))

    for patch_entry in spec.get("patches") or []:
        if set(patch_entry) != {"path"}:
            raise KustomizeError(f"{path}: only `patches: - path: file` is implemented")
        patch_file = directory / patch_entry["path"]
        for patch in load_yaml_documents(patch_file):
            _apply_patch(resources, patch, patch_file)

    _apply_images(resources, spec.get("images") or [])

    seen: set[tuple[str, str, str, str]] = set()
    for res in resources:
        rid = resource_id(res)
        if rid in seen:
            raise KustomizeError(f"{path}: resource {rid} defined twice")
        seen.add(rid)
    return resources
