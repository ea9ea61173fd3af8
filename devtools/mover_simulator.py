"""A volsync mover simulator, acting as volsync does at the API level (no container runtime exists here).

For every ReplicationDestination whose ``spec.trigger.manual`` differs from ``status.lastManualSync`` (and that is not
paused) it starts a "sync": it sets ``lastSyncStartTime`` and a ``Synchronizing`` condition, and after a delay sets
``lastManualSync``, ``lastSyncTime``, ``lastSyncDuration``, ``latestMoverStatus`` (``Successful`` or ``Failed``, with
logs) and the condition, exactly the fields volsync sets.

Snapshot history and behaviour come from a ConfigMap ``volsync-mover-simulator`` in the destination's namespace:

* ``snapshots``: JSON ``{"<restic repository secret>": [{"id": "...", "time": "<RFC3339>"}, ...]}``;
* ``behaviour``: JSON ``{"result": "Successful" | "Failed" | "Hang" | "NotRunning", "delaySeconds": 1.0}``,
  optionally with ``"pvcs": {"<destination PVC>": {...}}`` overriding it for one PVC. ``Hang``: the sync starts and
  never ends; ``NotRunning``: as when volsync's manager is not running, nothing happens at all (no status).

A restic destination picks its snapshot as volsync's mover-restic/entry.sh does: snapshots newest first at one-second
precision; with ``restoreAsOf`` start at the newest at or before that time, else at the newest; then skip
``previous`` more. Past the oldest it logs ``No eligible snapshots found`` and ``=== No data will be restored ===`` and
still ends ``Successful``.

Like volsync, it keeps in ``latestMoverStatus.logs`` only the lines volsync's restic log filter keeps (so
``Selected restic snapshot with id:`` is dropped; restic's ``restoring snapshot <id> of [/data] ...`` stays), and on
failure it never sets ``lastManualSync``: it reports ``latestMoverStatus.result: Failed`` with the whole log of the
failed attempt (as volsync does once its Job has failed 8 times) and starts the sync again. A ``Failed`` sync fails
while restoring (partial data), or, when no snapshot is eligible, before listing snapshots.

A restic ReplicationSource whose ``spec.trigger.manual`` differs from ``status.lastManualSync`` (and is not paused)
gets a backup: a new snapshot, taken now, is added to the repository's history, then ``restic forget`` runs with the
source's retain policy as volsync's does (no retain: keep the last snapshot only), and the source's status is set as
volsync sets it (``lastManualSync``, ``lastSyncTime``, ``latestMoverStatus`` with ``snapshot <id> saved``).

It shares no code with the product: its snapshot selection is its own copy of entry.sh's rule.

Each completed sync is recorded in the ConfigMap ``volsync-mover-simulator-record`` (key ``<destination name>``:
JSON with the chosen snapshot and the pods that still mounted the destination PVC when the mover started), so tests
can assert what was restored and that no workload was running during the restore.

    python -m devtools.mover_simulator [--kubeconfig F] [--interval 0.2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import re
import sys
import threading
from typing import Any

from devtools.kubeapi import Api, ApiError


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def format_time(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

CONFIG = "volsync-mover-simulator"
RECORD = "volsync-mover-simulator-record"
log = logging.getLogger("mover-simulator")


#: volsync's filter for a successful restic mover's log (internal/controller/mover/restic/logfilter.go, v0.14.0):
#: only matching lines reach ``status.latestMoverStatus.logs``. A failed Job's log is kept whole.
LOG_FILTER = re.compile(
    r"^\s*([pP]rocessed)\s.+([fF]iles)|^\s*([sS]napshot)\s.+([sS]aved)|^\s*(No eligible)|(No data)|"
    r"(Directory is empty)|^\s*([cC]reated)|^\s*([rR]epository)\s.+([oO]pened)|^\s*([rR]estoring)|"
    r"^\s*([nN]o parent snapshot)|^\s*([uU]sing parent snapshot)|^\s*([aA]dded to the repository)|"
    r"^\s*([sS]uccessfully)|(RESTORE_OPTIONS)|([iI]nitialize [dD]ir)|^\s*([fF]atal)|^\s*(ERROR)|"
    r"^\s*([rR]estic completed in)")
#: volsync keeps the last MOVER_LOG_MAX_BYTES (default 1024) bytes of the filtered log.
LOG_MAX_BYTES = 1024


def _utc(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)


def entry_sh_select(snapshots: list[dict[str, str]], previous: int | None, restore_as_of: str | None
                    ) -> dict[str, str] | None:
    """mover-restic/entry.sh's select_restic_snapshot_to_restore, step by step: restic lists snapshots oldest first;
    each becomes an epoch second mapped to its id (a later snapshot of the same second replaces the earlier one in
    the map but both epochs stay in the list); the list is reversed; with RESTORE_AS_OF the offset moves to the first
    epoch at or before it; SELECT_PREVIOUS is added; past the end there is no snapshot."""
    listed = sorted(snapshots, key=lambda s: _utc(s["time"]))
    epochs = [int(_utc(s["time"]).timestamp()) for s in listed]
    by_epoch = {int(_utc(s["time"]).timestamp()): s for s in listed}
    epochs.reverse()
    offset = 0
    if restore_as_of:
        target = int(_utc(restore_as_of).timestamp())
        while offset < len(epochs) and epochs[offset] > target:
            offset += 1
    offset += int(previous or 0)
    return by_epoch[epochs[offset]] if offset < len(epochs) else None


_BUCKETS = {"hourly": "%Y-%m-%d %H", "daily": "%Y-%m-%d", "weekly": "%G-%V", "monthly": "%Y-%m", "yearly": "%Y"}


def restic_forget(snapshots: list[dict[str, str]], retain: dict[str, Any] | None) -> list[dict[str, str]]:
    """What ``restic forget`` keeps after a backup, with the options volsync makes of the source's ``retain``
    (no retain, or an empty one: ``--keep-last 1``): newest first, ``last`` N snapshots, one per hour/day/week/month/
    year for the N newest such periods, and all within ``within`` (``1y2m3d4h``) of the newest."""
    retain = {key: value for key, value in (retain or {}).items() if value is not None}
    if not retain:
        retain = {"last": 1}
    ordered = sorted(snapshots, key=lambda s: _utc(s["time"]), reverse=True)
    keep: set[int] = set()
    if "last" in retain:
        keep |= set(range(min(int(retain["last"]), len(ordered))))
    for period, fmt in _BUCKETS.items():
        if period in retain:
            seen: list[str] = []
            for i, snap in enumerate(ordered):
                bucket = _utc(snap["time"]).strftime(fmt)
                if bucket not in seen and len(seen) < int(retain[period]):
                    seen.append(bucket)
                    keep.add(i)
    if "within" in retain and ordered:
        parts = dict((unit, int(n)) for n, unit in re.findall(r"(\d+)([ymdh])", str(retain["within"])))
        newest = _utc(ordered[0]["time"])
        days = parts.get("y", 0) * 365 + parts.get("m", 0) * 31 + parts.get("d", 0)
        limit = newest - dt.timedelta(days=days, hours=parts.get("h", 0))
        keep |= {i for i, snap in enumerate(ordered) if _utc(snap["time"]) > limit}
    return [snap for i, snap in enumerate(ordered) if i in keep][::-1]


def filtered(logs: str) -> str:
    kept = "".join(line + "\n" for line in logs.splitlines() if LOG_FILTER.search(line))
    return kept.encode()[-LOG_MAX_BYTES:].decode(errors="ignore")


def mover_logs(section: str, spec: dict[str, Any], snapshots: list[dict[str, str]]) -> tuple[str, str | None]:
    """The mover's whole log (as entry.sh and restic print it) and the chosen snapshot's id."""
    if section != "restic":
        return f"Restoring with {section}...\nTransfer complete.\n", None
    chosen = entry_sh_select(snapshots, spec.get("previous"), spec.get("restoreAsOf"))
    lines = ["Starting container", "VolSync restic container version: simulator", "restore",
             "=== Check for dir initialized ===", "dir is initialized", "=== Starting restore ==="]
    if chosen is None:
        lines += ["No eligible snapshots found", "=== No data will be restored ==="]
    else:
        when = _utc(chosen["time"]).strftime("%Y-%m-%d %H:%M:%S.%f +0000 UTC")
        lines += ["RESTORE_OPTIONS: --delete", f"Selected restic snapshot with id: {chosen['id']}",
                  f"restoring snapshot {chosen['id'][:8]} of [/data] at {when} by root@volsync to .",
                  "Summary: Restored 3 files/dirs (12 B) in 0:00"]
    lines += ["Restic completed in 1s", "=== Done ==="]
    return "\n".join(lines) + "\n", (chosen or {}).get("id")


def _condition(reason: str, message: str, status: str = "True") -> dict[str, Any]:
    return {"type": "Synchronizing", "status": status, "reason": reason, "message": message,
            "lastTransitionTime": format_time(now())}


class MoverSimulator:
    def __init__(self, api: Api, *, interval: float = 0.2, namespace: str | None = None) -> None:
        self.api = api
        self.interval = interval
        self.namespace = namespace
        self.started: dict[tuple[str, str], dt.datetime] = {}
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def config(self, namespace: str) -> tuple[dict[str, Any], dict[str, Any]]:
        cm = self.api.get(_path("configmaps", namespace, CONFIG))
        data = (cm or {}).get("data") or {}
        return json.loads(data.get("snapshots") or "{}"), json.loads(data.get("behaviour") or "{}")

    def pods_mounting(self, namespace: str, pvc: str) -> list[str]:
        pods = self.api.list(_path("pods", namespace))
        return sorted(
            p["metadata"]["name"] for p in pods
            if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")
            and any((v.get("persistentVolumeClaim") or {}).get("claimName") == pvc
                    for v in p.get("spec", {}).get("volumes") or [])
        )

    def record(self, namespace: str, name: str, entry: dict[str, Any]) -> None:
        patch = {"data": {name: json.dumps(entry)}}
        if self.api.patch(_path("configmaps", namespace, RECORD), patch) is None:
            body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": RECORD, "namespace": namespace}}
            self.api.create(_path("configmaps", namespace), body)
            self.api.patch(_path("configmaps", namespace, RECORD), patch)

    def step(self, rd: dict[str, Any]) -> None:
        meta, spec, status = rd["metadata"], rd.get("spec") or {}, rd.get("status") or {}
        trigger = (spec.get("trigger") or {}).get("manual")
        if not trigger or trigger == status.get("lastManualSync") or spec.get("paused"):
            return
        ns, name = meta["namespace"], meta["name"]
        key = (meta["uid"], trigger)
        section = next((m for m in ("restic", "rclone", "rsync", "rsyncTLS", "external") if spec.get(m)), None)
        if section is None:
            return
        mover_spec = spec[section]
        snapshots, behaviour = self.config(ns)
        behaviour = {**behaviour, **(behaviour.get("pvcs") or {}).get(mover_spec.get("destinationPVC"), {})}
        if behaviour.get("result") == "NotRunning":
            return
        if key not in self.started:
            self.started[key] = now()
            mounting = self.pods_mounting(ns, mover_spec.get("destinationPVC", ""))
            self.api.patch(_path("replicationdestinations", ns, name, "status"), {"status": {
                "lastSyncStartTime": format_time(self.started[key]),
                "conditions": [_condition("SyncInProgress", "Synchronization in-progress")]}})
            self.record(ns, f"{name}.started", {"trigger": trigger, "podsMountingPVC": mounting})
            log.info("sync of %s/%s started (trigger %s); pods mounting the PVC: %s", ns, name, trigger, mounting)
        if behaviour.get("result") == "Hang":
            return
        elapsed = (now() - self.started[key]).total_seconds()
        if elapsed < float(behaviour.get("delaySeconds", 1.0)):
            return
        repository = mover_spec.get("repository", "")
        logs, snapshot = mover_logs(section, mover_spec, snapshots.get(repository, []))
        result = "Failed" if behaviour.get("result") == "Failed" else "Successful"
        if result == "Failed":  # as after the Job's 8th failed attempt: the whole log of the last one
            if snapshot is None:  # restic failed before it could list the snapshots
                logs = ("Starting container\nVolSync restic container version: simulator\nrestore\n"
                        "=== Check for dir initialized ===\nFatal: unable to open repository: simulated failure\n"
                        "ERROR: failure checking existence of repository\n")
            else:  # restic failed while restoring: the PVC holds part of the snapshot
                logs = (logs.split("Summary:")[0] + "ignoring error for /data/db: simulated failure\n"
                        "Fatal: There were 1 errors\n")
        finished = now()
        # The record first, then the status: a test that saw the sync finish can read its record at once.
        started = self.api.get(_path("configmaps", ns, RECORD))
        start_entry = json.loads(((started or {}).get("data") or {}).get(f"{name}.started") or "{}")
        self.record(ns, name, {"trigger": trigger, "result": result, "snapshot": snapshot,
                                     "section": section, "previous": mover_spec.get("previous"),
                                     "restoreAsOf": mover_spec.get("restoreAsOf"),
                                     "cacheStorageClassName": mover_spec.get("cacheStorageClassName"),
                                     "podsMountingPVC": start_entry.get("podsMountingPVC", []),
                                     "startedAt": self.started[key].isoformat(), "finishedAt": finished.isoformat()})
        if result == "Failed":
            # volsync never sets lastManualSync on failure: it reports the failed Job and starts it again.
            self.api.patch(_path("replicationdestinations", ns, name, "status"), {"status": {
                "latestMoverStatus": {"result": result, "logs": logs.encode()[-LOG_MAX_BYTES:].decode()}}})
            self.started[key] = now()
            log.info("sync of %s/%s failed; volsync would start it again", ns, name)
            return
        self.api.patch(_path("replicationdestinations", ns, name, "status"), {"status": {
            "lastManualSync": trigger,
            "lastSyncTime": format_time(finished),
            "lastSyncDuration": f"{elapsed:.3f}s",
            "lastSyncStartTime": None,
            "latestMoverStatus": {"result": result, "logs": filtered(logs)},
            "conditions": [_condition("WaitingForManual", "Synchronization complete; waiting for manual trigger",
                                      "False")]}})
        del self.started[key]
        log.info("sync of %s/%s finished: %s, snapshot %s", ns, name, result, snapshot)

    def backup(self, rs: dict[str, Any]) -> None:
        """A manual backup of a restic ReplicationSource: a new snapshot (now) in the simulated repository."""
        meta, spec, status = rs["metadata"], rs.get("spec") or {}, rs.get("status") or {}
        trigger = (spec.get("trigger") or {}).get("manual")
        restic = spec.get("restic")
        if not trigger or trigger == status.get("lastManualSync") or spec.get("paused") or restic is None:
            return
        key = (meta["uid"], trigger)
        self.started.setdefault(key, now())
        snapshots, behaviour = self.config(meta["namespace"])
        if (now() - self.started[key]).total_seconds() < float(behaviour.get("delaySeconds", 1.0)):
            return
        repository = restic.get("repository", "")
        moment = now()
        snapshot = {"id": hashlib.sha256(f"{meta['uid']}{trigger}".encode()).hexdigest()[:16],
                    "time": moment.isoformat()}
        snapshots[repository] = restic_forget(snapshots.get(repository, []) + [snapshot], restic.get("retain"))
        self.api.patch(_path("configmaps", meta["namespace"], CONFIG), {"data": {"snapshots": json.dumps(snapshots)}})
        self.api.patch(_path("replicationsources", meta["namespace"], meta["name"], "status"), {"status": {
            "lastManualSync": trigger, "lastSyncTime": format_time(moment),
            "latestMoverStatus": {"result": "Successful",
                                  "logs": f"Starting container\nsnapshot {snapshot['id'][:8]} saved\n"}}})
        del self.started[key]
        log.info("backup of %s/%s: snapshot %s", meta["namespace"], meta["name"], snapshot["id"])

    def run_once(self) -> None:
        for rd in self.api.list(_path("replicationdestinations", self.namespace)):
            try:
                self.step(rd)
            except ApiError as exc:  # the destination may be deleted under us
                log.debug("step %s: %s", rd["metadata"]["name"], exc)
        for rs in self.api.list(_path("replicationsources", self.namespace)):
            try:
                self.backup(rs)
            except ApiError as exc:
                log.debug("backup %s: %s", rs["metadata"]["name"], exc)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.run_once()
            except (ApiError, OSError) as exc:
                log.warning("poll failed: %s", exc)
            except Exception:  # a simulator that stops silently would only show up as tests timing out
                log.exception("poll failed")
            self.stopping.wait(self.interval)

    def start(self) -> MoverSimulator:
        """Run in a background thread until ``stop()``."""
        self.thread = threading.Thread(target=self.run, name="mover-simulator", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self.thread:
            self.thread.join(timeout=30)


def _path(plural: str, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
    base = "/api/v1" if plural in ("configmaps", "pods") else "/apis/volsync.backube/v1alpha1"
    path = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
    return path + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.mover_simulator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig")
    parser.add_argument("--namespace", help="only this namespace (default: all)")
    parser.add_argument("--interval", type=float, default=0.2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s mover-simulator %(message)s")
    try:
        MoverSimulator(Api(args.kubeconfig or os.environ["KUBECONFIG"]), interval=args.interval,
                       namespace=args.namespace).run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
