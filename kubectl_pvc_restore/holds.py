"""What each restore holds stopped, read from its status: the one definition the controller's gauges
(controller/observed.py, which the chart's alerts read) and ``kubectl pvc-restore doctor`` share.

A restore *holds* what it recorded from the moment it recorded it (ScaleDown, before acting) until it is Finished with
everything put back; one that ended on partial data and keeps its workloads stopped (``PVCRestore.holding``) goes on
holding them until a retry takes them over, an undo, or ``scale-back``. What is held:

- workloads: the recorded workloads that had replicas (``status.pvcOwners`` with ``replicas > 0``), at 0;
- the ReplicationSource (``status.replicationSource``), when it was not paused before (``replicationSourcePaused``
  false): paused, so no backup is taken;
- stops (``status.stopped``): DaemonSets, CronJobs, Flux and Argo CD owners, KEDA ScaledObjects, StatefulSet
  retention (``delete``, a bare pod deleted for good, holds nothing).

``reason``: ``restore_in_progress`` (the restore runs and will put things back) or ``partial_data`` (it ended on
partial data: nothing comes back until someone decides).
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from .model import Owner, Phase, PVCRestore, Stop, parse_time_or_none

IN_PROGRESS = "restore_in_progress"
PARTIAL_DATA = "partial_data"
REASONS = (IN_PROGRESS, PARTIAL_DATA)
#: Stop methods that keep something stopped until Finalize undoes them.
STOP_METHODS = ("nodeSelector", "suspend", "argoAutomated", "kedaPause", "pvcRetention")
#: Phases in which a running restore may hold what it recorded.
HOLDING_PHASES = (Phase.SCALE_DOWN, Phase.RESTORE, Phase.FINALIZE)


@dataclasses.dataclass(frozen=True)
class Hold:
    restore: PVCRestore
    reason: str
    since: float | None            # Unix time the hold began (None: the status has no time to tell)
    workloads: tuple[Owner, ...]   # at 0, to come back at their recorded replicas
    source: str | None             # the ReplicationSource kept paused
    stops: tuple[Stop, ...]

    @property
    def empty(self) -> bool:
        return not (self.workloads or self.source or self.stops)


def seconds(value: object) -> float | None:
    when = parse_time_or_none(value)
    return when.timestamp() if when else None


def reason(r: PVCRestore) -> str | None:
    """``restore_in_progress``, ``partial_data``, or None when the restore holds nothing now."""
    if r.holding:
        return PARTIAL_DATA
    if not r.finished and r.phase in HOLDING_PHASES:
        return IN_PROGRESS
    return None


def entered(r: PVCRestore, phase: str) -> float | None:
    """When ``r`` last entered ``phase``, from its timeline (or phaseStartTime when that is its phase now)."""
    entries = [e for e in r.status.timeline or [] if isinstance(e, dict) and e.get("phase") == phase]
    when = seconds(entries[-1].get("at")) if entries else None
    if when is None and r.phase.value == phase:
        when = seconds(r.status.phase_start_time)
    return when


def hold_start(r: PVCRestore, by_key: dict[tuple[str, str], PVCRestore]) -> float | None:
    """Since when what ``r`` holds is held: when it entered ScaleDown; for a restore that took over the workloads of
    one that ended on partial data (``status.inheritedFrom``), when that one did (followed while it is listed)."""
    seen = set()
    current = r
    while current.status.inherited_from and current.key not in seen:
        seen.add(current.key)
        earlier = by_key.get((current.namespace, current.status.inherited_from))
        if earlier is None:
            break
        current = earlier
    for candidate in (current, r):
        when = (entered(candidate, Phase.SCALE_DOWN.value) or seconds(candidate.status.start_time)
                or seconds(candidate.creation_timestamp))
        if when is not None:
            return when
    return None


def holds(restores: Iterable[PVCRestore]) -> list[Hold]:
    """The restores that hold something now, each with what it holds (empty holds left out)."""
    models = list(restores)
    by_key = {(r.namespace, r.name): r for r in models}
    found = []
    for r in models:
        why = reason(r)
        if why is None:
            continue
        status = r.status
        hold = Hold(
            restore=r, reason=why, since=hold_start(r, by_key),
            workloads=tuple(o for o in status.pvc_owners or [] if o.replicas > 0),
            source=status.replication_source if status.replication_source_paused is False else None,
            stops=tuple(s for s in status.stopped or [] if s.method in STOP_METHODS))
        if not hold.empty:
            found.append(hold)
    return found
