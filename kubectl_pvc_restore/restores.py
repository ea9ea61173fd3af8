"""Creating a PVCRestore from the plugin (CLI and TUI alike)."""

from __future__ import annotations

import dataclasses
from typing import Any

from . import kube as k
from . import model
from .selector import Selector


async def create_restore(kube: k.Kube, namespace: str, pvc: str, selector: Selector, *, created_by: str,
                         timeout: str | None = None, delete_bare_pods: bool = False,
                         running_jobs: str = "Wait", safety_backup: bool = False,
                         partial_data: str = "KeepStopped") -> dict[str, Any]:
    """Create ``<pvc>-<unix seconds>`` (the next free second if that name is taken) and return it."""
    stamp = int(model.now().timestamp())
    labels = {model.PVC_LABEL: pvc} if len(pvc) <= 63 else {}
    while True:
        spec = dataclasses.replace(selector.spec(pvc), timeout=timeout, delete_bare_pods=delete_bare_pods,
                                   running_jobs=running_jobs, safety_backup=safety_backup,
                                   partial_data=partial_data)
        body = model.manifest(f"{pvc}-{stamp}", namespace, spec, labels=labels,
                              annotations={model.CREATED_BY_ANNOTATION: created_by})
        try:
            return await kube.create(k.PVC_RESTORES, body, namespace)
        except k.AlreadyExists:
            stamp += 1
