"""What a restore of a PVC touches: the pods that mount it, the top-level workloads to scale (with their replicas),
and the PVC's ReplicationSource. Used by the controller's ScaleDown, the CLI's --dry-run and the TUI."""

from __future__ import annotations

import dataclasses
from typing import Any

from . import kube as k
from . import owners as og
from . import stops as st
from . import volsync
from .model import Owner, Spec, Stop


@dataclasses.dataclass
class WorkloadPlan:
    pods: list[str]
    owners: list[Owner]
    problems: list[str]
    #: Other things done to stop what writes the PVC or would scale it back up (see the stops package).
    stops: list[Stop] = dataclasses.field(default_factory=list)
    #: Pods of running Jobs that the restore waits for.
    jobs: list[str] = dataclasses.field(default_factory=list)
    #: Worth knowing but needing no action (HPAs).
    notes: list[str] = dataclasses.field(default_factory=list)


async def pods_mounting(kube: k.Kube, namespace: str, pvc: str) -> list[dict[str, Any]]:
    return (await pods_mounting_versioned(kube, namespace, pvc))[0]


async def pods_mounting_versioned(kube: k.Kube, namespace: str, pvc: str) -> tuple[list[dict[str, Any]], str]:
    """The pods that mount ``pvc``, and the resourceVersion of the list (where a watch for their deletion starts).
    Restores of one namespace looking at the same time share one list (``Kube.list_shared``)."""
    pods, version = await kube.list_shared(k.PODS, namespace)
    return [p for p in pods if og.mounts(p, pvc)], version


async def _fetch(kube: k.Kube, namespace: str, key: og.Key) -> dict[str, Any] | None:
    api_version, kind, name = key
    res = k.KNOWN.get((api_version, kind)) or await kube.resource_for(api_version, kind, scalable=False)
    if res is None:
        return None
    return await kube.get_or_none(res, name, namespace)


async def plan_workloads(kube: k.Kube, namespace: str, pvc: str, pods: list[dict[str, Any]] | None = None, *,
                         spec: Spec | None = None, argocd_namespace: str = "argocd") -> WorkloadPlan:
    """Walk the pods mounting ``pvc`` up to their top-level workloads: those with /scale are scaled (replicas read
    via /scale); DaemonSets get a nodeSelector no node matches; CronJobs that mount the PVC are suspended and their
    running Jobs waited for (or, with runningJobs: Fail, fail the restore); bare Pods are deleted only when the spec
    allows it. GitOps owners and KEDA ScaledObjects of those workloads are suspended/paused too. Anything else is a
    problem: the restore must not start."""
    spec = spec or Spec(pvc=pvc)
    if pods is None:
        pods = await pods_mounting(kube, namespace, pvc)
    objects: dict[og.Key, dict[str, Any] | None] = {}
    frontier: list[dict[str, Any]] = list(pods)
    while needed := og.parents_needed(frontier, objects):
        frontier = []
        for key in sorted(needed):
            obj = objects[key] = await _fetch(kube, namespace, key)
            if obj is not None:
                frontier.append({**obj, "apiVersion": key[0], "kind": key[1]})
    # Pods already terminating are waited for, not planned: their owner may be gone (deleted meanwhile) and they
    # stop by themselves.
    graph = og.walk([p for p in pods if not p["metadata"].get("deletionTimestamp")], objects)
    owners: list[Owner] = []
    stops: list[Stop] = []
    jobs: list[str] = []
    workloads: list[dict[str, Any]] = []
    problems = list(graph.problems)
    for key, pod_names in sorted(graph.tops.items()):
        api_version, kind, name = key
        obj = objects.get(key) or {}
        if (api_version, kind) == ("apps/v1", "DaemonSet"):
            selector = ((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get("nodeSelector")
            stops.append(Stop(api_version, kind, name, namespace, "nodeSelector", st.dump_original(selector)))
            workloads.append(obj)
            continue
        if st.is_job_pod_top(key):
            jobs += pod_names
            continue
        res = await kube.resource_for(api_version, kind)
        if res is None:
            problems.append(f"{kind} {name} (owner of pod {', '.join(pod_names)}) has no /scale subresource, "
                            "so it cannot be scaled down")
            continue
        scale = await kube.get_scale(res, name, namespace)
        owners.append(Owner(api_version, kind, name, namespace, int((scale.get("spec") or {}).get("replicas", 0))))
        workloads.append(obj)
        retention = ((obj.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}).get("whenScaled")
        if (api_version, kind) == ("apps/v1", "StatefulSet") and retention == "Delete":
            # Scaling to 0 would make Kubernetes delete the StatefulSet's claims, the one being restored among them.
            stops.append(Stop(api_version, kind, name, namespace, "pvcRetention", st.dump_original(retention)))
    for cronjob in await st.cronjobs_mounting(kube, namespace, pvc):
        stops.append(Stop("batch/v1", "CronJob", cronjob["metadata"]["name"], namespace, "suspend",
                          st.dump_original((cronjob.get("spec") or {}).get("suspend"))))
        workloads.append(cronjob)
    if jobs and spec.running_jobs == "Fail":
        problems.append(f"Jobs are running on the PVC (pods {', '.join(sorted(jobs))}) and runningJobs is Fail")
    by_name = {p["metadata"]["name"]: p for p in pods}
    for pod_name in graph.bare:
        if spec.delete_bare_pods:
            stops.append(Stop("v1", "Pod", pod_name, namespace, "delete", by_name[pod_name]["metadata"]["uid"]))
        else:
            problems.append(f"Pod {pod_name} mounts the PVC but has no controller to scale down; delete it, or let "
                            "the restore delete it (spec.deleteBarePods: true, or start --delete-bare-pods)")
    gitops, notes = await st.gitops_and_autoscalers(kube, namespace, workloads, owners,
                                                    argocd_namespace=argocd_namespace)
    return WorkloadPlan(pods=sorted(p["metadata"]["name"] for p in pods), owners=owners, problems=problems,
                        stops=sorted(gitops + stops, key=lambda s: (st.priority(s), s.key)), jobs=sorted(jobs),
                        notes=notes)


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


PRIVILEGED_MOVERS = "volsync.backube/privileged-movers"


async def mover_permission_warning(kube: k.Kube, namespace: str, source: dict[str, Any]) -> str | None:
    """volsync's mover permission pitfall: without ``moverSecurityContext`` on the source and without the
    privileged-movers annotation on the namespace, the restore mover runs unprivileged and may not be able to write
    the app's files. The warning text, or None."""
    try:
        mover = volsync.mover_of(source)
    except volsync.VolsyncError:
        return None
    if ((source.get("spec") or {}).get(mover) or {}).get("moverSecurityContext"):
        return None
    ns = await kube.get_or_none(k.NAMESPACES, namespace)
    if ((ns or {}).get("metadata", {}).get("annotations") or {}).get(PRIVILEGED_MOVERS) == "true":
        return None
    return (f"ReplicationSource {source['metadata']['name']} sets no moverSecurityContext and namespace {namespace} "
            f"lacks the {PRIVILEGED_MOVERS}=true annotation: the restore mover may not be able to write files owned "
            f"by your app (set spec.{mover}.moverSecurityContext to the app's runAsUser/fsGroup)")
