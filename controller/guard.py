"""Guarding the PVC while the mover writes it: no pod but volsync's mover may mount it.

A person, a script or a controller can scale a stopped workload back up during the Restore phase; its pods would
write the PVC beside the mover. Every reconcile of the Restore phase looks again: pods of a recorded workload are
stopped again (the workload scaled back to 0, its other stops re-applied) and reported; a pod of anything the restore
did not record fails the restore (its replicas to put back were never recorded). The chart's admission policy
(admission-guard) makes the API server refuse most of this in the first place, using the lock ConfigMap's ``held``
list that ``hold`` writes before anything is scaled.
"""

from __future__ import annotations

from typing import Any

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import locks, plan, stops, volsync
from kubectl_pvc_restore import owners as og
from kubectl_pvc_restore.model import Owner


async def held_entries(kube: k.Kube, owners: list[Owner]) -> list[str]:
    """``<resource>/<name>`` of each recorded workload, as the admission policy matches requests."""
    entries = []
    for owner in owners:
        res = await kube.resource_for(owner.api_version, owner.kind, scalable=False)
        if res is not None:
            entries.append(f"{res.plural}/{owner.name}")
    return sorted(entries)


async def hold(kube: k.Kube, namespace: str, pvc: str, holder_uid: str, owners: list[Owner], *, on: bool) -> None:
    """Write the held workloads and the guard switch into this restore's lock (only if it holds the lock)."""
    name = locks.lock_name(pvc)
    lock = await kube.get_or_none(k.CONFIGMAPS, name, namespace)
    if lock is None or locks.holder_of(lock)[1] != holder_uid:
        return
    data = {locks.HELD_KEY: " ".join(await held_entries(kube, owners)), locks.GUARD_KEY: "on" if on else "off"}
    if all((lock.get("data") or {}).get(key) == value for key, value in data.items()):
        return
    await kube.patch(k.CONFIGMAPS, name, namespace, {
        "metadata": {"uid": lock["metadata"]["uid"], "resourceVersion": lock["metadata"]["resourceVersion"]},
        "data": data})
    k.progress()


async def intruders(kube: k.Kube, namespace: str, pvc: str, *, destination: str | None, source: str | None
                    ) -> list[dict[str, Any]]:
    """Pods that mount the PVC and are not the restore's volsync movers (its destination's, or its source's during
    the safety backup); terminating ones included: they may still write."""
    return [p for p in await plan.pods_mounting(kube, namespace, pvc)
            if not volsync.is_mover_pod(p, destination=destination or "", source=source or "")]


async def stop_again(kube: k.Kube, namespace: str, pods: list[dict[str, Any]], owners: list[Owner],
                     recorded_stops: list, restore_name: str) -> tuple[list[str], list[str]]:
    """Stop what brought ``pods`` back. Returns (what was stopped again, pods nothing recorded accounts for)."""
    stopped: list[str] = []
    for owner in owners:
        res = await kube.resource_for(owner.api_version, owner.kind)
        if res is None:
            continue
        try:
            scale = await kube.get_scale(res, owner.name, namespace)
        except k.NotFound:
            continue
        if int((scale.get("spec") or {}).get("replicas", 0)) != 0:
            await kube.set_scale(res, owner.name, namespace, 0)
            stopped.append(f"{owner.kind} {owner.name}")
    for stop in sorted(recorded_stops, key=stops.priority):
        await stops.apply(kube, stop, restore_name)
    recorded = {(o.api_version, o.kind, o.name) for o in owners} | {
        (s.api_version, s.kind, s.name) for s in recorded_stops}
    unknown = []
    objects: dict[og.Key, dict[str, Any] | None] = {}
    frontier = list(pods)
    while needed := og.parents_needed(frontier, objects):
        frontier = []
        for key in sorted(needed):
            res = k.KNOWN.get(key[:2]) or await kube.resource_for(key[0], key[1], scalable=False)
            obj = objects[key] = await kube.get_or_none(res, key[2], namespace) if res else None
            if obj is not None:
                frontier.append({**obj, "apiVersion": key[0], "kind": key[1]})
    graph = og.walk(pods, objects)
    for key, pod_names in graph.tops.items():
        if key not in recorded:
            unknown += [f"{name} ({key[1]} {key[2]})" for name in pod_names]
    unknown += [f"{name} (no controller)" for name in graph.bare if ("v1", "Pod", name) not in recorded]
    return stopped, sorted(unknown)
