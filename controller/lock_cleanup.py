"""Abandoned lock cleanup: a lock whose holder is gone (or is another object now) or Finished, and that is older
than the configured age, is deleted. A lock held by a live restore is never touched."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import locks
from kubectl_pvc_restore.model import now

log = logging.getLogger("pvc-restore.locks")


async def clean_locks(kube: k.Kube, lock_objs: list[dict[str, Any]], restores: dict[tuple[str, str], dict[str, Any]],
                      *, stale_after: float) -> list[str]:
    """Delete stale locks; ``restores`` maps (namespace, name) to PVCRestores listed *after* the locks, so a lock
    taken between the two lists is seen with its holder. Deletion is conditional on the lock's uid and
    resourceVersion, so a lock re-acquired meanwhile survives. Returns the deleted locks' keys."""
    deleted = []
    moment = now()
    for lock in lock_objs:
        meta = lock["metadata"]
        holder_name, _ = locks.holder_of(lock)
        holder = restores.get((meta["namespace"], holder_name))
        if not locks.is_stale(lock, holder, now=moment, min_age=dt.timedelta(seconds=stale_after)):
            continue
        try:
            if await kube.delete(k.CONFIGMAPS, meta["name"], meta["namespace"], uid=meta["uid"],
                                 resource_version=meta["resourceVersion"]):
                deleted.append(f"{meta['namespace']}/{meta['name']}")
                log.info("deleted abandoned lock %s/%s (holder %s)", meta["namespace"], meta["name"],
                         holder_name or "unknown")
        except k.Conflict:
            pass
    return deleted
