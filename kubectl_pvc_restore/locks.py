"""Per-PVC restore locks: a ConfigMap ``pvc-restore-lock-<pvc>`` created atomically by the restore that holds it."""

from __future__ import annotations

import dataclasses
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


def is_live(state: str) -> bool:
    """Whether a ``holder_state`` protects its lock: the holder runs, or holds the PVC after partial data."""
    return state.startswith(("active", "holding"))


# -- reading and clearing locks (the CLI's `locks` and the TUI's locks screen) ---------------------------------------

@dataclasses.dataclass(frozen=True)
class LockInfo:
    """A lock as people see it."""

    namespace: str
    pvc: str
    name: str
    holder: str
    created: str
    holder_state: str  # "active (Phase)", "holding (...)", "finished", "gone"

    @property
    def live(self) -> bool:
        return is_live(self.holder_state)


class NoLock(LookupError):
    pass


class LiveLock(Exception):
    """Refused: clearing this lock could let two restores write the PVC at once."""


def _info(lock: dict[str, Any], holder: dict[str, Any] | None) -> LockInfo:
    meta = lock["metadata"]
    return LockInfo(namespace=meta["namespace"], pvc=(lock.get("data") or {}).get("pvc") or "", name=meta["name"],
                    holder=holder_of(lock)[0] or "<unknown>", created=meta.get("creationTimestamp") or "",
                    holder_state=holder_state(lock, holder))


async def list_locks(kube: Any, namespace: str | None) -> list[LockInfo]:
    """Every lock in ``namespace`` (None: all namespaces) with its holder's state: two LISTs."""
    from . import kube as k

    items = await kube.list(k.CONFIGMAPS, namespace, label_selector=f"{LOCK_LABEL}=true")
    restores = {(r["metadata"]["namespace"], r["metadata"]["name"]): r
                for r in (await kube.list(k.PVC_RESTORES, namespace) if items else [])}
    return sorted((_info(lock, restores.get((lock["metadata"]["namespace"], holder_of(lock)[0]))) for lock in items),
                  key=lambda info: (info.namespace, info.pvc))


async def clear_lock(kube: Any, namespace: str, pvc: str, *, force: bool = False) -> LockInfo:
    """Delete the lock of ``pvc`` (by uid, so a lock taken again meanwhile stays). Raises NoLock, or LiveLock while
    its holder is live unless ``force``."""
    from . import kube as k

    name = lock_name(pvc)
    lock = await kube.get_or_none(k.CONFIGMAPS, name, namespace)
    if lock is None:
        raise NoLock(f"PVC {pvc} has no restore lock in namespace {namespace}")
    holder = holder_of(lock)[0]
    info = _info(lock, await kube.get_or_none(k.PVC_RESTORES, holder, namespace) if holder else None)
    if info.live and not force:
        raise LiveLock(f"lock {name} is held by PVCRestore {info.holder}, which is {info.holder_state}; clearing it "
                       "could let two restores write the PVC at once. Cancel that restore instead")
    try:
        await kube.delete(k.CONFIGMAPS, name, namespace, uid=lock["metadata"]["uid"])
    except (k.NotFound, k.Conflict):
        raise NoLock(f"the lock of PVC {pvc} was released or taken again meanwhile; nothing was cleared") from None
    return info
