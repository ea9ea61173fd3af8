"""What the alerts need, computed from one poll's lists (PVCRestores and lock ConfigMaps) and nothing else.

Level-triggered: every value is derived from the state the API server holds (the restores' status records, the
locks' data), never from counters kept in memory, so a controller that restarts, or another replica that takes the
lead, reports the same thing at its first poll. What a restore holds stopped, and since when, is
``kubectl_pvc_restore.holds`` (``kubectl pvc-restore doctor`` reads the same).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from kubectl_pvc_restore import holds as h
from kubectl_pvc_restore import locks
from kubectl_pvc_restore.model import PHASE_NAMES, Phase, PVCRestore

REASONS = h.REASONS
STOP_METHODS = h.STOP_METHODS
#: ``result`` of ``pvc_restore_restores``: ``none`` until Finished.
RESULTS = ("none", "succeeded", "failed")
#: A lock's holder, as ``kubectl pvc-restore locks`` says it: running, holding after partial data, Finished (the
#: lock is abandoned: the controller deletes it after --lock-ttl), or gone (no such restore any more: abandoned too).
LOCK_HOLDERS = ("active", "holding", "finished", "gone")


@dataclasses.dataclass(frozen=True)
class State:
    """One poll's view. Timestamps are Unix seconds; a ``*_since`` / ``oldest_*`` map has a key only when there is
    something to date (an absent series, not a made-up 0)."""

    restores: dict[tuple[str, str], int]            # (phase, result) -> PVCRestores
    oldest_in_phase: dict[str, float]               # phase -> when the longest-waiting unfinished restore entered it
    oldest_restore_start: float | None              # start of the oldest unfinished restore
    last_failure: float | None                      # completion time of the newest failed restore listed
    workloads_held: dict[str, int]                  # reason -> workloads held at 0
    workloads_held_since: dict[str, float]          # reason -> since when the longest-held one is held
    sources_paused: dict[str, int]                  # reason -> ReplicationSources paused by a restore
    sources_paused_since: dict[str, float]
    stops: dict[str, int]                           # method -> objects kept stopped besides scaling
    locks: dict[str, int]                           # holder -> lock ConfigMaps
    oldest_lock: dict[str, float]                   # holder -> when the oldest lock was acquired


_seconds = h.seconds


def _earliest(current: float | None, value: float | None) -> float | None:
    if value is None:
        return current
    return value if current is None else min(current, value)


def lock_holder(lock: dict[str, Any], restores: dict[tuple[str, str], dict[str, Any]]) -> str:
    """One of ``LOCK_HOLDERS`` (``locks.holder_state`` says the same in words)."""
    holder, _ = locks.holder_of(lock)
    state = locks.holder_state(lock, restores.get(((lock.get("metadata") or {}).get("namespace", ""), holder)))
    word = state.split(" ", 1)[0]
    return word if word in LOCK_HOLDERS else "active"


def compute(restores: Iterable[dict[str, Any]], lock_objs: Iterable[dict[str, Any]]) -> State:
    raw = {(r["metadata"].get("namespace", ""), r["metadata"]["name"]): r for r in restores}
    models = {key: PVCRestore.from_dict(obj) for key, obj in raw.items()}

    counts = {(phase, result): 0 for phase in PHASE_NAMES
              for result in (RESULTS[1:] if phase == Phase.FINISHED.value else RESULTS[:1])}
    oldest_in_phase: dict[str, float] = {}
    oldest_start = last_failure = None
    workloads = dict.fromkeys(REASONS, 0)
    workloads_since: dict[str, float] = {}
    sources = dict.fromkeys(REASONS, 0)
    sources_since: dict[str, float] = {}
    stops = dict.fromkeys(STOP_METHODS, 0)

    for r in models.values():
        status = r.status
        if r.finished:
            failed = bool(status.error)
            counts[(Phase.FINISHED.value, "failed" if failed else "succeeded")] += 1
            if failed:
                done = _seconds(status.completion_time)
                if done is not None and (last_failure is None or done > last_failure):
                    last_failure = done
        else:
            counts[(r.phase.value, "none")] += 1
            oldest_start = _earliest(oldest_start, _seconds(status.start_time) or _seconds(r.creation_timestamp))
            # A restore queued behind another restore of its PVC (status.lockHolder) waits on purpose: not stuck.
            if not (r.phase == Phase.INITIALIZE and status.lock_holder):
                entered = _seconds(status.phase_start_time) or _seconds(r.creation_timestamp)
                if entered is not None:
                    oldest_in_phase[r.phase.value] = min(oldest_in_phase.get(r.phase.value, entered), entered)

    for hold in h.holds(models.values()):
        if hold.workloads:
            workloads[hold.reason] += len(hold.workloads)
            if hold.since is not None:
                workloads_since[hold.reason] = min(workloads_since.get(hold.reason, hold.since), hold.since)
        if hold.source:
            sources[hold.reason] += 1
            if hold.since is not None:
                sources_since[hold.reason] = min(sources_since.get(hold.reason, hold.since), hold.since)
        for stop in hold.stops:
            stops[stop.method] += 1

    lock_counts = dict.fromkeys(LOCK_HOLDERS, 0)
    oldest_lock: dict[str, float] = {}
    for lock in lock_objs:
        holder = lock_holder(lock, raw)
        lock_counts[holder] += 1
        acquired = _seconds((lock.get("data") or {}).get("acquiredAt")) or _seconds(
            (lock.get("metadata") or {}).get("creationTimestamp"))
        if acquired is not None:
            oldest_lock[holder] = min(oldest_lock.get(holder, acquired), acquired)

    return State(restores=counts, oldest_in_phase=oldest_in_phase, oldest_restore_start=oldest_start,
                 last_failure=last_failure, workloads_held=workloads, workloads_held_since=workloads_since,
                 sources_paused=sources, sources_paused_since=sources_since, stops=stops, locks=lock_counts,
                 oldest_lock=oldest_lock)
