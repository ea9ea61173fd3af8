"""One reconcile of one PVCRestore (``Run``) and the error that fails a restore (``Failed``)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore.durations import parse_duration
from kubectl_pvc_restore.model import API_VERSION, KIND, PVCRestore, Status, format_time, now, parse_time
from kubectl_pvc_restore.selector import Selector

from .settings import Settings
from .wake import Wake

log = logging.getLogger("pvc-restore.run")


class Failed(Exception):
    """The restore cannot succeed; the message is for the user (it becomes status.error). ``untouched``: the mover
    certainly wrote nothing (e.g. it never started, or found no snapshot), whatever the phase."""

    def __init__(self, message: str, *, untouched: bool = False) -> None:
        super().__init__(message)
        self.untouched = untouched


def owned_by(obj: dict[str, Any] | None, uid: str) -> bool:
    """Whether ``obj`` has an ownerReference to the object with ``uid`` (what a restore created itself)."""
    return obj is not None and any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


class Run:
    """One reconcile of one PVCRestore: the object as last read or written, and the means to change it.

    ``run.r`` and ``run.status`` stay the same objects for the whole reconcile: every write adopts what the API
    returned into them, so a handler may hold either without reading a stale copy after ``save()``.
    """

    def __init__(self, kube: k.Kube, settings: Settings, obj: dict[str, Any],
                 siblings: list[PVCRestore] | None = None) -> None:
        self.kube = kube
        self.settings = settings
        self.obj = obj
        self.r = PVCRestore.from_dict(obj)
        self.siblings = siblings or []
        #: When the API server first refused this restore a permission (monotonic seconds; the loop keeps it across
        #: reconciles until one succeeds), or None.
        self.forbidden_since: float | None = None
        #: The last Event recorded (``event``), sent after the ones before it.
        self._events: asyncio.Task | None = None
        #: Set by a handler that waits: the change to follow until the next poll, to look again at once (wake.py).
        self.wake: Wake | None = None

    def refused_for_long(self) -> bool:
        """A permission has been refused for ``forbidden_grace``: not an API server still loading RBAC."""
        return self.forbidden_since is not None and \
            time.monotonic() - self.forbidden_since >= self.settings.forbidden_grace

    @property
    def status(self) -> Status:
        return self.r.status

    @property
    def ns(self) -> str:
        return self.r.namespace

    @property
    def selector(self) -> Selector:
        return Selector(previous=self.r.spec.previous or None, restore_as_of=self.r.spec.restore_as_of)

    def _adopt(self, obj: dict[str, Any]) -> None:
        """Take the object the API returned, into the same PVCRestore and Status instances."""
        fresh = PVCRestore.from_dict(obj)
        vars(self.r.status).update(vars(fresh.status))
        fresh.status = self.r.status
        vars(self.r).update(vars(fresh))
        self.obj = obj

    async def save(self) -> None:
        """Replace the status (PUT on the status subresource, so unset fields are stored as null), conditional on
        the resourceVersion we read: a concurrent writer gets a Conflict."""
        self.status.observed_generation = self.r.generation
        self.status.last_reconciled_time = format_time(now())
        obj = await self.kube.replace(k.PVC_RESTORES, {**self.obj, "status": self.status.to_dict()},
                                      subresource="status")
        self._adopt(obj)

    async def wait(self, message: str, **fields: Any) -> None:
        """Stay in this phase; record why (only when that changed, so a waiting restore costs no writes)."""
        changed = self.status.message != message
        for name, value in fields.items():
            changed |= getattr(self.status, name) != value
            setattr(self.status, name, value)
        if changed:
            self.status.message = message
            await self.save()

    async def set_finalizers(self, finalizers: list[str]) -> None:
        obj = await self.kube.patch(k.PVC_RESTORES, self.r.name, self.ns, {
            "metadata": {"resourceVersion": self.r.resource_version, "finalizers": finalizers or None}})
        self._adopt(obj)

    async def event(self, reason: str, message: str, *, warning: bool = False) -> None:
        """Record an Event about the restore without waiting for it: Events are best effort, and a restore's steps
        should not each wait for one more request. They are sent one after the other, in the order recorded;
        ``events_sent`` waits for them."""
        about = {**self.obj, "apiVersion": API_VERSION, "kind": KIND}
        previous = self._events

        async def send() -> None:
            if previous is not None:
                await asyncio.wait([previous])
            try:
                await self.kube.event(about, reason, message, type_="Warning" if warning else "Normal")
            except Exception:  # noqa: BLE001 - best effort, and nobody awaits this task's result
                log.exception("recording Event %s failed", reason)

        self._events = asyncio.get_running_loop().create_task(send())

    async def events_sent(self) -> None:
        """Wait until every Event recorded so far was sent (or refused: they are best effort)."""
        if self._events is not None:
            await asyncio.wait([self._events])

    def owns(self, obj: dict[str, Any] | None) -> bool:
        """Whether this restore created ``obj`` (its ownerReference), whatever name status gives it."""
        return owned_by(obj, self.r.uid)

    async def source(self) -> dict[str, Any]:
        """The PVC's ReplicationSource recorded in ScaleDown, or fail: it was deleted during the restore."""
        name = self.status.replication_source
        source = await self.kube.get_or_none(k.REPLICATION_SOURCES, name, self.ns) if name else None
        if source is None:
            raise Failed(f"ReplicationSource {name} was deleted during the restore")
        return source

    @property
    def extra_scale_kinds(self) -> frozenset[tuple[str, str]]:
        return self.settings.extra_scale_kinds

    def mover_start_limit(self) -> float:
        return self.settings.mover_start_timeout

    def restore_limit(self) -> float:
        return parse_duration(self.r.spec.timeout) if self.r.spec.timeout else self.settings.restore_timeout

    def fields(self) -> dict[str, str]:
        """Log fields naming this restore."""
        return {"namespace": self.ns, "restore": self.r.name, "pvc": self.r.spec.pvc, "phase": self.r.phase.value}

    def elapsed(self, since: str | None = None) -> float:
        """Seconds since ``since`` (a status or metadata time), by default since this phase began; 0 when unknown."""
        started = parse_time(since if since is not None else self.status.phase_start_time) or now()
        return (now() - started).total_seconds()

    def overdue(self, limit: float, since: str | None = None) -> bool:
        """A deadline: more than ``limit`` seconds since ``since`` (by default, since this phase began)."""
        return self.elapsed(since) > limit
