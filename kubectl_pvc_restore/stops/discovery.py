"""Finding the stops a restore needs beyond the workloads it scales: the Flux and Argo CD owners of those workloads
and the KEDA ScaledObjects targeting them (HPAs are only reported), and the CronJobs that mount the PVC."""

from __future__ import annotations

from typing import Any

from .. import kube as k
from .. import owners as og
from ..model import Owner, Stop
from .argocd import ARGO_APP
from .base import dump_original
from .keda import KEDA_PAUSED, KEDA_SCALED_OBJECT
from .suspend import FLUX


def template_mounts(pod_spec: dict[str, Any], pvc: str) -> bool:
    return any((v.get("persistentVolumeClaim") or {}).get("claimName") == pvc for v in pod_spec.get("volumes") or [])


def is_job_pod_top(key: og.Key) -> bool:
    return key[:2] in (("batch/v1", "Job"), ("batch/v1", "CronJob"))


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
