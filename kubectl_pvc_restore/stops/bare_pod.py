"""Pods without a controller that mount the PVC (with spec.deleteBarePods): deleted, by uid; not brought back."""

from __future__ import annotations

from typing import Any

from .. import kube as k
from ..model import Stop
from .base import StopKind


class DeletePod(StopKind):
    method = "delete"
    kinds = frozenset({("v1", "Pod")})
    order = 3
    puts_back = False

    def describe(self, stop: Stop) -> str:
        return f"Pod {stop.name}: deleted (it has no controller; it does not come back)"

    async def apply(self, kube: k.Kube, res: k.Resource, obj: dict[str, Any], stop: Stop, restore_name: str) -> None:
        # stop.original holds the uid of the pod planned for deletion: a new pod of that name is another one.
        if obj["metadata"].get("uid") == stop.original and not obj["metadata"].get("deletionTimestamp"):
            try:
                await kube.delete(res, stop.name, stop.namespace, uid=stop.original)
            except k.Conflict:
                pass
