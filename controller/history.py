"""History: Finished PVCRestores are kept for a while (per PVC: at most a count, and no older than an age), then
deleted, so `kubectl get pvcrestores` does not grow forever."""

from __future__ import annotations

import logging

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore.model import PVCRestore, now, parse_time

log = logging.getLogger("pvc-restore.history")


def expired(restores: list[PVCRestore], *, max_age: float, max_count: int) -> list[PVCRestore]:
    """The Finished restores to delete: per PVC, those past the newest ``max_count`` or older than ``max_age``
    seconds (by completion time). 0 disables a limit."""
    groups: dict[tuple[str, str], list[PVCRestore]] = {}
    for r in restores:
        if r.finished and not r.deletion_timestamp and not r.holding:  # a holding restore is a live record
            groups.setdefault((r.namespace, r.spec.pvc), []).append(r)
    moment = now()
    out = []
    for group in groups.values():
        group.sort(key=lambda r: (r.status.completion_time or r.creation_timestamp, r.name), reverse=True)
        for index, r in enumerate(group):
            done = parse_time(r.status.completion_time or r.creation_timestamp)
            too_many = bool(max_count) and index >= max_count
            too_old = bool(max_age) and done is not None and (moment - done).total_seconds() > max_age
            if too_many or too_old:
                out.append(r)
    return out


async def prune(kube: k.Kube, restores: list[PVCRestore], *, max_age: float, max_count: int) -> list[str]:
    deleted = []
    for r in expired(restores, max_age=max_age, max_count=max_count):
        try:
            if await kube.delete(k.PVC_RESTORES, r.name, r.namespace, uid=r.uid):
                deleted.append(r.key)
                log.info("deleted finished restore from history", extra={"namespace": r.namespace,
                                                                         "restore": r.name, "pvc": r.spec.pvc})
        except k.Conflict:
            pass
    return deleted
