"""Every way a restore can fail ends Finished with a clear error, every workload back at its replicas, and no
ReplicationDestination or lock left behind."""

from __future__ import annotations

import pytest

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import model
from tests import scenario as sc
from tests.helpers import wait_for


def generations(cluster):
    """metadata.generation of the workloads and the source: any spec change (a scale, a pause) bumps it."""
    return {(r.kind, o["metadata"]["name"]): o["metadata"]["generation"]
            for r in (k.DEPLOYMENTS, k.STATEFULSETS, k.REPLICATION_SOURCES) for o in cluster.kube.list(r, cluster.ns)}


def test_missing_pvc(cluster, controller):
    controller()
    cluster.kube.create(k.PVC_RESTORES, model.manifest("r1", cluster.ns, model.Spec(pvc="nope")), cluster.ns)
    restore = sc.wait_finished(cluster, "r1")
    assert restore["status"]["error"] == f"PersistentVolumeClaim nope not found in namespace {cluster.ns}"
    assert cluster.kube.list(k.CONFIGMAPS, cluster.ns,
                             label_selector="pvc-restore.homelab-helper.benfiola.com/lock") == []


def test_rclone_source_restores_latest(cluster, controller):
    sc.setup(cluster, source=False, statefulset=0)
    cluster.replication_source("data-backup", sc.PVC, mover="rclone")
    controller()
    sc.create_restore(cluster)
    restore = sc.wait_finished(cluster, "r1")
    assert restore["status"].get("error") is None
    record = cluster.simulator_record(restore["status"]["replicationDestination"])
    assert record["section"] == "rclone" and record["podsMountingPVC"] == []
    sc.assert_cleaned_up(cluster, statefulset=0)


# -- refused before anything is touched: one table ---------------------------------------------------------------
# Each arrange() builds the cluster and returns the spec of the restore; the restore must fail with every expected
# part in its error, having recorded and changed nothing (no workload scaled, the source not paused).

def no_source(cluster):
    sc.setup(cluster, source=False)
    return {}


def two_sources(cluster):
    sc.setup(cluster)
    cluster.replication_source("data-backup-2", sc.PVC)
    return {}


def rclone_and_an_older_snapshot(cluster):
    sc.setup(cluster, source=False)
    cluster.replication_source("data-backup", sc.PVC, mover="rclone")
    return {"previous": 1}


def an_owner_without_scale(cluster):
    sc.setup(cluster)
    owner = cluster.kube.create(k.CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                               "metadata": {"name": "odd-owner"}}, cluster.ns)
    template = cluster.pod_template("odd", sc.PVC)
    cluster.kube.create(k.PODS, {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"], "metadata": {
        "name": "odd", "namespace": cluster.ns, "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "odd-owner", "uid": owner["metadata"]["uid"],
            "controller": True}]}}, cluster.ns)
    cluster.wait_running(6, pvc=sc.PVC)
    return {}


def a_bare_pod(cluster):
    sc.setup(cluster, statefulset=0)
    template = cluster.pod_template("debug", sc.PVC)
    cluster.kube.create(k.PODS, {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"],
                                 "metadata": {"name": "debug", "namespace": cluster.ns}}, cluster.ns)
    cluster.wait_running(4, pvc=sc.PVC)  # the Deployment's 3 and the bare pod (3 raced the bare pod's start)
    return {}


REFUSED = [
    pytest.param(no_source, ["no ReplicationSource", "data"], {}, id="no-replication-source"),
    pytest.param(two_sources, ["several ReplicationSources", "data-backup, data-backup-2"], {}, id="two-sources"),
    pytest.param(rclone_and_an_older_snapshot, ["rclone mover, which keeps only the latest copy"], {},
                 id="rclone-previous"),
    pytest.param(an_owner_without_scale, ["ConfigMap odd-owner", "no /scale subresource"], {"other_pods": 1},
                 id="owner-without-scale"),
    pytest.param(a_bare_pod, ["Pod debug mounts the PVC but has no controller"], {"statefulset": 0, "other_pods": 1},
                 id="bare-pod"),
]


@pytest.mark.parametrize("arrange,expected,leftovers", REFUSED)
def test_refused_before_anything_is_touched(cluster, controller, arrange, expected, leftovers):
    spec = arrange(cluster)
    before = generations(cluster)
    controller()
    sc.create_restore(cluster, **spec)
    restore = sc.wait_finished(cluster, "r1")
    error = restore["status"]["error"]
    assert all(part in error for part in expected), error
    assert restore["status"].get("pvcOwners") is None, "workloads were recorded: the restore got past its checks"
    assert generations(cluster) == before, "a workload or the source was touched"
    sc.assert_cleaned_up(cluster, **leftovers)


# -- failures after the mover started: workloads back (partialData: ScaleBack), the error says why -----------------

@pytest.mark.parametrize("result,settings,prefix,detail", [
    pytest.param("Failed", {}, "the volsync mover failed", "simulated failure", id="mover-failed"),
    pytest.param("Hang", {"restore_timeout": 2}, "timed out after 2s of restoring: the volsync mover", "",
                 id="timeout"),
])
def test_failure_after_the_mover_started(cluster, controller, result, settings, prefix, detail):
    sc.setup(cluster, result=result)
    controller(**settings)
    # (the default keeps workloads stopped: tests/test_partial_data.py)
    sc.create_restore(cluster, partialData="ScaleBack")
    restore = sc.wait_finished(cluster, "r1")
    assert restore["status"]["error"].startswith(prefix) and detail in restore["status"]["error"]
    sc.assert_cleaned_up(cluster)


def test_events_record_phases_and_errors(cluster, controller):
    sc.setup(cluster, statefulset=0, deployment=1, result="Failed")
    controller()
    sc.create_restore(cluster, partialData="ScaleBack")
    sc.wait_finished(cluster, "r1")
    expected = {"Initialize", "ScaleDown", "Restore", "RestoreFailed", "Finalize", "Failed"}

    def recorded() -> list[dict]:  # (an Event is sent beside the status write it reports, and may land after it)
        found = [e for e in cluster.kube.list(k.EVENTS, cluster.ns) if e["involvedObject"].get("name") == "r1"]
        return found if expected <= {e["reason"] for e in found} else []

    events = wait_for(recorded, timeout=30, message=f"the events {sorted(expected)}")
    assert {e["type"] for e in events if e["reason"] in ("RestoreFailed", "Failed")} == {"Warning"}
