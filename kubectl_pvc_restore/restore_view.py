"""What ``kubectl pvc-restore describe`` and the TUI's restore screen both show of one restore, decided once: its
events, the state of its data, its workloads, its phases with their durations and the mover's outcome (plain text;
the TUI escapes it for its markup)."""

from __future__ import annotations

from typing import Any

from . import volsync
from .durations import format_duration
from .model import PHASE_NAMES, event_order, is_holding, timeline


async def events(kube: Any, namespace: str, name: str, uid: str | None) -> list[dict[str, Any]]:
    """The restore's Events in the order they happened: those of this object (by uid), not of an earlier restore
    of the same name."""
    from . import kube as k

    found = await kube.list(k.EVENTS, namespace, field_selector=f"involvedObject.name={name}")
    mine = [e for e in found if (e.get("involvedObject") or {}).get("uid") in (None, uid)]
    return sorted(mine, key=event_order)


def data_state(status: dict[str, Any], spec: dict[str, Any]) -> str | None:
    """Said when the mover was interrupted; None while the data is whole (or not yet touched)."""
    if not status.get("dataIncomplete"):
        return None
    return "INCOMPLETE: the mover was interrupted; " + (
        "workloads kept stopped (see Message for what to do next)" if is_holding(status, spec.get("partialData"))
        else f"workloads taken over by {status['handedOverTo']}" if status.get("handedOverTo")
        else "workloads scaled back onto the partial data")


def workloads(status: dict[str, Any]) -> list[str]:
    """The recorded workloads with the replicas they are put back to."""
    owners = status.get("pvcOwners")
    if owners is None:
        return ["(not recorded yet)"]
    return [f"{o['kind']} {o['name']}: {o['replicas']} replica(s) before the restore" for o in owners] or \
        ["(none mounted the PVC)"]


def phases(status: dict[str, Any], events: list[dict[str, Any]] | None) -> list[tuple[str, str, str]]:
    """``(phase, entered at, how long)`` for every phase entered; the current phase lasts "now" (Finished: "")."""
    return [(phase, at, format_duration(lasted) if lasted is not None else ("" if phase == "Finished" else "now"))
            for phase, at, lasted in timeline(status, events)]


def progress(status: dict[str, Any], events: list[dict[str, Any]] | None
             ) -> list[tuple[str, str, str | None, str]]:
    """``(mark, phase, entered at or None, how long)`` for every phase of the workflow: ✔ done, ▶ current, · not
    reached (a phase the restore skipped, e.g. after an early failure, stays ·)."""
    phase = status.get("phase") or "Pending"
    entered = {name: (at, took) for name, at, took in phases(status, events)}
    current = PHASE_NAMES.index(phase) if phase in PHASE_NAMES else -1
    rows = []
    for i, name in enumerate(PHASE_NAMES):
        at, took = entered.get(name, (None, ""))
        done = name in entered and (i < current or phase == "Finished")
        rows.append(("✔" if done else "▶" if i == current else "·", name, at, took))
    return rows


def mover(destination: dict[str, Any] | None, tail: int = 10) -> list[str]:
    """The mover's last result and the end of its log, from the ReplicationDestination."""
    state = (destination or {}).get("status") or {}
    result = state.get("latestMoverStatus") or {}
    if not result:
        return []
    lines = [f"mover result: {result.get('result')}"]
    log_tail = volsync.log_tail(result.get("logs") or "", tail)
    if log_tail:
        lines += ["mover log (tail):"] + [f"  {line}" for line in log_tail.splitlines()]
    return lines
