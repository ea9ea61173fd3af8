"""SIGKILL the real controller process at every phase boundary and in the middle of scaling several owners (down
and back up), restart it, and check that the restore still finishes correctly, exactly once."""

from __future__ import annotations

import pytest

from controller.triggers import CLAIM_ANNOTATION
from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore.model import RESTORE_ANNOTATION
from tests import scenario as sc

CRASH_POINTS = [
    "claimed-name",          # annotation trigger: name claimed on the PVC, PVCRestore not created yet
    "created-restore",       # PVCRestore created, annotation not cleared yet
    "enter:Initialize",
    "enter:ScaleDown",
    "recorded-owners",       # replicas written to status, nothing scaled yet
    "scaled-down:web",       # first of two owners scaled to 0
    "enter:Restore",
    "created-destination",
    "enter:Finalize",
    "scaled-up:web",         # first of two owners scaled back
    "enter:Finished",
]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_controller_killed_and_restarted(cluster, controller_process, point):
    sc.setup(cluster, delay=0.5)
    sc.annotate(cluster, "1")
    crashed = controller_process(crash_at=point, extra=("--restore-timeout", "60"))
    assert crashed.wait(timeout=90) == -9, f"the controller did not reach crash point {point}"
    controller_process()
    restore = sc.wait_finished(cluster)
    assert restore["status"].get("error") is None, restore["status"]
    assert restore["status"]["restoredSnapshot"] == "bbbb2222"
    owners = {(o["kind"], o["name"]): o["replicas"] for o in restore["status"]["pvcOwners"]}
    assert owners == {("Deployment", "web"): 3, ("StatefulSet", "db"): 2}
    assert len(sc.restores(cluster)) == 1, "the annotation created more than one PVCRestore"
    annotations = cluster.kube.get(k.PVCS, sc.PVC, cluster.ns)["metadata"].get("annotations") or {}
    assert RESTORE_ANNOTATION not in annotations and CLAIM_ANNOTATION not in annotations
    record = cluster.simulator_record(restore["status"]["replicationDestination"])
    assert record["snapshot"] == "bbbb2222" and record["podsMountingPVC"] == []
    sc.assert_cleaned_up(cluster)
