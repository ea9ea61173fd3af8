"""DaemonSets that mount the PVC: a nodeSelector no node matches removes their pods; their own comes back after."""

from __future__ import annotations

from typing import Any

from .. import kube as k
from ..model import GROUP, Stop
from .base import StopKind, spec

#: The nodeSelector a stopped DaemonSet gets: no node carries this label.
STOPPED_LABEL = f"{GROUP}/stopped-for-restore"


class NodeSelector(StopKind):
    method = "nodeSelector"
    kinds = frozenset({("apps/v1", "DaemonSet")})
    order = 2

    def describe(self, stop: Stop) -> str:
        return f"DaemonSet {stop.name}: stopped with a nodeSelector no node matches, then given back its own"

    def current(self, obj: dict[str, Any]) -> Any:
        return (spec(obj).get("template") or {}).get("spec", {}).get("nodeSelector")

    def stopped_value(self, stop: Stop, restore_name: str) -> Any:
        return {STOPPED_LABEL: restore_name[:63]}

    async def write(self, kube: k.Kube, res: k.Resource, stop: Stop, value: Any) -> None:
        # A JSON patch: a merge patch would merge the maps, keeping the DaemonSet's own selector beside ours.
        op = ({"op": "remove", "path": "/spec/template/spec/nodeSelector"} if value is None else
              {"op": "add", "path": "/spec/template/spec/nodeSelector", "value": value})
        await kube.json_patch(res, stop.name, stop.namespace, [op])
