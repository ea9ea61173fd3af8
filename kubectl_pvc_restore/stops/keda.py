"""KEDA ScaledObjects that target a scaled workload: paused at 0 replicas (KEDA would scale it back up)."""

from __future__ import annotations

from typing import Any

from .. import kube as k
from ..model import Stop
from .base import StopKind

KEDA_PAUSED = "autoscaling.keda.sh/paused-replicas"
KEDA_SCALED_OBJECT = ("keda.sh/v1alpha1", "ScaledObject")


class KedaPause(StopKind):
    method = "kedaPause"
    kinds = frozenset({KEDA_SCALED_OBJECT})
    order = 1

    def describe(self, stop: Stop) -> str:
        return f"KEDA ScaledObject {stop.name}: paused at 0 replicas, then unpaused"

    def current(self, obj: dict[str, Any]) -> Any:
        return (obj["metadata"].get("annotations") or {}).get(KEDA_PAUSED)

    def stopped_value(self, stop: Stop, restore_name: str) -> Any:
        return "0"

    async def write(self, kube: k.Kube, res: k.Resource, stop: Stop, value: Any) -> None:
        await kube.patch(res, stop.name, stop.namespace, {"metadata": {"annotations": {KEDA_PAUSED: value}}})
