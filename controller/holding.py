"""Partial data: a restore that ends after the mover started writing, and before it finished, leaves the PVC partly
overwritten (copyMethod Direct, with file deletion). Bringing the workloads back onto it silently could corrupt an
application's data for good, so by default (``spec.partialData: KeepStopped``) the restore *holds* the PVC:

- Finalize deletes the ReplicationDestination (stopping the mover) but keeps the workloads stopped, everything else
  stopped as recorded, the ReplicationSource paused (its next backup would be of partial data) and the PVC's lock
  (with the admission guard on); the restore ends Finished with ``status.dataIncomplete`` and a ``DataIncomplete``
  condition that names the next commands.
- The next restore of the PVC (a retry, or ``kubectl pvc-restore undo``) takes the lock over and *inherits* the
  record (the replicas and values to put back), so that when it succeeds everything comes back as it was before
  the first restore; the held restore is marked ``handedOverTo``.
- ``kubectl pvc-restore scale-back NAME`` (an annotation) puts everything back onto the partial data, on purpose.
  Deleting a holding restore (``cancel``) does not: it stays Terminating, still holding, until one of the above.

``spec.partialData: ScaleBack`` is the seed's behaviour: workloads back at once, the condition still says the data is
incomplete.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import volsync
from kubectl_pvc_restore.model import PVCRestore, Status, format_time, now

from . import trusted

if TYPE_CHECKING:
    from .run import Run

log = logging.getLogger("pvc-restore.holding")
CONDITION = "DataIncomplete"


def keeps_stopped(r: PVCRestore) -> bool:
    return bool(r.status.data_incomplete) and r.spec.partial_data == "KeepStopped"


async def mover_may_have_written(run: Run) -> bool:
    """Did the mover start on this restore's destination (recorded, or visible on it now)?"""
    if run.status.mover_started:
        return True
    name = run.status.replication_destination
    if not name:
        return False
    destination = await run.kube.get_or_none(k.REPLICATION_DESTINATIONS, name, run.ns)
    return destination is not None and run.owns(destination) and bool(volsync.sync_started(destination))


def next_steps(r: PVCRestore) -> str:
    """The exact commands a user has, for the condition, the event and the CLI."""
    ns = r.namespace
    steps = [f"retry the restore (it takes the held workloads over and brings them back when it succeeds): "
             f"kubectl pvc-restore start {r.spec.pvc} -n {ns}{r.spec.selector_flags()}"]
    if r.status.safety_backup and r.status.safety_backup.completed_at:
        steps.append(f"or put back the data backed up just before: kubectl pvc-restore undo {r.name} -n {ns}")
    steps.append(f"or bring the workloads back onto the partial data on purpose: "
                 f"kubectl pvc-restore scale-back {r.name} -n {ns}")
    return "; ".join(steps)


def set_condition(status: Status, message: str) -> None:
    stamp = format_time(now())
    previous = next((c for c in status.conditions if c.get("type") == CONDITION), None)
    if previous and previous.get("status") == "True":
        stamp = previous.get("lastTransitionTime", stamp)
    status.conditions = [c for c in status.conditions if c.get("type") != CONDITION] + [{
        "type": CONDITION, "status": "True", "reason": "MoverInterrupted", "message": message[:32000],
        "lastTransitionTime": stamp}]


def holding_sibling(run: Run) -> PVCRestore | None:
    """The newest other restore of this PVC that holds it after partial data."""
    held = [s for s in run.siblings if s.uid != run.r.uid and s.holding]
    return max(held, key=lambda s: (s.status.completion_time or "", s.name)) if held else None


async def inherit(run: Run) -> None:
    """ScaleDown of a restore that follows a held one: take over its record (written here before anything is
    done), then mark it handed over. Repeatable: a crash between the two writes finds inherited_from set."""
    status = run.status
    if status.inherited_from is None and status.pvc_owners is None:
        held = holding_sibling(run)
        if held is None:
            return
        owners, _ = trusted.split_owners(held.status.pvc_owners or [], run.ns, run.extra_scale_kinds)
        stops, _ = trusted.split_stops(held.status.stopped or [], run.ns)
        status.inherited_from = held.name
        status.pvc_owners = owners
        status.stopped = stops
        status.replication_source_paused = held.status.replication_source_paused
        status.notes = (status.notes or []) + [
            f"took over the workloads held by {held.name} after its partial restore, with their recorded replicas"]
        await run.save()  # intent: the held record is ours now
        await run.event("TookOver", status.notes[-1])
    if status.inherited_from:
        held_obj = await run.kube.get_or_none(k.PVC_RESTORES, status.inherited_from, run.ns)
        if held_obj is not None and not (held_obj.get("status") or {}).get("handedOverTo"):
            held_obj["status"]["handedOverTo"] = run.r.name
            await run.kube.replace(k.PVC_RESTORES, held_obj, subresource="status")


async def release(run: Run, put_back) -> None:
    """``scale-back`` of a holding restore: put everything back onto the partial data, on purpose."""
    owners, _ = trusted.split_owners(run.status.pvc_owners or [], run.ns, run.extra_scale_kinds)
    stops, _ = trusted.split_stops(run.status.stopped or [], run.ns)
    notes = await put_back(run, owners, stops)
    run.status.scaled_back_at = format_time(now())
    run.status.message = ("workloads scaled back onto the partial data, as asked (scale-back)"
                          + (f"; {'; '.join(notes)}" if notes else ""))
    set_condition(run.status, f"the PVC holds partial data; {run.status.message}")
    await run.save()
    log.warning(run.status.message, extra=run.fields())
    await run.event("ScaledBack", run.status.message, warning=True)
