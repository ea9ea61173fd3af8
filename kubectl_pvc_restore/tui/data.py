"""What the TUI shows, fetched from the cluster into plain rows. ``Source`` is the interface the screens use;
``Cluster`` implements it over the Kube layer (tests of the layout use a static implementation)."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, cast

from .. import kube as k
from .. import locks as lockmod
from .. import model, plan, volsync
from ..preview import Preview
from ..preview import build as build_preview
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


#: A lock as the locks screen shows it (shared with `kubectl pvc-restore locks`).
LockRow = lockmod.LockInfo
LiveLock = lockmod.LiveLock


class Source(Protocol):
    namespace: str | None

    async def pvcs(self) -> list[PVCRow]: ...
    async def restores(self) -> list[dict[str, Any]]: ...
    async def restore(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def events(self, namespace: str, name: str, uid: str | None) -> list[dict[str, Any]]: ...
    async def destination(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    async def locks(self) -> list[LockRow]: ...
    async def snapshots(self, namespace: str, pvc: str, *, where: str = "auto"
                        ) -> tuple[list[dict[str, Any]] | None, str | None, str | None]: ...
    async def preview(self, namespace: str, spec: model.Spec) -> Preview: ...
    async def create(self, namespace: str, pvc: str, selector: Selector, *, safety_backup: bool = False,
                     **options: Any) -> str: ...
    async def cancel(self, namespace: str, name: str) -> None: ...
    async def clear_lock(self, row: LockRow) -> None: ...
    async def close(self) -> None: ...


class Cluster:
    def __init__(self, kube: k.Kube, namespace: str | None, *, snapshot_image: str | None = None) -> None:
        self.kube = kube
        self.namespace = namespace  # None: all namespaces
        #: The image of the pod that lists snapshots inside the cluster (restic.DEFAULT_IMAGE when None).
        self.snapshot_image = snapshot_image

    async def pvcs(self) -> list[PVCRow]:
        import asyncio

        ns = self.namespace
        # The four lists at once (one round trip's wait, not four); the first error is raised once all have ended.
        results = await asyncio.gather(
            self.kube.list(k.PVCS, ns), self.kube.list(k.REPLICATION_SOURCES, ns), self.kube.list(k.PVC_RESTORES, ns),
            self.kube.list(k.CONFIGMAPS, ns, label_selector=f"{lockmod.LOCK_LABEL}=true"), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        pvcs, sources, restores, lock_objs = cast("list[list[dict[str, Any]]]", results)
        by_pvc: dict[tuple[str, str | None], list[dict]] = {}
        for s in sources:
            by_pvc.setdefault((s["metadata"]["namespace"], (s.get("spec") or {}).get("sourcePVC")), []).append(s)
        active: dict[tuple[str, str | None], dict[str, Any]] = {}
        for r in sorted(restores, key=lambda r: r["metadata"]["creationTimestamp"]):
            if (r.get("status") or {}).get("phase") != "Finished":
                active.setdefault((r["metadata"]["namespace"], (r.get("spec") or {}).get("pvc")), r)
        locked = {(obj["metadata"]["namespace"], (obj.get("data") or {}).get("pvc")): obj for obj in lock_objs}
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
                lock=(f"{(lock.get('data') or {}).get('holder')} "
                      f"({lockmod.holder_state(lock, restore_index.get((key[0], lockmod.holder_of(lock)[0])))})"
                      if lock else ""),
                restore=restore["metadata"]["name"] if restore else "",
                phase=((restore or {}).get("status") or {}).get("phase") or ("Pending" if restore else "")))
        return sorted(rows, key=lambda r: r.key)

    async def restores(self) -> list[dict[str, Any]]:
        items = await self.kube.list(k.PVC_RESTORES, self.namespace)
        return sorted(items, key=lambda r: r["metadata"]["creationTimestamp"], reverse=True)

    async def restore(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.kube.get_or_none(k.PVC_RESTORES, name, namespace)

    async def events(self, namespace: str, name: str, uid: str | None) -> list[dict[str, Any]]:
        from ..restore_view import events

        return await events(self.kube, namespace, name, uid)

    async def destination(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.kube.get_or_none(k.REPLICATION_DESTINATIONS, name, namespace)

    async def locks(self) -> list[LockRow]:
        return await lockmod.list_locks(self.kube, self.namespace)

    async def snapshots(self, namespace: str, pvc: str, *, where: str = "auto"
                        ) -> tuple[list[dict[str, Any]] | None, str | None, str | None]:
        """(snapshots, None, how they were listed) or (None, why not, None); ``where`` as restic.source_snapshots."""
        from .. import restic

        try:
            source = await plan.find_source(self.kube, namespace, pvc)
        except plan.SourceError as exc:
            return None, str(exc), None
        # 60 s, as `snapshots --timeout`: a listing pod on a node that pulls the image first may need most of it (the
        # list loads in a worker; the screen stays usable meanwhile).
        return await restic.source_snapshots(self.kube, source, timeout=60, where=where,
                                             image=self.snapshot_image or restic.DEFAULT_IMAGE)

    async def preview(self, namespace: str, spec: model.Spec) -> Preview:
        return await build_preview(self.kube, namespace, spec.pvc, spec)

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
        """Refuses (LiveLock) while the holder is live; a lock gone meanwhile is nothing to do."""
        try:
            await lockmod.clear_lock(self.kube, row.namespace, row.pvc)
        except lockmod.NoLock:
            pass

    async def close(self) -> None:
        await self.kube.close()
