"""Per-PVC restore locks: a ConfigMap ``pvc-restore-lock-<pvc>`` created atomically by the restore that holds it."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from .model import GROUP, MANAGED_BY, MANAGED_BY_LABEL, format_time

PREFIX = "pvc-restore-lock-"
#: Label selecting every lock ConfigMap (the controller lists locks with it: one LIST per poll).
LOCK_LABEL = f"{GROUP}/lock"
_MAX_NAME = 253
#: Lock data the controller adds once it has recorded the workloads (before scaling them): ``held`` lists them as
#: ``<resource>/<name>`` (space-separated) and ``guard`` is ``on`` while nothing but the mover may use the PVC; the
#: chart's admission-guard policy refuses scaling a held workload up and pods that mount the PVC while it is on.
HELD_KEY = "held"
GUARD_KEY = "guard"


def lock_name(pvc: str) -> str:
    """The lock ConfigMap's name; PVC names too long for the prefix are shortened with a stable hash."""
    name = PREFIX + pvc
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256(pvc.encode()).hexdigest()[:10]
    return f"{name[: _MAX_NAME - 11].rstrip('.-')}-{digest}"


def lock_manifest(namespace: str, pvc: str, holder: str, holder_uid: str, when: dt.datetime) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": lock_name(pvc),
            "namespace": namespace,
            "labels": {LOCK_LABEL: "true", MANAGED_BY_LABEL: MANAGED_BY},
        },
        "data": {"pvc": pvc, "holder": holder, "holderUID": holder_uid, "acquiredAt": format_time(when)},
    }


def holder_of(lock: dict[str, Any]) -> tuple[str, str]:
    data = lock.get("data") or {}
    return data.get("holder", ""), data.get("holderUID", "")


def is_stale(lock: dict[str, Any], holder: dict[str, Any] | None, *, now: dt.datetime, min_age: dt.timedelta) -> bool:
    """A lock may be deleted when its holder is gone (or is another object now) or Finished, and it is old enough.

    ``holder`` is the PVCRestore named by the lock, or None when none exists. A live holder keeps its lock
    however long it runs.
    """
    from .model import is_holding, parse_time

    created = parse_time((lock.get("metadata") or {}).get("creationTimestamp"))
    if created is None or now - created < min_age:
        return False
    _, holder_uid = holder_of(lock)
    if holder is None:
        return True
    if holder_uid and (holder.get("metadata") or {}).get("uid") != holder_uid:
        return True
    status = holder.get("status") or {}
    if is_holding(status, (holder.get("spec") or {}).get("partialData")):
        return False  # Finished on partial data: it holds the PVC until a retry takes over or scale-back
    return status.get("phase") == "Finished"


def holder_state(lock: dict[str, Any], holder: dict[str, Any] | None) -> str:
    """For people: ``active (<phase>)`` while the holder restore runs, ``finished``, or ``gone`` (no such restore, or
    another object of that name). ``holder`` is the PVCRestore the lock names, or None."""
    _, holder_uid = holder_of(lock)
    if holder is None or (holder_uid and (holder.get("metadata") or {}).get("uid") != holder_uid):
        return "gone"
    from .model import is_holding

    status = holder.get("status") or {}
    if is_holding(status, (holder.get("spec") or {}).get("partialData")):
        return "holding (partial data: workloads kept stopped)"
    phase = status.get("phase") or "Pending"
    return "finished" if phase == "Finished" else f"active ({phase})"
