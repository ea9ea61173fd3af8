"""volsync mapping: a PVC's ReplicationSource -> the ReplicationDestination that restores into it, and reading
the outcome of the mover from the destination's status. Pure functions over plain dicts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
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
_SELECTED = re.compile(r"Selected restic snapshot with id: (\S+)")


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


def outcome(destination: dict[str, Any], trigger: str) -> MoverOutcome:
    """Completion is ``status.lastManualSync == trigger``; then ``latestMoverStatus.result`` decides, except that a
    ``Successful`` restic sync whose log says no snapshot was eligible restored nothing and is a failure."""
    status = destination.get("status") or {}
    if status.get("lastManualSync") != trigger:
        return MoverOutcome(done=False)
    mover = status.get("latestMoverStatus") or {}
    result, logs = mover.get("result"), mover.get("logs") or ""
    selected = _SELECTED.search(logs)
    snapshot = selected.group(1) if selected else None
    if result == "Failed":
        return MoverOutcome(True, f"the volsync mover failed:\n{log_tail(logs)}", snapshot, logs)
    if result != "Successful":
        return MoverOutcome(True, f"the volsync mover finished with unknown result {result!r}", snapshot, logs)
    if any(marker in logs for marker in NO_SNAPSHOT_MARKERS):
        return MoverOutcome(True, "no snapshot matched the selector; nothing was restored (the PVC is unchanged "
                            f"by the mover):\n{log_tail(logs)}", None, logs, untouched=True)
    return MoverOutcome(True, None, snapshot, logs)


def sync_started(destination: dict[str, Any]) -> str | None:
    """When volsync started a sync of this destination (``status.lastSyncStartTime``, set as the sync begins, before
    the mover Job runs), or None: from then on the mover may write the PVC."""
    return (destination.get("status") or {}).get("lastSyncStartTime") or None


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
