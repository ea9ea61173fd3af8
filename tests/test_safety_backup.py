"""spec.safetyBackup / --safety-backup: the current data is backed up first, `previous` keeps its meaning, the
source's trigger comes back as it was, and `undo` restores that backup."""

from __future__ import annotations

import pytest

from kubectl_pvc_restore import kube as k
from tests import scenario as sc


def test_safety_backup_then_undo(cluster, controller, run):
    sc.setup(cluster, statefulset=0, deployment=1)
    original_trigger = cluster.kube.get(k.REPLICATION_SOURCES, sc.SOURCE, cluster.ns)["spec"]["trigger"]
    controller()
    started = run("start", "data", "--previous", "1", "--safety-backup", "--wait", "--timeout", "120")
    assert started.exit_code == 0, started.output
    name = started.output.splitlines()[0]
    restore = cluster.kube.get(k.PVC_RESTORES, name, cluster.ns)
    status = restore["status"]
    assert status["restoredSnapshot"] == "bbbb2222", "previous: 1 must mean the same snapshot as without the backup"
    safety = status["safetyBackup"]
    assert safety["completedAt"] and safety["snapshot"]
    record = cluster.simulator_record(status["replicationDestination"])
    assert record["previous"] == 2 and record["podsMountingPVC"] == []
    source = cluster.kube.get(k.REPLICATION_SOURCES, sc.SOURCE, cluster.ns)
    assert source["spec"]["trigger"] == original_trigger and not source["spec"].get("paused")

    undone = run("undo", name, "--wait", "--timeout", "120")
    assert undone.exit_code == 0, undone.output
    undo_name = undone.output.splitlines()[0]
    undo = cluster.kube.get(k.PVC_RESTORES, undo_name, cluster.ns)
    assert undo["spec"]["restoreAsOf"] == safety["completedAt"]
    assert undo["status"]["restoredSnapshot"].startswith(safety["snapshot"])
    sc.assert_cleaned_up(cluster, statefulset=0, deployment=1)


def test_undo_refuses_a_restore_without_safety_backup(cluster, controller, run):
    sc.setup(cluster, statefulset=0, deployment=1)
    controller()
    name = run("start", "data", "--wait").output.splitlines()[0]
    result = run("undo", name)
    assert result.exit_code == 1 and "started without --safety-backup" in result.output


def test_latest_with_safety_backup_still_restores_the_latest_backup(cluster, controller, run):
    sc.setup(cluster, statefulset=0, deployment=1)
    controller()
    started = run("start", "data", "--safety-backup", "--wait", "--timeout", "120")
    assert started.exit_code == 0, started.output
    status = cluster.kube.get(k.PVC_RESTORES, started.output.splitlines()[0], cluster.ns)["status"]
    assert status["restoredSnapshot"] == "cccc3333"


@pytest.mark.parametrize("point", ["recorded-safety-backup", "enter:Restore"])
def test_crash_during_the_safety_backup(cluster, controller_process, point):
    from kubectl_pvc_restore import model

    sc.setup(cluster, statefulset=0, deployment=1)
    cluster.kube.create(k.PVC_RESTORES, model.manifest("r1", cluster.ns, model.Spec(pvc="data", previous=1,
                                                                                     safety_backup=True)), cluster.ns)
    crashed = controller_process(crash_at=point)
    assert crashed.wait(timeout=90) == -9
    controller_process()
    done = sc.wait_finished(cluster, "r1")
    assert done["status"].get("error") is None and done["status"]["restoredSnapshot"] == "bbbb2222"
    assert cluster.kube.get(k.REPLICATION_SOURCES, sc.SOURCE, cluster.ns)["spec"]["trigger"] == \
        {"schedule": "0 * * * *"}
