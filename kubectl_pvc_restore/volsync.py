"""volsync mapping: a PVC's ReplicationSource -> the ReplicationDestination that restores into it, and reading
the outcome of the mover from the destination's status. Pure functions over plain dicts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import zlib
from typing import Any

from .model import MANAGED_BY, MANAGED_BY_LABEL, RESTORE_LABEL
from .selector import Selector

GROUP = "volsync.backube"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

#: Mover sections of a ReplicationSource, in volsync's order.
MOVERS = ("restic", "rclone", "rsync", "rsyncTLS", "syncthing", "external")
#: Fields shared by every mover section (volsync's MoverConfig, inlined).
MOVER_CONFIG = ("moverSecurityContext", "moverServiceAccount", "moverPodLabels", "moverResources",
                "moverAffinity", "moverVolumes")
#: What a restore copies from each mover's source section, beyond MOVER_CONFIG.
COPIED = {
    "restic": ("repository", "customCA", "cacheCapacity", "cacheAccessModes", "cacheStorageClassName"),
    "rclone": ("rcloneConfigSection", "rcloneDestPath", "rcloneConfig", "customCA"),
}
#: Movers whose destination can pick an older snapshot.
SELECTS_SNAPSHOTS = {"restic"}

NO_SNAPSHOT_MARKERS = ("No eligible snapshots found", "=== No data will be restored ===")
#: entry.sh's own line, dropped by volsync's log filter (internal/controller/mover/restic/logfilter.go) ...
_SELECTED = re.compile(r"Selected restic snapshot with id: ([0-9a-f]+)")
#: ... and restic's, which the filter keeps: ``restoring snapshot 1a2b3c4d of [/data] at ... by root@volsync to .``
#: (restic >= 0.17; older releases printed ``restoring <Snapshot 1a2b3c4d of ...>``).
_RESTORING = re.compile(r"^\s*restoring <?[sS]napshot ([0-9a-f]{8,64}) of ", re.MULTILINE)
#: entry.sh's first line: a log that has it is complete from the start.
_MOVER_STARTED = "Starting container"
#: volsync's mover Jobs are named ``volsync-<mover>-<owner>`` up to this length; longer owner names are replaced by
#: their CRC-32 (internal/controller/utils/utils.go, GetJobName).
_JOB_NAME_MAX = 63
_ANY_DESTINATION_JOB = re.compile(r"volsync-(rclone-)?dst-.+")


class VolsyncError(Exception):
    """A ReplicationSource that cannot be turned into a restore; the message is for the user."""


def mover_of(source: dict[str, Any]) -> str:
    spec = source.get("spec") or {}
    movers = [m for m in MOVERS if spec.get(m) is not None]
    name = (source.get("metadata") or {}).get("name", "?")
    if not movers:
        raise VolsyncError(f"ReplicationSource {name} has no mover section ({', '.join(MOVERS)})")
    return movers[0]


def check_restorable(source: dict[str, Any], selector: Selector) -> str:
    """The mover to restore with, or VolsyncError saying why this source cannot restore with this selector."""
    mover = mover_of(source)
    name = source["metadata"]["name"]
    if mover not in COPIED:
        raise VolsyncError(
            f"ReplicationSource {name} uses the {mover} mover, which replicates to a remote destination "
            "instead of keeping restorable backups; pvc-restore can restore from restic and rclone sources"
        )
    if mover not in SELECTS_SNAPSHOTS and not selector.is_latest:
        raise VolsyncError(
            f"ReplicationSource {name} uses the {mover} mover, which keeps only the latest copy: "
            f"cannot restore {selector.describe()}; restore the latest instead"
        )
    return mover


def sources_for_pvc(sources: list[dict[str, Any]], pvc: str) -> list[dict[str, Any]]:
    return [s for s in sources if (s.get("spec") or {}).get("sourcePVC") == pvc]


def destination_name(restore_name: str) -> str:
    name = f"pvc-restore-{restore_name}"
    return name if len(name) <= 253 else name[:253].rstrip("-.")


def destination_manifest(
    source: dict[str, Any],
    *,
    restore_name: str,
    namespace: str,
    pvc: str,
    selector: Selector,
    trigger: str,
    owner_reference: dict[str, Any] | None = None,
    cache_storage_class: str | None = None,
) -> dict[str, Any]:
    """The ReplicationDestination that restores ``source``'s backup into ``pvc`` (copyMethod Direct)."""
    mover = check_restorable(source, selector)
    src = source["spec"][mover]
    section: dict[str, Any] = {k: src[k] for k in MOVER_CONFIG + COPIED[mover] if src.get(k) is not None}
    section["copyMethod"] = "Direct"
    section["destinationPVC"] = pvc
    if mover == "restic":
        section["enableFileDeletion"] = True
        if selector.previous:
            section["previous"] = selector.previous
        if selector.restore_as_of:
            section["restoreAsOf"] = selector.restore_as_of
        if cache_storage_class:
            section["cacheStorageClassName"] = cache_storage_class
    metadata: dict[str, Any] = {
        "name": destination_name(restore_name),
        "namespace": namespace,
        "labels": {MANAGED_BY_LABEL: MANAGED_BY, RESTORE_LABEL: restore_name[:63].rstrip("-.")},
    }
    if owner_reference:
        metadata["ownerReferences"] = [owner_reference]
    return {
        "apiVersion": API_VERSION,
        "kind": "ReplicationDestination",
        "metadata": metadata,
        "spec": {"trigger": {"manual": trigger}, mover: section},
    }


#: ``restic forget --keep-within 1000y``: a retain policy that forgets nothing. volsync runs ``restic forget`` with the
#: source's policy after every backup, over every snapshot of the repository (host "volsync", path /data), and with no
#: ``retain`` at all that is ``--keep-last 1``: a safety backup taken through the user's own source could forget the
#: very snapshot the restore is about to restore. The safety backup is taken through a source of its own with this.
KEEP_EVERYTHING = {"within": "1000y"}


def forget_options(source: dict[str, Any]) -> str:
    """The ``restic forget`` options volsync runs after each backup of a restic source (generateForgetOptions in
    internal/controller/mover/restic/mover.go)."""
    retain = ((source.get("spec") or {}).get("restic") or {}).get("retain")
    if retain is None:
        return "--keep-last 1"
    options = [f"--keep-{period} {retain[key]}" for period, key in
               (("hourly", "hourly"), ("daily", "daily"), ("weekly", "weekly"), ("monthly", "monthly"),
                ("yearly", "yearly")) if retain.get(key) is not None]
    if retain.get("within") is not None:
        options.append(f"--keep-within {retain['within']}")
    if retain.get("last") is not None:
        options.append(f"--keep-last {retain['last']}")
    return " ".join(options) or "--keep-last 1"


def safety_source_name(restore_name: str) -> str:
    name = f"pvc-restore-safety-{restore_name}"
    return name if len(name) <= 253 else name[:253].rstrip("-.")


def safety_source_manifest(source: dict[str, Any], *, restore_name: str, namespace: str, trigger: str,
                           owner_reference: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ReplicationSource of the restore's own that backs the PVC up once, like ``source`` (same repository, mover
    settings and cache), with a retain policy that forgets nothing (``KEEP_EVERYTHING``)."""
    mover = mover_of(source)
    name = source["metadata"]["name"]
    if mover not in SELECTS_SNAPSHOTS:
        raise VolsyncError(f"ReplicationSource {name} uses the {mover} mover, which keeps only the latest copy: a "
                           "safety backup would replace the backup the restore is about to restore")
    src = source["spec"][mover]
    section: dict[str, Any] = {k: src[k] for k in MOVER_CONFIG + COPIED[mover] if src.get(k) is not None}
    section.update(copyMethod="Direct", retain=dict(KEEP_EVERYTHING))
    metadata: dict[str, Any] = {
        "name": safety_source_name(restore_name), "namespace": namespace,
        "labels": {MANAGED_BY_LABEL: MANAGED_BY, RESTORE_LABEL: restore_name[:63].rstrip("-.")},
    }
    if owner_reference:
        metadata["ownerReferences"] = [owner_reference]
    return {"apiVersion": API_VERSION, "kind": "ReplicationSource", "metadata": metadata,
            "spec": {"sourcePVC": source["spec"]["sourcePVC"], "trigger": {"manual": trigger}, mover: section}}


@dataclasses.dataclass(frozen=True)
class MoverOutcome:
    """What a ReplicationDestination's status says about the manual sync ``trigger``."""

    done: bool
    error: str | None = None
    snapshot: str | None = None
    logs: str = ""
    #: The mover wrote nothing (no eligible snapshot): a failure that leaves the PVC as it was.
    untouched: bool = False


def log_tail(logs: str, lines: int = 10) -> str:
    return "\n".join((logs or "").strip().splitlines()[-lines:])


def restored_snapshot(logs: str) -> str | None:
    """The (short) id of the snapshot a restic mover restored, from its log: restic's ``restoring snapshot <id>``
    line (kept in ``latestMoverStatus.logs``) or entry.sh's ``Selected restic snapshot with id:`` (full logs)."""
    found = _SELECTED.search(logs or "") or _RESTORING.search(logs or "")
    return found.group(1) if found else None


def restore_began(logs: str | None) -> bool:
    """May the mover have written the PVC, judging by its complete log? Only a log that starts with entry.sh's first
    line and never reaches the restore (no snapshot selected, restic never said ``restoring``) proves it did not:
    e.g. a wrong password or an unreachable repository. No log (unreadable, or a mover that is not restic's): it may
    have."""
    if not logs or _MOVER_STARTED not in logs:
        return True
    return bool(_SELECTED.search(logs) or _RESTORING.search(logs))


def outcome(destination: dict[str, Any], trigger: str) -> MoverOutcome:
    """Completion is ``status.lastManualSync == trigger``; then ``latestMoverStatus.result`` decides, except that a
    ``Successful`` restic sync whose log says no snapshot was eligible restored nothing and is a failure. volsync
    never sets ``lastManualSync`` on failure: when its Job has failed ``backoffLimit`` (8) times it sets
    ``latestMoverStatus.result: Failed`` (with the whole log of the last attempt) and tries again; a destination made
    for one restore has no other sync, so that is this sync's failure."""
    status = destination.get("status") or {}
    if status.get("lastManualSync") != trigger:
        mover = status.get("latestMoverStatus") or {}
        if mover.get("result") == "Failed":
            logs = mover.get("logs") or ""
            return MoverOutcome(True, f"the volsync mover failed {JOB_BACKOFF_LIMIT} times:\n{log_tail(logs)}",
                                restored_snapshot(logs), logs, untouched=not restore_began(logs))
        return MoverOutcome(done=False)
    mover = status.get("latestMoverStatus") or {}
    result, logs = mover.get("result"), mover.get("logs") or ""
    snapshot = restored_snapshot(logs)
    if result == "Failed":
        return MoverOutcome(True, f"the volsync mover failed:\n{log_tail(logs)}", snapshot, logs)
    if result != "Successful":
        return MoverOutcome(True, f"the volsync mover finished with unknown result {result!r}", snapshot, logs)
    if any(marker in logs for marker in NO_SNAPSHOT_MARKERS):
        return MoverOutcome(True, "no snapshot matched the selector; nothing was restored (the PVC is unchanged "
                            f"by the mover):\n{log_tail(logs)}", None, logs, untouched=True)
    return MoverOutcome(True, None, snapshot, logs)


#: volsync's mover Jobs' backoffLimit (internal/controller/mover/restic/mover.go).
JOB_BACKOFF_LIMIT = 8


def mover_job_names(role: str, owner: str) -> set[str]:
    """The names volsync gives the mover Job of the destination (``role="dst"``) or source (``"src"``) ``owner``:
    ``volsync-<role>-<owner>`` (restic) and ``volsync-rclone-<role>-<owner>`` (rclone), with the owner's name replaced
    by its CRC-32 in hex when that would pass 63 characters."""
    names = set()
    for prefix in (f"volsync-{role}-", f"volsync-rclone-{role}-"):
        name = prefix + owner
        names.add(name if len(name) <= _JOB_NAME_MAX else f"{prefix}{zlib.crc32(owner.encode()):08x}")
    return names


def mover_pod_selector(*, destination: str | None = None, source: str | None = None) -> str:
    """A label selector for the pods of the mover Job of ``destination`` (or of ``source``): Kubernetes labels a Job's
    pods with ``batch.kubernetes.io/job-name``."""
    names = mover_job_names("dst", destination) if destination else mover_job_names("src", source or "")
    return f"batch.kubernetes.io/job-name in ({','.join(sorted(names))})"


def _job_of(pod: dict[str, Any]) -> str | None:
    return next((ref.get("name") for ref in (pod.get("metadata") or {}).get("ownerReferences") or []
                 if ref.get("kind") == "Job" and ref.get("apiVersion", "batch/v1") == "batch/v1"), None)


def is_mover_pod(pod: dict[str, Any], *, destination: str | None = None, source: str | None = None) -> bool:
    """A pod of a volsync mover Job: of the destination ``destination`` (a restore's) or the source ``source`` (its
    safety backup) when they are given, of any destination otherwise."""
    job = _job_of(pod)
    if job is None:
        return False
    if destination is None and source is None:
        return bool(_ANY_DESTINATION_JOB.fullmatch(job))
    return bool((destination and job in mover_job_names("dst", destination))
                or (source and job in mover_job_names("src", source)))


def failed_mover(pods: list[dict[str, Any]], *, destination: str | None = None, source: str | None = None
                 ) -> tuple[dict[str, Any], str] | None:
    """The first mover pod (of ``destination`` or ``source``) whose container ended in failure, with how it ended
    (``exit code 3``). volsync would let the Job retry up to 8 times over about 20 minutes before it says so; one
    failed attempt is reason enough for a restore to stop."""
    for pod in sorted(pods, key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"])):
        if not is_mover_pod(pod, destination=destination, source=source):
            continue
        status = pod.get("status") or {}
        for container in status.get("containerStatuses") or []:
            ended = (container.get("state") or {}).get("terminated") or {}
            if ended and ended.get("exitCode", 0) != 0:
                return pod, f"exit code {ended['exitCode']}" + (f", {ended['reason']}" if ended.get("reason") else "")
        if status.get("phase") == "Failed":
            return pod, status.get("reason") or "failed"
    return None


def sync_started(destination: dict[str, Any]) -> str | None:
    """When volsync started a sync of this destination (``status.lastSyncStartTime``, set as the sync begins, before
    the mover Job runs), or None: from then on the mover may write the PVC."""
    return (destination.get("status") or {}).get("lastSyncStartTime") or None


_SAVED = re.compile(r"snapshot (\S+) saved")


def saved_snapshot(logs: str) -> str | None:
    """The id of the snapshot a restic backup saved, from its log (``snapshot <id> saved``); None when it saved none
    (entry.sh: "Directory is empty skipping backup") or the log does not say."""
    found = _SAVED.search(logs or "")
    return found.group(1) if found else None


def original_trigger(recorded: str | None) -> dict[str, Any] | None:
    """A source's trigger as recorded (JSON) before a manual sync changed it; None when the record is unusable."""
    try:
        original = json.loads(recorded or "")
    except (TypeError, ValueError):
        return None
    return original if isinstance(original, dict) else None


def trigger_restore(spec: dict[str, Any], original: dict[str, Any]) -> dict[str, Any] | None:
    """The spec.trigger of a merge patch that puts a source's trigger back to ``original`` (keys it did not have,
    such as the manual trigger, removed); None when it already is."""
    current = spec.get("trigger") or {}
    if current == original:
        return None
    return {**{key: None for key in current}, **original}


def set_paused(source: dict[str, Any], paused: bool) -> dict[str, Any]:
    """A merge patch that sets spec.paused, guarded by the source's resourceVersion."""
    return {"metadata": {"resourceVersion": source["metadata"]["resourceVersion"]}, "spec": {"paused": paused}}


def select_restic_snapshot(snapshots: list[dict[str, str]], *, previous: int | None, restore_as_of: str | None
                           ) -> dict[str, str] | None:
    """Which of ``[{"id", "time"}, ...]`` volsync's restic mover restores (mover-restic/entry.sh): snapshots newest
    first at one-second precision; with ``restore_as_of`` start at the newest at or before it, else at the newest;
    then skip ``previous`` more. None when that runs past the oldest ("No eligible snapshots found")."""
    from .model import parse_time

    def second(s: dict[str, str]) -> dt.datetime:
        return parse_time(s["time"]).astimezone(dt.timezone.utc).replace(microsecond=0)

    ordered = sorted(snapshots, key=second, reverse=True)
    start = 0
    if restore_as_of:
        limit = parse_time(restore_as_of).astimezone(dt.timezone.utc).replace(microsecond=0)
        start = next((i for i, s in enumerate(ordered) if second(s) <= limit), len(ordered))
    index = start + (previous or 0)
    return ordered[index] if index < len(ordered) else None
