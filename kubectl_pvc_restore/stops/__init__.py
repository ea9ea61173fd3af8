"""Stops: what a restore does besides scaling through /scale, to stop what would write the PVC (DaemonSets, CronJobs
and their Jobs, bare Pods) or scale the workloads back up meanwhile (Flux and Argo CD owners, KEDA ScaledObjects).

Each kind of stop is one ``StopKind`` in its own module (priority, description, apply, undo), registered in
``REGISTRY`` by the method name a restore records in status.stopped. Every apply and undo compares the live value
first, so repeating one is a no-op. ``discovery`` finds the stops a restore needs.
"""

from __future__ import annotations

from .. import kube as k
from ..model import Stop
from .argocd import ARGO_APP, ArgoAutomated
from .bare_pod import DeletePod
from .base import StopKind, dump_original, resource
from .daemonset import STOPPED_LABEL, NodeSelector
from .discovery import cronjobs_mounting, gitops_and_autoscalers, is_job_pod_top, template_mounts
from .keda import KEDA_PAUSED, KEDA_SCALED_OBJECT, KedaPause
from .statefulset import PvcRetention
from .suspend import FLUX, FLUX_KINDS, Suspend

#: Every kind of stop, by the method name recorded in status.stopped[].method.
REGISTRY: dict[str, StopKind] = {kind.method: kind for kind in (
    ArgoAutomated(), Suspend(), KedaPause(), PvcRetention(), NodeSelector(), DeletePod())}

__all__ = ["ARGO_APP", "FLUX", "FLUX_KINDS", "KEDA_PAUSED", "KEDA_SCALED_OBJECT", "REGISTRY", "STOPPED_LABEL",
           "StopKind", "apply", "cronjobs_mounting", "describe", "dump_original", "gitops_and_autoscalers",
           "is_job_pod_top", "kind_of", "priority", "template_mounts", "undo"]


def kind_of(stop: Stop) -> StopKind | None:
    """The kind of ``stop``; None for a method this version does not know (a record it did not write)."""
    return REGISTRY.get(stop.method)


def priority(stop: Stop) -> int:
    """Apply in ascending order, undo in descending (an unknown method: with the workloads)."""
    kind = kind_of(stop)
    return kind.priority(stop) if kind else 2


def describe(stop: Stop) -> str:
    kind = kind_of(stop)
    return kind.describe(stop) if kind else f"{stop.kind} {stop.name}: {stop.method}"


async def apply(kube: k.Kube, stop: Stop, restore_name: str) -> None:
    """Do the stop (nothing when the object is gone, or its method unknown)."""
    kind = kind_of(stop)
    res = await resource(kube, stop.api_version, stop.kind) if kind else None
    obj = await kube.get_or_none(res, stop.name, stop.namespace) if res else None
    if kind is not None and res is not None and obj is not None:
        await kind.apply(kube, res, obj, stop, restore_name)


async def undo(kube: k.Kube, stop: Stop) -> bool:
    """Put the recorded value back; False when the object is gone. Deleted pods are not brought back."""
    kind = kind_of(stop)
    if kind is None or not kind.puts_back:
        return True  # nothing to put back (an unknown method never gets here: see controller/trusted.py)
    res = await resource(kube, stop.api_version, stop.kind)
    obj = await kube.get_or_none(res, stop.name, stop.namespace) if res else None
    if res is None or obj is None:
        return False
    await kind.undo(kube, res, obj, stop)
    return True
