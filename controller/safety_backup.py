"""spec.safetyBackup: before the restore overwrites the PVC, its current data is backed up, so that ``kubectl
pvc-restore undo`` can put it back.

The backup goes through a ReplicationSource of the restore's own (owned by it, deleted when the backup is done) that
copies the PVC's source but forgets nothing afterwards (``volsync.KEEP_EVERYTHING``). Restores of earlier versions
took it through the PVC's own source, recording that source's trigger to put back (``restore_legacy_trigger``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import volsync
from kubectl_pvc_restore.model import SafetyBackup, format_time, now

from .faults import crashpoint
from .movers import check_mover
from .run import Failed, Run


async def take(run: Run) -> bool:
    """Take the safety backup (one step per poll); True once it completed."""
    status, ns = run.status, run.ns
    backup = status.safety_backup
    if backup and backup.completed_at:
        return True
    source = await run.source()
    if backup is None:
        backup = SafetyBackup(trigger=f"pvc-restore-safety-{run.r.uid}", source=volsync.safety_source_name(run.r.name))
        status.safety_backup = backup
        await run.save()  # intent: the source to delete in Finalize
        crashpoint("recorded-safety-backup")
    name = backup.source or volsync.safety_source_name(run.r.name)
    own = await run.kube.get_or_none(k.REPLICATION_SOURCES, name, ns)
    if own is None:
        try:
            body = volsync.safety_source_manifest(source, restore_name=run.r.name, namespace=ns,
                                                  trigger=backup.trigger or "", owner_reference=run.r.owner_reference())
        except volsync.VolsyncError as exc:
            raise Failed(str(exc)) from None
        try:
            await run.kube.create(k.REPLICATION_SOURCES, body, ns)
        except k.AlreadyExists:
            pass
        await run.wait(f"taking the safety backup first (ReplicationSource {name})")
        return False
    if not run.owns(own):
        raise Failed(f"ReplicationSource {name} already exists and does not belong to this restore")
    own_status = own.get("status") or {}
    if own_status.get("lastManualSync") == backup.trigger:
        mover = own_status.get("latestMoverStatus") or {}
        logs = mover.get("logs") or ""
        if mover.get("result") != "Successful":
            raise Failed("the safety backup failed, so nothing was restored:\n" + volsync.log_tail(logs))
        saved = volsync.saved_snapshot(logs)
        if saved is None:
            raise Failed("the safety backup saved no snapshot (the PVC is empty, or the backup's log does not say "
                         "which snapshot it saved), so there would be nothing to undo to; nothing was restored. "
                         "Start the restore without a safety backup:\n" + volsync.log_tail(logs))
        status.safety_backup = dataclasses.replace(
            backup, source=name, completed_at=own_status.get("lastSyncTime") or format_time(now()), snapshot=saved)
        await run.save()
        await delete_source(run)
        await run.event("SafetyBackup", f"backed up the current data first (snapshot {saved}); undo with: "
                                        f"kubectl pvc-restore undo {run.r.name} -n {ns} (until ReplicationSource "
                                        f"{status.replication_source}'s next backup, which runs restic forget "
                                        f"{volsync.forget_options(source)})")
        return True
    await check_mover(run, source=name, what="the safety backup failed, so nothing was restored")
    if run.overdue(run.restore_limit()):
        raise Failed(f"timed out after {run.restore_limit():g}s waiting for the safety backup "
                     f"(ReplicationSource {name}); nothing was restored")
    await run.wait(f"taking the safety backup first (ReplicationSource {name})")
    return False


def source_name(run: Run) -> str | None:
    """The restore's own ReplicationSource of the safety backup, if it has one."""
    return run.status.safety_backup.source if run.status.safety_backup else None


async def delete_source(run: Run) -> None:
    """The restore's own ReplicationSource of the safety backup, if it still exists (volsync deletes its Job and
    cache with it)."""
    name = source_name(run)
    if not name:
        return
    own = await run.kube.get_or_none(k.REPLICATION_SOURCES, name, run.ns)
    if own is not None and run.owns(own):
        try:
            await run.kube.delete(k.REPLICATION_SOURCES, name, run.ns, uid=own["metadata"]["uid"])
        except k.NotFound:
            pass


def restore_legacy_trigger(run: Run, spec: dict[str, Any], patch: dict[str, Any]) -> list[str]:
    """Restores of earlier versions took the safety backup through the PVC's own source: add putting its recorded
    trigger back to ``patch`` (a merge patch of the source's spec). Returns notes."""
    backup = run.status.safety_backup
    if not (backup and backup.legacy):
        return []
    original = volsync.original_trigger(backup.original_trigger)
    if original is None:
        return ["status.safetyBackup.originalTrigger is not a recorded trigger: the source's trigger was left as it is"]
    trigger = volsync.trigger_restore(spec, original)
    if trigger is not None:
        patch["trigger"] = trigger
    return []
