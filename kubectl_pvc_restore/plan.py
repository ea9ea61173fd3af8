"""What a restore of a PVC touches: the pods that mount it, the top-level workloads to scale (with their replicas),
and the PVC's ReplicationSource. Used by the controller's ScaleDown, the CLI's --dry-run and the TUI."""

from __future__ import annotations

import dataclasses
from typing import Any

from . import kube as k
from . import owners as og
from . import volsync
from .model import Owner


@dataclasses.dataclass
class WorkloadPlan:
    pods: list[str]
    owners: list[Owner]
    problems: list[str]


async def pods_mounting(kube: k.Kube, namespace: str, pvc: str) -> list[dict[str, Any]]:
    return [p for p in await kube.list(k.PODS, namespace) if og.mounts(p, pvc)]


async def _fetch(kube: k.Kube, namespace: str, key: og.Key) -> dict[str, Any] | None:
    api_version, kind, name = key
    res = k.KNOWN.get((api_version, kind)) or await kube.resource_for(api_version, kind, scalable=False)
    if res is None:
        return None
    return await kube.get_or_none(res, name, namespace)


async def plan_workloads(kube: k.Kube, namespace: str, pvc: str,
                         pods: list[dict[str, Any]] | None = None) -> WorkloadPlan:
    """Walk the pods mounting ``pvc`` up to their top-level workloads and read each one's replicas via /scale.
    Workloads that have no /scale subresource are problems: the restore must not start."""
    if pods is None:
        pods = await pods_mounting(kube, namespace, pvc)
    objects: dict[og.Key, dict[str, Any] | None] = {}
    frontier: list[dict[str, Any]] = list(pods)
    while needed := og.parents_needed(frontier, objects):
        frontier = []
        for key in sorted(needed):
            objects[key] = await _fetch(kube, namespace, key)
            if objects[key] is not None:
                frontier.append({**objects[key], "apiVersion": key[0], "kind": key[1]})
    graph = og.walk(pods, objects)
    owners: list[Owner] = []
    problems = list(graph.problems)
    for (api_version, kind, name), pod_names in sorted(graph.tops.items()):
        res = await kube.resource_for(api_version, kind)
        if res is None:
            problems.append(f"{kind} {name} (owner of pod {', '.join(pod_names)}) has no /scale subresource, "
                            "so it cannot be scaled down")
            continue
        scale = await kube.get_scale(res, name, namespace)
        owners.append(Owner(api_version, kind, name, namespace, int((scale.get("spec") or {}).get("replicas", 0))))
    return WorkloadPlan(pods=sorted(p["metadata"]["name"] for p in pods), owners=owners, problems=problems)


class SourceError(Exception):
    pass


async def find_source(kube: k.Kube, namespace: str, pvc: str) -> dict[str, Any]:
    """The single ReplicationSource whose spec.sourcePVC is ``pvc``; SourceError otherwise."""
    sources = volsync.sources_for_pvc(await kube.list(k.REPLICATION_SOURCES, namespace), pvc)
    if not sources:
        raise SourceError(f"no ReplicationSource in namespace {namespace} backs up PVC {pvc} "
                          "(none has spec.sourcePVC: " + pvc + "); there is no backup to restore from")
    if len(sources) > 1:
        names = ", ".join(sorted(s["metadata"]["name"] for s in sources))
        raise SourceError(f"several ReplicationSources back up PVC {pvc} ({names}); "
                          "pvc-restore cannot tell which backup to restore")
    return sources[0]
