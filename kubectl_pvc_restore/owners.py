"""The owner graph: from the pods that mount a PVC up their controller ownerReferences to the top-level workloads.

Pure functions over plain dicts, so the walk can be tested without a cluster; ``plan.py`` fetches the objects.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping

Key = tuple[str, str, str]  # (apiVersion, kind, name), in the pod's namespace


def mounts(pod: Mapping[str, Any], pvc: str) -> bool:
    """True when the pod still holds the PVC: it names it in a volume and has not completed."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    return any((v.get("persistentVolumeClaim") or {}).get("claimName") == pvc
               for v in (pod.get("spec") or {}).get("volumes") or [])


def controller_ref(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ownerReference with ``controller: true`` (the one that manages the object), if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def key_of_ref(ref: Mapping[str, Any]) -> Key:
    return ref["apiVersion"], ref["kind"], ref["name"]


def key_of(obj: Mapping[str, Any]) -> Key:
    return obj.get("apiVersion", "v1"), obj.get("kind", "Pod"), obj["metadata"]["name"]


@dataclasses.dataclass
class OwnerGraph:
    """Top-level workloads (key -> names of the pods they own) and problems that forbid scaling down."""

    tops: dict[Key, list[str]] = dataclasses.field(default_factory=dict)
    problems: list[str] = dataclasses.field(default_factory=list)
    #: Pods without a controller (nothing can scale them down; only deleting them stops them).
    bare: list[str] = dataclasses.field(default_factory=list)


def parents_needed(objs: Iterable[Mapping[str, Any]], known: Mapping[Key, Any]) -> set[Key]:
    """Controller refs of ``objs`` that are not in ``known`` yet (what the next fetch round must get)."""
    return {key_of_ref(ref) for o in objs if (ref := controller_ref(o)) and key_of_ref(ref) not in known}


def walk(pods: Iterable[Mapping[str, Any]], objects: Mapping[Key, Mapping[str, Any] | None]) -> OwnerGraph:
    """Follow each pod's controller ownerReferences to the top. ``objects`` maps every referenced key to the
    object, or None when it does not exist. Pods without a controller are listed in ``bare``."""
    graph = OwnerGraph()
    for pod in pods:
        pod_name = pod["metadata"]["name"]
        obj: Mapping[str, Any] = pod
        seen: set[Key] = set()
        while True:
            ref = controller_ref(obj)
            if ref is None:
                if obj is pod:
                    graph.bare.append(pod_name)
                else:
                    graph.tops.setdefault(key_of(obj), []).append(pod_name)
                break
            key = key_of_ref(ref)
            if key in seen:
                graph.problems.append(f"Pod {pod_name}: ownerReferences form a cycle at {key[1]} {key[2]}")
                break
            seen.add(key)
            parent = objects.get(key)
            if parent is None:
                graph.problems.append(f"Pod {pod_name}: its owner {key[1]} {key[2]} does not exist")
                break
            obj = {**parent, "apiVersion": key[0], "kind": key[1]}
    for names in graph.tops.values():
        names.sort()
    return graph
