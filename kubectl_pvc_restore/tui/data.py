"""What the TUI shows, fetched from the cluster into plain rows. ``Source`` is the interface the screens use; ``Cluster``
implements it over the Kube layer (tests of the layout use a static implementation)."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from .. import kube as k
from .. import locks as lockmod
from .. import model, plan, volsync
from ..selector import Selector


@dataclasses.dataclass(frozen=True)
class PVCRow:
    namespace: str
    name: str
    size: str
    source: str
    mover: str
    last_backup: str
    last_result: str
    lock: str
    restore: str
    phase: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclasses.dataclass(frozen=True)
class LockRow:
    namespace: str
    pvc: str
    name: str
    holder: str
    created: str
    holder_state: str  # "active (Phase)", "holding (...)", "finished", "gone"

    @property
    def live(self) -> bool:
        return self.holder_state.startswith(("active", "holding"))


@dataclasses.dataclass
class Plan:
    owners: list[model.Owner]
    source: str | None
    problems: list[str]
    stops: list[model.Stop] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)


class Source(Protocol):
    namespace: str | None

    async def pvcs(self) -> list[PVCRow]: ...
    async def restores(self) -> list[dict[str, Any]]: ...
    async def restore(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def events(self, namespace: str, name: str) -> list[dict[str, Any]]: ...
    async def destination(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def locks(self) -> list[LockRow]: ...
    async def snapshots(self, namespace: str, pvc: str, *, where: str = "auto"
                        ) -> tuple[list[dict[str, Any]] | None, str | None, str | None]: ...
    async def plan(self, namespace: str, pvc: str, selector: Selector) -> Plan: ...
    async def create(self, namespace: str, pvc: str, selector: Selector, *, safety_backup: bool = False,
                     **options: Any) -> str: ...
    async def cancel(self, namespace: str, name: str) -> None: ...
    async def clear_lock(self, row: LockRow) -> None: ...


def _holder_state(lock: dict[str, Any], restores: dict[tuple[str, str], dict[str, Any]]) -> str:
    return lockmod.holder_state(lock, restores.get((lock["metadata"]["namespace"], lockmod.holder_of(lock)[0])))


class Cluster:
    def __init__(self, kube: k.Kube, namespace: str | None, *, snapshot_image: str | None = None) -> None:
        self.kube = kube
        self.namespace = namespace  # None: all namespaces
        #: The image of the pod that lists snapshots inside the cluster (restic.DEFAULT_IMAGE when None).
        self.snapshot_image = snapshot_image

    async def pvcs(self) -> list[PVCRow]:
        ns = self.namespace
        pvcs = await self.kube.list(k.PVCS, ns)
        sources = await self.kube.list(k.REPLICATION_SOURCES, ns)
        restores = await self.kube.list(k.PVC_RESTORES, ns)
        lock_objs = await self.kube.list(k.CONFIGMAPS, ns, label_selector=f"{lockmod.LOCK_LABEL}=true")
        by_pvc: dict[tuple[str, str], list[dict]] = {}
        for s in sources:
            by_pvc.setdefault((s["metadata"]["namespace"], (s.get("spec") or {}).get("sourcePVC")), []).append(s)
        active = {}
        for r in sorted(restores, key=lambda r: r["metadata"]["creationTimestamp"]):
            if (r.get("status") or {}).get("phase") != "Finished":
                active.setdefault((r["metadata"]["namespace"], (r.get("spec") or {}).get("pvc")), r)
        locked = {(l["metadata"]["namespace"], (l.get("data") or {}).get("pvc")): l for l in lock_objs}
        restore_index = {(r["metadata"]["namespace"], r["metadata"]["name"]): r for r in restores}
        rows = []
        for p in pvcs:
            key = (p["metadata"]["namespace"], p["metadata"]["name"])
            srcs = by_pvc.get(key, [])
            src = srcs[0] if len(srcs) == 1 else None
            status = (src or {}).get("status") or {}
            try:
                mover = volsync.mover_of(src) if src else ""
            except volsync.VolsyncError:
                mover = "?"
            lock = locked.get(key)
            restore = active.get(key)
            rows.append(PVCRow(
                namespace=key[0], name=key[1],
                size=((p.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage", ""),
                source=src["metadata"]["name"] if src else (f"{len(srcs)} sources" if srcs else "-"),
                mover=mover, last_backup=status.get("lastSyncTime") or "",
                last_result=(status.get("latestMoverStatus") or {}).get("result") or "",
                lock=(f"{(lock.get('data') or {}).get('holder')} ({_holder_state(lock, restore_index)})"
                      if lock else ""),
                restore=restore["metadata"]["name"] if restore else "",
                phase=((restore or {}).get("status") or {}).get("phase") or ("Pending" if restore else "")))
        return sorted(rows, key=lambda r: r.key)

    async def restores(self) -> list[dict[str, Any]]:
        items = await self.kube.list(k.PVC_RESTORES, self.namespace)
        return sorted(items, key=lambda r: r["metadata"]["creationTimestamp"], reverse=True)

    async def restore(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.kube.get_or_none(k.PVC_RESTORES, name, namespace)

    async def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        events = await self.kube.list(k.EVENTS, namespace, field_selector=f"involvedObject.name={name}")
        return sorted(events, key=model.event_order)

    async def destination(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.kube.get_or_none(k.REPLICATION_DESTINATIONS, name, namespace)

    async def locks(self) -> list[LockRow]:
        items = await self.kube.list(k.CONFIGMAPS, self.namespace, label_selector=f"{lockmod.LOCK_LABEL}=true")
        restores = {(r["metadata"]["namespace"], r["metadata"]["name"]): r
                    for r in await self.kube.list(k.PVC_RESTORES, self.namespace)}
        return [LockRow(namespace=l["metadata"]["namespace"], pvc=(l.get("data") or {}).get("pvc", ""),
                        name=l["metadata"]["name"], holder=lockmod.holder_of(l)[0] or "?",
                        created=l["metadata"].get("creationTimestamp", ""), holder_state=_holder_state(l, restores))
                for l in items]

    async def snapshots(self, namespace: str, pvc: str, *, where: str = "auto"
                        ) -> tuple[list[dict[str, Any]] | None, str | None, str | None]:
        """(snapshots, None, how they were listed) or (None, why not, None); ``where`` as restic.source_snapshots."""
        from .. import restic

        try:
            source = await plan.find_source(self.kube, namespace, pvc)
        except plan.SourceError as exc:
            return None, str(exc), None
        return await restic.source_snapshots(self.kube, source, timeout=20, where=where,
                                             image=self.snapshot_image or restic.DEFAULT_IMAGE)

    async def plan(self, namespace: str, pvc: str, selector: Selector) -> Plan:
        problems: list[str] = []
        source_name = None
        try:
            source = await plan.find_source(self.kube, namespace, pvc)
            source_name = source["metadata"]["name"]
            volsync.check_restorable(source, selector)
        except (plan.SourceError, volsync.VolsyncError) as exc:
            problems.append(str(exc))
        workloads = await plan.plan_workloads(self.kube, namespace, pvc)
        return Plan(workloads.owners, source_name, problems + workloads.problems, workloads.stops, workloads.notes)

    async def create(self, namespace: str, pvc: str, selector: Selector, *, safety_backup: bool = False,
                     **options: Any) -> str:
        """``options``: restores.create_restore's (delete_bare_pods, running_jobs, partial_data, timeout)."""
        from ..restores import create_restore

        created = await create_restore(self.kube, namespace, pvc, selector, created_by="kubectl pvc-restore tui",
                                       safety_backup=safety_backup, **options)
        return created["metadata"]["name"]

    async def cancel(self, namespace: str, name: str) -> None:
        await self.kube.delete(k.PVC_RESTORES, name, namespace)

    async def clear_lock(self, row: LockRow) -> None:
        lock = await self.kube.get_or_none(k.CONFIGMAPS, row.name, row.namespace)
        if lock is None:
            return
        restores = {(r["metadata"]["namespace"], r["metadata"]["name"]): r
                    for r in await self.kube.list(k.PVC_RESTORES, row.namespace)}
        state = _holder_state(lock, restores)
        if state.startswith(("active", "holding")):
            raise LiveLock(f"lock {row.name} is held by {row.holder}, which is {state}: clearing it could let two "
                           "restores write the PVC at once; cancel that restore instead")
        await self.kube.delete(k.CONFIGMAPS, row.name, row.namespace, uid=lock["metadata"]["uid"])


class LiveLock(Exception):
    pass
