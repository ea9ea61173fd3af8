"""spec.suspend: CronJobs that mount the PVC, and the Flux Kustomizations and HelmReleases that own a workload."""

from __future__ import annotations

from typing import Any

from .. import kube as k
from ..model import Stop
from .base import StopKind, spec

#: Flux owners: (group, kind, served versions, newest first).
FLUX = (("kustomize.toolkit.fluxcd.io", "Kustomization", ("v1",)),
        ("helm.toolkit.fluxcd.io", "HelmRelease", ("v2", "v2beta2", "v2beta1")))
FLUX_KINDS = frozenset({(f"{group}/{version}", kind) for group, kind, versions in FLUX for version in versions})


class Suspend(StopKind):
    method = "suspend"
    kinds = frozenset({("batch/v1", "CronJob")}) | FLUX_KINDS

    def priority(self, stop: Stop) -> int:
        # A Flux owner would scale the workloads back up: it goes first, with the other GitOps owners.
        return 0 if (stop.api_version, stop.kind) in FLUX_KINDS else 2

    def may_live_elsewhere(self, stop: Stop) -> bool:  # Flux owners live in flux-system; CronJobs never elsewhere
        return (stop.api_version, stop.kind) in FLUX_KINDS

    def describe(self, stop: Stop) -> str:
        return f"{stop.kind} {stop.namespace}/{stop.name}: suspended, then resumed as it was"

    def current(self, obj: dict[str, Any]) -> Any:
        return spec(obj).get("suspend")

    def stopped_value(self, stop: Stop, restore_name: str) -> Any:
        return True

    async def write(self, kube: k.Kube, res: k.Resource, stop: Stop, value: Any) -> None:
        await kube.patch(res, stop.name, stop.namespace, {"spec": {"suspend": value}})
