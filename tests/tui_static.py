"""A fixed data source for the TUI's layout snapshots (the behaviour tests use the real cluster)."""

from __future__ import annotations

import datetime as dt

from kubectl_pvc_restore import model
from kubectl_pvc_restore.preview import Preview
from kubectl_pvc_restore.tui.data import LockRow, PVCRow

NS = "apps"


def ago(minutes: float) -> str:
    return model.format_time(model.now() - dt.timedelta(minutes=minutes))


class StaticSource:
    namespace = NS

    async def pvcs(self):
        return [
            PVCRow(NS, "data", "1Gi", "data-backup", "restic", "2024-05-03T10:00:00Z", "Successful", "", "", ""),
            PVCRow(NS, "media", "50Gi", "media-backup", "rclone", "2024-05-03T04:00:00Z", "Failed", "", "", ""),
            PVCRow(NS, "db", "5Gi", "db-backup", "restic", "2024-05-03T09:30:00Z", "Successful",
                   "db-1714730000 (active (Restore))", "db-1714730000", "Restore"),
            PVCRow(NS, "scratch", "1Gi", "-", "", "", "", "", "", ""),
        ]

    async def restores(self):
        return [self._restore("db-1714730000", "db", "Restore", None),
                self._restore("data-1714720000", "data", "Finished", None, previous=1),
                self._restore("media-1714710000", "media", "Finished", "the volsync mover failed: repository locked")]

    def _restore(self, name, pvc, phase, error, previous=None):
        spec = {"pvc": pvc, **({"previous": previous} if previous else {})}
        return {"metadata": {"name": name, "namespace": NS, "creationTimestamp": ago(5), "uid": name},
                "spec": spec,
                "status": {"phase": phase, "error": error, "message": "waiting for the volsync mover "
                           "(ReplicationDestination pvc-restore-db-1714730000)" if phase == "Restore" else "finished",
                           "pvcOwners": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": pvc,
                                          "namespace": NS, "replicas": 1}],
                           "replicationSource": f"{pvc}-backup", "replicationDestination": f"pvc-restore-{name}"}}

    async def restore(self, namespace, name):
        return next((r for r in await self.restores() if r["metadata"]["name"] == name), None)

    async def events(self, namespace, name, uid):
        return [{"metadata": {"creationTimestamp": f"2024-05-03T10:0{i}:00Z"}, "lastTimestamp":
                 f"2024-05-03T10:0{i}:00Z", "type": "Normal", "reason": phase, "message": text}
                for i, (phase, text) in enumerate([("Initialize", "starting"),
                                                   ("ScaleDown", "lock acquired; scaling down"),
                                                   ("Restore", "no pod mounts the PVC; restoring with volsync")])]

    async def destination(self, namespace, name):
        # What volsync v0.14.0 keeps of a restic restore's log (its log filter drops "Selected restic snapshot").
        return {"status": {"latestMoverStatus": {"result": "Successful", "logs": (
            "RESTORE_OPTIONS: --delete\nrestoring snapshot bbbb2222 of [/data] at 2024-05-02 10:00:00 +0000 UTC by "
            "root@volsync to .\nRestic completed in 4s")}}}

    async def locks(self):
        return [LockRow(NS, "db", "pvc-restore-lock-db", "db-1714730000", ago(5), "active (Restore)"),
                LockRow(NS, "old", "pvc-restore-lock-old", "old-1700000000", ago(600), "gone")]

    async def snapshots(self, namespace, pvc, *, where="auto"):
        return [{"id": f"{c * 8}{'0' * 56}", "short_id": c * 8, "time": f"2024-05-0{i + 1}T10:00:00Z",
                 "paths": ["/data"], "hostname": "volsync", "size": 1536 * 1024 * (i + 1)}
                for i, c in enumerate("abc")], None, "restic on this machine"

    async def preview(self, namespace, spec):
        return Preview(namespace, spec.pvc, spec, owners=[model.Owner("apps/v1", "Deployment", "web", NS, 3),
                                                          model.Owner("apps/v1", "StatefulSet", "db", NS, 2)],
                       source={"metadata": {"name": f"{spec.pvc}-backup"}, "spec": {"restic": {}}})

    async def create(self, namespace, pvc, selector, *, safety_backup=False, **options):
        return f"{pvc}-1714740000"

    async def cancel(self, namespace, name):
        return None

    async def clear_lock(self, row):
        return None

    async def close(self):
        return None
