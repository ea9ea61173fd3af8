"""The PVCRestore phase machine.

    Initialize -> ScaleDown -> Restore -> Finalize -> Finished
         \\____________\\___________\\______/   (any failure, or deletion, goes to Finalize)

``PHASES`` below is the one place to read the workflow. Each handler reads a fresh view of what it acts on, writes
its intent into the PVCRestore's status (guarded by resourceVersion) *before* acting, then acts; so any handler can
be repeated after a crash. A handler returns the next phase, or None to wait for the next poll. Phases that need no
waiting run back to back in one reconcile.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import locks, plan, seed_controller, stops, volsync
from kubectl_pvc_restore.durations import MAX_RESTORE_TIMEOUT_HOURS, parse_duration
from kubectl_pvc_restore.model import (
    FINALIZER,
    SCALE_BACK_ANNOTATION,
    Phase,
    Status,
    format_time,
    format_time_ms,
    now,
    parse_time,
)
from kubectl_pvc_restore.selector import Selector, SelectorError, check_restore_as_of

from . import guard, holding, metrics, safety_backup, trusted, wake
from .faults import crashpoint
from .movers import check_mover
from .run import Failed, Run

__all__ = ["PHASES", "Failed", "Run", "reconcile"]

log = logging.getLogger("pvc-restore.phases")


def _ready_condition(status: Status, reason: str, message: str, value: str) -> None:
    stamp = format_time(now())
    previous = next((c for c in status.conditions if c.get("type") == "Ready"), None)
    if previous and previous.get("status") == value:
        stamp = previous.get("lastTransitionTime", stamp)
    status.conditions = [c for c in status.conditions if c.get("type") != "Ready"] + [{
        "type": "Ready", "status": value, "reason": reason, "message": message[:32000],
        "lastTransitionTime": stamp,
    }]


async def enter(run: Run, phase: Phase, message: str) -> None:
    """Move to ``phase`` (one status write), then record an Event."""
    status = run.status
    previous = status.phase
    if previous is None:
        metrics.RESTORES_STARTED.inc()
    else:
        metrics.PHASE_DURATION.labels(phase=previous.value).observe(run.elapsed())
    status.phase = phase
    entered = now()
    status.phase_start_time = format_time(entered)
    if not status.timeline or status.timeline[-1].get("phase") != phase.value:
        status.timeline = [*(status.timeline or []), {"phase": phase.value, "at": format_time_ms(entered)}]
    status.message = message
    if phase == Phase.FINISHED:
        status.completion_time = status.phase_start_time
        if status.data_incomplete:
            kept = holding.keeps_stopped(run.r)
            holding.set_condition(status, (
                "the restore ended after the mover started writing: the PVC holds partial data; "
                + ("the workloads are kept stopped and the source paused. Next: " + holding.next_steps(run.r)
                   if kept else "the workloads were scaled back onto it (partialData: ScaleBack)")))
        if status.error:
            _ready_condition(status, "DataIncomplete" if status.data_incomplete else "Failed", status.error, "False")
        else:
            _ready_condition(status, "Succeeded", message, "True")
    else:
        _ready_condition(status, phase.value, message, "False")
    await run.save()
    crashpoint(f"enter:{phase.value}")
    failed = phase == Phase.FINISHED and bool(status.error)
    if phase == Phase.FINISHED:
        metrics.RESTORES_FINISHED.labels(result="failed" if failed else "succeeded").inc()
    log.info("%s: %s", phase.value, status.error if failed else message, extra=run.fields())
    await run.event("Failed" if failed else phase.value, (status.error or "") if failed else message, warning=failed)


async def fail(run: Run, error: str, *, untouched: bool = False) -> None:
    log.warning("failed: %s", error, extra=run.fields())
    await run.event("RestoreFailed", error, warning=True)
    run.status.error = error
    if run.r.phase == Phase.RESTORE and not untouched and await holding.mover_may_have_written(run):
        run.status.data_incomplete = True  # recorded with the move to Finalize, before anything is put back
    message = ("cleaning up after an error: the mover may have written part of the data"
               + ("; keeping the workloads stopped" if holding.keeps_stopped(run.r) else "; scaling workloads back")
               if run.status.data_incomplete else "cleaning up after an error: scaling workloads back")
    await enter(run, Phase.FINALIZE, message)


# -- Initialize ---------------------------------------------------------------------------------------------------

def check_spec(run: Run) -> None:
    """What the CRD's schema cannot check (it has no clock), by the same rules as the annotation and the CLI; and,
    should the CRD be an older one, what it should have refused. Runs before anything is touched."""
    spec = run.r.spec
    if spec.timeout is not None:
        try:
            seconds = parse_duration(spec.timeout)
        except ValueError as exc:
            raise Failed(f"spec.timeout {spec.timeout!r} is not a duration: {exc}") from None
        if seconds < 1:
            raise Failed(f"spec.timeout {spec.timeout!r} is less than 1s; nothing was touched")
        if seconds > MAX_RESTORE_TIMEOUT_HOURS * 3600:
            raise Failed(f"spec.timeout {spec.timeout!r} is more than {MAX_RESTORE_TIMEOUT_HOURS}h; nothing was "
                         "touched")
    if spec.restore_as_of is not None:
        when = parse_time(spec.restore_as_of)
        try:
            check_restore_as_of(when, text=spec.restore_as_of)
        except SelectorError as exc:
            raise Failed(f"spec.restoreAsOf {exc}; nothing was touched") from None


async def initialize(run: Run) -> Phase | None:
    check_spec(run)
    pvc = await run.kube.get_or_none(k.PVCS, run.r.spec.pvc, run.ns)
    if pvc is None:
        raise Failed(f"PersistentVolumeClaim {run.r.spec.pvc} not found in namespace {run.ns}")
    if run.status.pvc_uid is None:
        run.status.pvc_uid = pvc["metadata"]["uid"]
        await run.save()  # which volume this restore is about: a PVC replaced later is another one
    else:
        await check_pvc(run)
    if FINALIZER not in run.r.finalizers:
        await run.set_finalizers(run.r.finalizers + [FINALIZER])
    if not run.status.start_time:
        run.status.start_time = format_time(now())
        await run.save()

    # Restores of one PVC run one at a time, in creation order.
    older = sorted((s for s in run.siblings
                    if s.spec.pvc == run.r.spec.pvc and s.uid != run.r.uid and not s.finished
                    and (s.creation_timestamp, s.name) < (run.r.creation_timestamp, run.r.name)),
                   key=lambda s: (s.creation_timestamp, s.name))
    if older:
        await run.wait(f"waiting for PVCRestore {older[0].name}, created earlier, to finish", lock_holder=older[0].name)
        return None

    lock = locks.lock_manifest(run.ns, run.r.spec.pvc, run.r.name, run.r.uid, now())
    try:
        await run.kube.create(k.CONFIGMAPS, lock, run.ns)
    except k.AlreadyExists:
        existing = await run.kube.get_or_none(k.CONFIGMAPS, lock["metadata"]["name"], run.ns)
        if existing is None:
            return None  # released just now: try again next poll
        holder, holder_uid = locks.holder_of(existing)
        held_by = next((s for s in run.siblings if s.uid == holder_uid and s.holding), None)
        if holder_uid != run.r.uid and held_by is not None:
            # A restore that ended on partial data holds the PVC for the next one: this one takes it over (and, in
            # ScaleDown, its record of what to put back).
            try:
                await run.kube.delete(k.CONFIGMAPS, lock["metadata"]["name"], run.ns, uid=existing["metadata"]["uid"])
            except k.Conflict:
                pass
            return None
        if not holder_uid and seed_controller.is_lock(existing):
            await run.wait(seed_controller.lock_message(run.r.spec.pvc, existing), lock_holder=None)
            return None
        if holder_uid != run.r.uid:
            await run.wait(f"PVC {run.r.spec.pvc} is locked by PVCRestore {holder or '(unknown)'} "
                           f"(ConfigMap {lock['metadata']['name']})", lock_holder=holder or None)
            return None
    run.status.lock_holder = None
    return Phase.SCALE_DOWN


async def check_pvc(run: Run) -> None:
    """The PVC must still be the one the restore started on (same uid): a PVC deleted, or deleted and created again
    (a StatefulSet's retention policy, a person, a GitOps tool), is not the volume the user asked to restore."""
    if run.status.pvc_uid is None:
        return
    pvc = await run.kube.get_or_none(k.PVCS, run.r.spec.pvc, run.ns)
    # The volume the restore was about is gone: there is no partial data of it to guard, so the workloads come back
    # (untouched), as they would after someone deleted their PVC without a restore.
    if pvc is None:
        raise Failed(f"PersistentVolumeClaim {run.r.spec.pvc} was deleted during the restore; nothing more was "
                     "restored", untouched=True)
    if pvc["metadata"]["uid"] != run.status.pvc_uid:
        raise Failed(f"PersistentVolumeClaim {run.r.spec.pvc} was deleted and created again during the restore (uid "
                     f"{run.status.pvc_uid} is now {pvc['metadata']['uid']}): it is another volume; nothing more was "
                     "restored", untouched=True)
    if pvc["metadata"].get("deletionTimestamp"):
        raise Failed(f"PersistentVolumeClaim {run.r.spec.pvc} is being deleted; nothing more was restored",
                     untouched=True)


# -- ScaleDown ----------------------------------------------------------------------------------------------------

async def scale_down(run: Run) -> Phase | None:
    status, ns, pvc = run.status, run.ns, run.r.spec.pvc
    await check_pvc(run)
    await holding.inherit(run)  # after a restore that ended on partial data: its held workloads are ours now
    if status.replication_source is None:
        try:
            source = await plan.find_source(run.kube, ns, pvc)
            volsync.check_restorable(source, run.selector)
        except (plan.SourceError, volsync.VolsyncError) as exc:
            raise Failed(str(exc)) from None
        status.replication_source = source["metadata"]["name"]
        if status.replication_source_paused is None:  # inherited: the value from before the held restore
            status.replication_source_paused = bool((source.get("spec") or {}).get("paused", False))
        await run.save()  # intent: which source, and its paused value to put back

    workloads = await plan.plan_workloads(run.kube, ns, pvc, spec=run.r.spec,
                                          argocd_namespace=run.settings.argocd_namespace)
    unscalable = [trusted.owner_problem(o, ns, run.extra_scale_kinds) for o in workloads.owners]
    problems = workloads.problems + [
        f"{o.kind} {o.name} mounts the PVC but is not a kind this controller scales (Deployment, StatefulSet, "
        f"ReplicaSet, ReplicationController, or one given with --extra-scale-kind {o.api_version}/{o.kind})"
        for o, problem in zip(workloads.owners, unscalable, strict=True) if problem]
    if problems:
        raise Failed("cannot stop what uses the PVC: " + "; ".join(problems))
    _, bad_owners = trusted.split_owners(status.pvc_owners or [], ns, run.extra_scale_kinds)
    _, bad_stops = trusted.split_stops(status.stopped or [], ns)
    if bad_owners or bad_stops:
        raise Failed("status holds records this controller did not write, so nothing more is touched: "
                     + "; ".join(bad_owners + bad_stops))
    recorded = list(status.pvc_owners or [])
    known = {(o.api_version, o.kind, o.name) for o in recorded}
    new = [o for o in workloads.owners if (o.api_version, o.kind, o.name) not in known]
    recorded_stops = list(status.stopped or [])
    known_stops = {s.key for s in recorded_stops}
    new_stops = [s for s in workloads.stops if s.key not in known_stops]
    new_notes = [n for n in workloads.notes if n not in (status.notes or [])]
    if status.pvc_owners is None or new or new_stops or new_notes:
        status.pvc_owners = recorded + new
        status.stopped = recorded_stops + new_stops
        status.notes = (status.notes or []) + new_notes
        await run.save()  # intent: replicas and original values to put back, written before anything is changed
        crashpoint("recorded-owners")
        for note in new_notes:
            await run.event("Autoscaler", note)

    # The lock names what is held; the admission guard (when installed) is switched on once nothing mounts the PVC
    # any more (before, Jobs the restore waits for may still need new pods).
    await guard.hold(run.kube, ns, pvc, run.r.uid, status.pvc_owners, on=False)

    source = await run.source()
    if not (source.get("spec") or {}).get("paused"):
        await run.kube.patch(k.REPLICATION_SOURCES, status.replication_source, ns, volsync.set_paused(source, True))

    for stop in sorted(status.stopped or [], key=stops.priority):
        await stops.apply(run.kube, stop, run.r.name)
        crashpoint(f"stopped:{stop.name}")
    for owner in status.pvc_owners:
        res = await run.kube.resource_for(owner.api_version, owner.kind)
        if res is None:
            raise Failed(f"{owner.kind} {owner.name} has no /scale subresource")
        try:
            await run.kube.set_scale(res, owner.name, ns, 0)
        except k.NotFound:
            # Deleted meanwhile: nothing left to stop (its pods go with it) or to scale back; say so once.
            note = f"{owner.ref} was deleted during the restore; it is not scaled back"
            if note not in (status.notes or []):
                status.notes = (status.notes or []) + [note]
                await run.save()
                await run.event("WorkloadDeleted", note, warning=True)
            continue
        crashpoint(f"scaled-down:{owner.name}")

    remaining, version = await plan.pods_mounting_versioned(run.kube, ns, pvc)
    if remaining:
        run.wake = wake.gone(k.PODS, ns, version, (p["metadata"]["name"] for p in remaining))
        if run.overdue(run.settings.scale_down_timeout):
            raise Failed(f"timed out after {run.settings.scale_down_timeout:g}s waiting for pods to stop: "
                         + ", ".join(sorted(p["metadata"]["name"] for p in remaining)))
        names = ", ".join(sorted(p["metadata"]["name"] for p in remaining))
        jobs = f" (running Jobs: {', '.join(workloads.jobs)})" if workloads.jobs else ""
        await run.wait(f"waiting for {len(remaining)} pod(s) that mount the PVC to stop: {names}{jobs}")
        return None
    await guard.hold(run.kube, ns, pvc, run.r.uid, status.pvc_owners, on=True)  # only the mover from now on
    return Phase.RESTORE


# -- Restore ------------------------------------------------------------------------------------------------------

async def restore(run: Run) -> Phase | None:
    status, ns = run.status, run.ns
    await check_pvc(run)
    if not await guard_pvc(run):
        return None
    if run.r.spec.safety_backup and not await safety_backup.take(run):
        return None
    if status.trigger is None or status.replication_destination is None:
        status.trigger = f"pvc-restore-{run.r.uid}"
        status.replication_destination = volsync.destination_name(run.r.name)
        await run.save()  # intent: the destination's name and the trigger that marks our sync

    destination = await run.kube.get_or_none(k.REPLICATION_DESTINATIONS, status.replication_destination, ns)
    if destination is None:
        source = await run.source()
        selector = run.selector
        if run.r.spec.safety_backup and not selector.restore_as_of:
            # The safety backup is now the newest snapshot: skip it, so "latest"/"previous N" keep their meaning.
            selector = Selector(previous=(selector.previous or 0) + 1)
        try:
            body = volsync.destination_manifest(
                source, restore_name=run.r.name, namespace=ns, pvc=run.r.spec.pvc, selector=selector,
                trigger=status.trigger, owner_reference=run.r.owner_reference(),
                cache_storage_class=run.settings.cache_storage_class)
        except volsync.VolsyncError as exc:
            raise Failed(str(exc)) from None
        try:
            destination = await run.kube.create(k.REPLICATION_DESTINATIONS, body, ns)
            crashpoint("created-destination")
        except k.AlreadyExists:
            return None  # created concurrently; read it next poll
        await run.event("DestinationCreated", f"created ReplicationDestination {status.replication_destination}")
    elif not run.owns(destination):
        status.replication_destination = None  # not ours: Finalize must not delete it
        raise Failed(f"ReplicationDestination {destination['metadata']['name']} already exists and does not "
                     "belong to this restore")

    started = volsync.sync_started(destination)
    if started and not status.mover_started:
        status.mover_started = started
        await run.save()  # from here on the PVC may hold partial data until the mover finishes
    result = volsync.outcome(destination, status.trigger)
    if result.done:
        status.restored_snapshot = result.snapshot
        if result.error:
            raise Failed(result.error, untouched=result.untouched)
        await check_pvc(run)  # the mover wrote into the volume the restore started on, not a replacement
        return Phase.FINALIZE
    await check_mover(run, destination=status.replication_destination)
    name = status.replication_destination
    # Look again as soon as volsync changes the destination (its status: the mover started, or finished).
    run.wake = wake.Wake(k.REPLICATION_DESTINATIONS, ns, destination["metadata"].get("resourceVersion") or "",
                         name=name)
    if not status.mover_started:
        if run.overdue(run.mover_start_limit(), since=destination["metadata"].get("creationTimestamp")):
            raise Failed(f"the volsync mover did not start within {run.mover_start_limit():g}s (ReplicationDestination "
                         f"{name}); nothing was written to the PVC", untouched=True)
        await run.wait(f"waiting for the volsync mover to start (ReplicationDestination {name})")
        return None
    if run.overdue(run.restore_limit(), since=status.mover_started):
        raise Failed(f"timed out after {run.restore_limit():g}s of restoring: the volsync mover "
                     f"(ReplicationDestination {name}) started at {status.mover_started} and has not finished")
    await run.wait(f"the volsync mover is restoring since {status.mover_started} (ReplicationDestination {name})")
    return None


async def guard_pvc(run: Run) -> bool:
    """No pod but the mover may mount the PVC during Restore: stop recorded workloads scaled back up meanwhile (a
    second writer), fail on anything unrecorded. True when the PVC is clear."""
    status, ns = run.status, run.ns
    pods = await guard.intruders(run.kube, ns, run.r.spec.pvc, destination=status.replication_destination,
                                 source=safety_backup.source_name(run) or status.replication_source)
    if not pods:
        return True
    owners, _ = trusted.split_owners(status.pvc_owners or [], ns, run.extra_scale_kinds)
    recorded_stops, _ = trusted.split_stops(status.stopped or [], ns)
    stopped, unknown = await guard.stop_again(run.kube, ns, pods, owners, recorded_stops, run.r.name)
    if unknown:
        raise Failed("pods that the restore did not stop mount the PVC during the restore: " + ", ".join(unknown))
    names = ", ".join(sorted(p["metadata"]["name"] for p in pods))
    if stopped:
        message = (f"{', '.join(stopped)} was scaled up during the restore (a second writer beside the mover); "
                   "scaled back to 0")
        log.warning(message, extra=run.fields())
        await run.event("SecondWriter", message, warning=True)
    await run.wait(f"waiting for pod(s) that mount the PVC beside the mover to stop: {names}")
    return False


# -- Finalize -----------------------------------------------------------------------------------------------------

async def finalize(run: Run) -> Phase | None:
    """Stop the mover, then undo everything, in an order that is safe to repeat; transient API errors retry on the
    next poll, so a restore never reaches Finished with a workload left scaled down - except on purpose, when the
    mover may have left partial data (``holding``)."""
    status, ns = run.status, run.ns
    owners, notes = trusted.split_owners(status.pvc_owners or [], ns, run.extra_scale_kinds)
    stopped, stop_notes = trusted.split_stops(status.stopped or [], ns)
    untrusted = [n for n in notes + stop_notes if n not in (status.notes or [])]
    if untrusted:
        status.notes = (status.notes or []) + untrusted
        await run.save()
        for note in untrusted:
            log.warning("Finalize: %s", note, extra=run.fields())
            await run.event("UntrustedStatus", note, warning=True)
    notes = []
    keep = holding.keeps_stopped(run.r)
    await safety_backup.delete_source(run)
    safety_source = safety_backup.source_name(run)
    if status.replication_destination:
        # Deleting the destination stops volsync (its mover Job goes with it). With copyMethod Direct the mover pod
        # mounts the PVC: give it time to stop before the workloads come back, but never wait forever for it.
        # Only the one this restore created (its ownerReference), whatever name status holds.
        destination = await run.kube.get_or_none(k.REPLICATION_DESTINATIONS, status.replication_destination, ns)
        if destination is not None and run.owns(destination):
            await run.kube.delete(k.REPLICATION_DESTINATIONS, status.replication_destination, ns,
                                  uid=destination["metadata"]["uid"])
        elif destination is not None:
            notes.append(f"ReplicationDestination {status.replication_destination} does not belong to this restore: "
                         "left alone")
    if status.replication_destination or safety_source:
        mounting, version = await plan.pods_mounting_versioned(run.kube, ns, run.r.spec.pvc)
        movers = [p["metadata"]["name"] for p in mounting
                  if volsync.is_mover_pod(p) or (safety_source and volsync.is_mover_pod(p, source=safety_source))]
        if movers and not run.overdue(run.settings.scale_down_timeout):
            run.wake = wake.gone(k.PODS, ns, version, movers)
            await run.wait(f"waiting for the volsync mover pod(s) to stop: {', '.join(sorted(movers))}")
            return None
    if keep:
        # Partial data: everything stays stopped, the source paused (a backup now would save partial data) and the
        # PVC locked with the guard on; only the source's own trigger is put back (it stays paused).
        notes += await put_back_source(run, keep_paused=True)
        status.message = ("the PVC holds partial data; the workloads are kept stopped. Next: "
                          + holding.next_steps(run.r))
        await run.event("DataIncomplete", status.message, warning=True)
        return Phase.FINISHED
    notes += await put_back(run, owners, stopped)
    if notes:
        status.message = "; ".join(notes)
    return Phase.FINISHED


async def put_back(run: Run, owners: list, stopped: list) -> list[str]:
    """Everything back as recorded: the guard off, the workloads at their replicas, every stop undone, the source as
    it was, the lock released. Returns notes on what no longer exists."""
    ns = run.ns
    notes: list[str] = []
    await guard.hold(run.kube, ns, run.r.spec.pvc, run.r.uid, owners, on=False)  # let the workloads come back
    for owner in owners:
        res = await run.kube.resource_for(owner.api_version, owner.kind)
        try:
            if res is None:
                raise k.NotFound(owner.ref)
            current = await run.kube.get_scale(res, owner.name, ns)
            if int((current.get("spec") or {}).get("replicas", 0)) != owner.replicas:
                await run.kube.set_scale(res, owner.name, ns, owner.replicas)
                k.progress()
                crashpoint(f"scaled-up:{owner.name}")
        except k.NotFound:
            notes.append(f"{owner.ref} no longer exists")
    for stop in sorted(stopped, key=stops.priority, reverse=True):
        if not await stops.undo(run.kube, stop):
            notes.append(f"{stop.kind} {stop.name} no longer exists")
        crashpoint(f"unstopped:{stop.name}")
    notes += await put_back_source(run, keep_paused=False)
    await release_lock(run)
    return notes


async def put_back_source(run: Run, *, keep_paused: bool) -> list[str]:
    """The ReplicationSource's own trigger (after a safety backup) and, unless ``keep_paused``, its paused value."""
    status, ns = run.status, run.ns
    notes: list[str] = []
    if not (status.replication_source and status.replication_source_paused is not None):
        return notes
    source = await run.kube.get_or_none(k.REPLICATION_SOURCES, status.replication_source, ns)
    if source is None:
        return [f"ReplicationSource {status.replication_source} no longer exists"]
    if (source.get("spec") or {}).get("sourcePVC") != run.r.spec.pvc:
        return [f"ReplicationSource {status.replication_source} does not back up PVC {run.r.spec.pvc}: left alone"]
    spec = source.get("spec") or {}
    patch: dict[str, Any] = {}
    notes += safety_backup.restore_legacy_trigger(run, spec, patch)
    paused = True if keep_paused else status.replication_source_paused
    if bool(spec.get("paused", False)) != paused:
        patch["paused"] = paused
    if patch:
        await run.kube.patch(k.REPLICATION_SOURCES, status.replication_source, ns, {
            "metadata": {"resourceVersion": source["metadata"]["resourceVersion"]}, "spec": patch})
        k.progress()
    return notes


async def release_lock(run: Run) -> None:
    name = locks.lock_name(run.r.spec.pvc)
    lock = await run.kube.get_or_none(k.CONFIGMAPS, name, run.ns)
    if lock is not None and locks.holder_of(lock)[1] == run.r.uid:
        # A Conflict (the lock changed since it was read, or an answer we cannot trust) propagates: the next attempt
        # reads the lock again and deletes it only if it is still ours.
        await run.kube.delete(k.CONFIGMAPS, name, run.ns, uid=lock["metadata"]["uid"])


Handler = Callable[[Run], Awaitable["Phase | None"]]

#: The workflow. Finished has no handler: it is terminal.
PHASES: dict[Phase, Handler] = {
    Phase.INITIALIZE: initialize,
    Phase.SCALE_DOWN: scale_down,
    Phase.RESTORE: restore,
    Phase.FINALIZE: finalize,
}

MESSAGES = {
    Phase.SCALE_DOWN: "lock acquired; scaling down the workloads that mount the PVC",
    Phase.RESTORE: "no pod mounts the PVC; restoring with volsync",
    Phase.FINALIZE: "restore complete; scaling workloads back",
    Phase.FINISHED: "finished",
}

#: API errors that will not go away by retrying: they fail the restore (outside Finalize, which always retries).
PERMANENT = (k.Forbidden, k.Invalid)


async def reconcile(run: Run) -> None:
    """Advance one PVCRestore as far as it can go without waiting."""
    for _ in range(len(PHASES) + 2):
        phase = run.r.phase
        if phase == Phase.FINISHED:
            if run.r.holding:
                # Holding the PVC after partial data: it keeps its finalizer (so deleting it, e.g. `cancel`, leaves it
                # Terminating, still holding) until scale-back is asked for or a later restore takes it over.
                if SCALE_BACK_ANNOTATION not in run.r.annotations:
                    return
                await holding.release(run, put_back)
            if FINALIZER in run.r.finalizers:
                try:
                    await run.set_finalizers([f for f in run.r.finalizers if f != FINALIZER])
                except k.NotFound:
                    pass  # being deleted, and gone with our finalizer: a copy of the patch applied before its error
            return
        if run.status.phase is None:
            await enter(run, Phase.INITIALIZE, "starting")
        if run.r.deletion_timestamp and phase != Phase.FINALIZE:
            await fail(run, "the PVCRestore was deleted before it finished")
            continue
        run.wake = None  # only what the handler that returns last waits for
        try:
            next_phase = await PHASES[phase](run)
        except Failed as exc:
            await fail(run, str(exc), untouched=exc.untouched)
            continue
        except PERMANENT as exc:
            if phase == Phase.FINALIZE:
                raise
            if isinstance(exc, k.Forbidden) and not run.refused_for_long():
                raise  # retried with back-off until it has lasted forbidden_grace
            await fail(run, str(exc))
            continue
        if next_phase is None:
            return
        if next_phase == Phase.FINISHED and run.status.error:
            message = (run.status.message or "" if holding.keeps_stopped(run.r)
                       else "finished with an error; workloads scaled back")
        else:
            message = MESSAGES[next_phase]
        await enter(run, next_phase, message)
