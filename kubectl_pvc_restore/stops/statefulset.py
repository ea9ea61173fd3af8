"""StatefulSets whose PVC retention policy is whenScaled: Delete: scaling them to 0 would delete the PVC being
restored, so the policy goes to Retain before anything is scaled (and back after the replicas are)."""

from __future__ import annotations

from typing import Any

from .. import kube as k
from ..model import Stop
from .base import StopKind, spec


class PvcRetention(StopKind):
    method = "pvcRetention"
    kinds = frozenset({("apps/v1", "StatefulSet")})
    order = 1

    def describe(self, stop: Stop) -> str:
        return (f"StatefulSet {stop.name}: PVC retention whenScaled set to Retain (with Delete, scaling to 0 would "
                "delete the PVC being restored), then back to Delete")

    def current(self, obj: dict[str, Any]) -> Any:
        return (spec(obj).get("persistentVolumeClaimRetentionPolicy") or {}).get("whenScaled")

    def stopped_value(self, stop: Stop, restore_name: str) -> Any:
        return "Retain"

    async def write(self, kube: k.Kube, res: k.Resource, stop: Stop, value: Any) -> None:
        await kube.patch(res, stop.name, stop.namespace,
                         {"spec": {"persistentVolumeClaimRetentionPolicy": {"whenScaled": value}}})
