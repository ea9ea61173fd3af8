"""Argo CD Applications that own a workload: automated sync off (it would scale the workload back up)."""

from __future__ import annotations

from typing import Any

from .. import kube as k
from ..model import Stop
from .base import StopKind, spec

ARGO_APP = ("argoproj.io/v1alpha1", "Application")


class ArgoAutomated(StopKind):
    method = "argoAutomated"
    kinds = frozenset({ARGO_APP})
    elsewhere = True  # Applications live in Argo CD's namespace
    order = 0

    def describe(self, stop: Stop) -> str:
        return f"Argo CD Application {stop.namespace}/{stop.name}: automated sync off, then back"

    def current(self, obj: dict[str, Any]) -> Any:
        return (spec(obj).get("syncPolicy") or {}).get("automated")

    def stopped_value(self, stop: Stop, restore_name: str) -> Any:
        return None

    async def write(self, kube: k.Kube, res: k.Resource, stop: Stop, value: Any) -> None:
        await kube.patch(res, stop.name, stop.namespace, {"spec": {"syncPolicy": {"automated": value}}})
