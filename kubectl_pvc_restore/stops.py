"""Finding what else must be stopped for a restore besides scaling (DaemonSets, CronJobs and their Jobs, bare Pods)
and what would undo the scaling meanwhile (Flux and Argo CD owners, KEDA ScaledObjects; HPAs are reported), and
applying and undoing those stops. Every apply and undo compares the live value first, so repeating one is a no-op.
"""

from __future__ import annotations

import json
from typing import Any

from . import kube as k
from . import owners as og
from .model import GROUP, Owner, Stop

#: The nodeSelector a stopped DaemonSet gets: no node carries this label.
STOPPED_LABEL = f"{GROUP}/stopped-for-restore"
KEDA_PAUSED = "autoscaling.keda.sh/paused-replicas"
FLUX = (("kustomize.toolkit.fluxcd.io", "Kustomization", ("v1",)),
        ("helm.toolkit.fluxcd.io", "HelmRelease", ("v2", "v2beta2", "v2beta1")))
ARGO_APP = ("argoproj.io/v1alpha1", "Application")
KEDA_SCALED_OBJECT = ("keda.sh/v1alpha1", "ScaledObject")
#: Apply order: what would fight the restore first (GitOps, autoscalers), then the workloads; undo in reverse.
#: The StatefulSet retention policy goes to Retain before anything is scaled (and back after the replicas are).
ORDER = {"argoAutomated": 0, "suspend-gitops": 0, "kedaPause": 1, "pvcRetention": 1, "nodeSelector": 2, "suspend": 2,
         "delete": 3}


def priority(stop: Stop) -> int:
    if stop.method == "suspend" and stop.kind in ("Kustomization", "HelmRelease"):
        return ORDER["suspend-gitops"]
    return ORDER.get(stop.method, 2)


def dump_original(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def template_mounts(pod_spec: dict[str, Any], pvc: str) -> bool:
    return any((v.get("persistentVolumeClaim") or {}).get("claimName") == pvc for v in pod_spec.get("volumes") or [])


async def resource(kube: k.Kube, api_version: str, kind: str) -> k.Resource | None:
    return k.KNOWN.get((api_version, kind)) or await kube.resource_for(api_version, kind, scalable=False)


async def gitops_and_autoscalers(kube: k.Kube, namespace: str, workloads: list[dict[str, Any]], owners: list[Owner],
                                 *, argocd_namespace: str) -> tuple[list[Stop], list[str]]:
    """Stops for the Flux/Argo CD owners of ``workloads`` and the KEDA ScaledObjects targeting ``owners``; notes
    about HPAs. Missing CRDs are normal: nothing to do then."""
    stops: dict[tuple, Stop] = {}
    notes: list[str] = []
    for obj in workloads:
        labels = obj["metadata"].get("labels") or {}
        annotations = obj["metadata"].get("annotations") or {}
        for group, kind, versions in FLUX:
            name = labels.get(f"{group.split('.')[0]}.toolkit.fluxcd.io/name")
            ns = labels.get(f"{group.split('.')[0]}.toolkit.fluxcd.io/namespace")
            if not name or not ns:
                continue
            for version in versions:
                res = await kube.resource_for(f"{group}/{version}", kind, scalable=False)
                if res is None:
                    continue
                owner = await kube.get_or_none(res, name, ns)
                if owner is not None:
                    stop = Stop(f"{group}/{version}", kind, name, ns, "suspend",
                                dump_original((owner.get("spec") or {}).get("suspend")))
                    stops[stop.key] = stop
                break
        tracking = annotations.get("argocd.argoproj.io/tracking-id", "")
        app = tracking.split(":", 1)[0] if tracking else labels.get("app.kubernetes.io/instance")
        if app:
            app_ns, app_name = app.split("_", 1) if "_" in app else (argocd_namespace, app)
            res = await kube.resource_for(*ARGO_APP, scalable=False)
            application = await kube.get_or_none(res, app_name, app_ns) if res else None
            automated = ((application or {}).get("spec") or {}).get("syncPolicy", {}).get("automated") \
                if application else None
            if automated is not None:
                stop = Stop(ARGO_APP[0], ARGO_APP[1], app_name, app_ns, "argoAutomated", dump_original(automated))
                stops[stop.key] = stop
    targets = {(o.kind, o.name) for o in owners}
    if targets:
        res = await kube.resource_for(*KEDA_SCALED_OBJECT, scalable=False)
        for so in await kube.list(res, namespace) if res else []:
            ref = (so.get("spec") or {}).get("scaleTargetRef") or {}
            if (ref.get("kind") or "Deployment", ref.get("name")) in targets:
                value = (so["metadata"].get("annotations") or {}).get(KEDA_PAUSED)
                stop = Stop(KEDA_SCALED_OBJECT[0], KEDA_SCALED_OBJECT[1], so["metadata"]["name"], namespace,
                            "kedaPause", dump_original(value))
                stops[stop.key] = stop
        for hpa in await kube.list(k.HPAS, namespace):
            ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
            if (ref.get("kind"), ref.get("name")) in targets:
                notes.append(f"HorizontalPodAutoscaler {hpa['metadata']['name']} targets {ref['kind']} "
                             f"{ref['name']}: it stays inactive at 0 replicas and resumes when replicas come back")
    return sorted(stops.values(), key=lambda s: s.key), notes


async def cronjobs_mounting(kube: k.Kube, namespace: str, pvc: str) -> list[dict[str, Any]]:
    return [cj for cj in await kube.list(k.CRONJOBS, namespace)
            if template_mounts(((((cj.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {})
                                .get("template") or {}).get("spec") or {}, pvc)]


async def apply(kube: k.Kube, stop: Stop, restore_name: str) -> bool:
    """Do the stop; False when the object is gone."""
    res = await resource(kube, stop.api_version, stop.kind)
    obj = await kube.get_or_none(res, stop.name, stop.namespace) if res else None
    if obj is None:
        return False
    spec = obj.get("spec") or {}
    if stop.method == "nodeSelector":
        wanted = {STOPPED_LABEL: restore_name[:63]}
        if (spec.get("template") or {}).get("spec", {}).get("nodeSelector") != wanted:
            await kube.json_patch(res, stop.name, stop.namespace,
                                  [{"op": "add", "path": "/spec/template/spec/nodeSelector", "value": wanted}])
    elif stop.method == "suspend":
        if spec.get("suspend") is not True:
            await kube.patch(res, stop.name, stop.namespace, {"spec": {"suspend": True}})
    elif stop.method == "argoAutomated":
        if (spec.get("syncPolicy") or {}).get("automated") is not None:
            await kube.patch(res, stop.name, stop.namespace, {"spec": {"syncPolicy": {"automated": None}}})
    elif stop.method == "kedaPause":
        if (obj["metadata"].get("annotations") or {}).get(KEDA_PAUSED) != "0":
            await kube.patch(res, stop.name, stop.namespace, {"metadata": {"annotations": {KEDA_PAUSED: "0"}}})
    elif stop.method == "pvcRetention":
        if (spec.get("persistentVolumeClaimRetentionPolicy") or {}).get("whenScaled") != "Retain":
            await kube.patch(res, stop.name, stop.namespace,
                             {"spec": {"persistentVolumeClaimRetentionPolicy": {"whenScaled": "Retain"}}})
    elif stop.method == "delete":
        if obj["metadata"].get("uid") == stop.original and not obj["metadata"].get("deletionTimestamp"):
            try:
                await kube.delete(res, stop.name, stop.namespace, uid=stop.original)
            except k.Conflict:
                pass  # a new pod of that name: not the one we planned to delete
    return True


async def undo(kube: k.Kube, stop: Stop) -> bool:
    """Put the recorded value back; False when the object is gone. Deleted pods are not brought back."""
    if stop.method == "delete":
        return True
    res = await resource(kube, stop.api_version, stop.kind)
    obj = await kube.get_or_none(res, stop.name, stop.namespace) if res else None
    if obj is None:
        return False
    original = None if stop.original is None else json.loads(stop.original)
    spec = obj.get("spec") or {}
    if stop.method == "nodeSelector":
        current = (spec.get("template") or {}).get("spec", {}).get("nodeSelector")
        if current != original:
            op = ({"op": "remove", "path": "/spec/template/spec/nodeSelector"} if original is None else
                  {"op": "add", "path": "/spec/template/spec/nodeSelector", "value": original})
            await kube.json_patch(res, stop.name, stop.namespace, [op])
    elif stop.method == "suspend":
        if spec.get("suspend") != original:
            await kube.patch(res, stop.name, stop.namespace, {"spec": {"suspend": original}})
    elif stop.method == "argoAutomated":
        if (spec.get("syncPolicy") or {}).get("automated") != original:
            await kube.patch(res, stop.name, stop.namespace, {"spec": {"syncPolicy": {"automated": original}}})
    elif stop.method == "pvcRetention":
        if (spec.get("persistentVolumeClaimRetentionPolicy") or {}).get("whenScaled") != original:
            await kube.patch(res, stop.name, stop.namespace,
                             {"spec": {"persistentVolumeClaimRetentionPolicy": {"whenScaled": original}}})
    elif stop.method == "kedaPause":
        if (obj["metadata"].get("annotations") or {}).get(KEDA_PAUSED) != original:
            await kube.patch(res, stop.name, stop.namespace, {"metadata": {"annotations": {KEDA_PAUSED: original}}})
    return True


def is_job_pod_top(key: og.Key) -> bool:
    return key[:2] in (("batch/v1", "Job"), ("batch/v1", "CronJob"))
