"""Every way a restore can fail ends Finished with a clear error, every workload back at its replicas, and no
ReplicationDestination or lock left behind."""

from __future__ import annotations

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import model
from tests import scenario as sc


def create(cluster, name="r1", **spec):
    return cluster.kube.create(k.PVC_RESTORES, model.manifest(name, cluster.ns, model.Spec.from_dict(
        {"pvc": sc.PVC, **spec})), cluster.ns)


def generations(cluster):
    """metadata.generation of the workloads and the source: any spec change (a scale, a pause) bumps it."""
    return {(r.kind, o["metadata"]["name"]): o["metadata"]["generation"]
            for r in (k.DEPLOYMENTS, k.STATEFULSETS, k.REPLICATION_SOURCES) for o in cluster.kube.list(r, cluster.ns)}


def test_missing_pvc(cluster, controller):
    controller()
    cluster.kube.create(k.PVC_RESTORES, model.manifest("r1", cluster.ns, model.Spec(pvc="nope")), cluster.ns)
    restore = sc.wait_finished(cluster, "r1")
    assert restore["status"]["error"] == f"PersistentVolumeClaim nope not found in namespace {cluster.ns}"
    assert cluster.kube.list(k.CONFIGMAPS, cluster.ns, label_selector="pvc-restore.homelab-helper.benfiola.com/lock") == []


def test_no_replication_source_touches_nothing(cluster, controller):
    sc.setup(cluster, source=False)
    before = generations(cluster)
    controller()
    create(cluster)
    restore = sc.wait_finished(cluster, "r1")
    assert "no ReplicationSource" in restore["status"]["error"] and "data" in restore["status"]["error"]
    assert generations(cluster) == before, "a workload was touched"
    sc.assert_cleaned_up(cluster)


def test_two_replication_sources_are_named(cluster, controller):
    sc.setup(cluster)
    cluster.replication_source("data-backup-2", sc.PVC)
    before = generations(cluster)
    controller()
    create(cluster)
    restore = sc.wait_finished(cluster, "r1")
    assert "several ReplicationSources" in restore["status"]["error"]
    assert "data-backup, data-backup-2" in restore["status"]["error"]
    assert generations(cluster) == before
    sc.assert_cleaned_up(cluster)


def test_rclone_source_cannot_restore_an_older_snapshot(cluster, controller):
    sc.setup(cluster, source=False)
    cluster.replication_source("data-backup", sc.PVC, mover="rclone")
    before = generations(cluster)
    controller()
    create(cluster, previous=1)
    restore = sc.wait_finished(cluster, "r1")
    assert "rclone mover, which keeps only the latest copy" in restore["status"]["error"]
    assert generations(cluster) == before
    sc.assert_cleaned_up(cluster)


def test_rclone_source_restores_latest(cluster, controller):
    sc.setup(cluster, source=False, statefulset=0)
    cluster.replication_source("data-backup", sc.PVC, mover="rclone")
    controller()
    create(cluster)
    restore = sc.wait_finished(cluster, "r1")
    assert restore["status"].get("error") is None
    record = cluster.simulator_record(restore["status"]["replicationDestination"])
    assert record["section"] == "rclone" and record["podsMountingPVC"] == []
    sc.assert_cleaned_up(cluster, statefulset=0)


def test_mover_failure_carries_the_log_tail(cluster, controller):
    sc.setup(cluster, result="Failed")
    controller()
    create(cluster, partialData="ScaleBack")  # the default keeps workloads stopped: tests/test_partial_data.py
    restore = sc.wait_finished(cluster, "r1")
    assert restore["status"]["error"].startswith("the volsync mover failed")
    assert "simulated failure" in restore["status"]["error"]
    sc.assert_cleaned_up(cluster)


def test_timeout(cluster, controller):
    sc.setup(cluster, result="Hang")
    controller(restore_timeout=2)
    create(cluster, partialData="ScaleBack")
    restore = sc.wait_finished(cluster, "r1")
    assert restore["status"]["error"].startswith("timed out after 2s of restoring: the volsync mover")
    sc.assert_cleaned_up(cluster)


def test_unscalable_owner_fails_before_touching_any_workload(cluster, controller):
    sc.setup(cluster)
    owner = cluster.kube.create(k.CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                               "metadata": {"name": "odd-owner"}}, cluster.ns)
    template = cluster.pod_template("odd", sc.PVC)
    cluster.kube.create(k.PODS, {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"], "metadata": {
        "name": "odd", "namespace": cluster.ns, "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "odd-owner", "uid": owner["metadata"]["uid"],
            "controller": True}]}}, cluster.ns)
    cluster.wait_running(6, pvc=sc.PVC)
    before = generations(cluster)
    controller()
    create(cluster)
    restore = sc.wait_finished(cluster, "r1")
    assert "ConfigMap odd-owner" in restore["status"]["error"] and "no /scale subresource" in restore["status"]["error"]
    assert restore["status"].get("pvcOwners") is None
    assert generations(cluster) == before, "a workload or the source was touched"
    sc.assert_cleaned_up(cluster, other_pods=1)


def test_bare_pod_fails_before_touching_any_workload(cluster, controller):
    sc.setup(cluster, statefulset=0)
    template = cluster.pod_template("debug", sc.PVC)
    cluster.kube.create(k.PODS, {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"],
                                 "metadata": {"name": "debug", "namespace": cluster.ns}}, cluster.ns)
    cluster.wait_running(4, pvc=sc.PVC)  # the Deployment's 3 and the bare pod (3 raced the bare pod's start)
    before = generations(cluster)
    controller()
    create(cluster)
    restore = sc.wait_finished(cluster, "r1")
    assert "Pod debug mounts the PVC but has no controller" in restore["status"]["error"]
    assert generations(cluster) == before
    sc.assert_cleaned_up(cluster, statefulset=0, other_pods=1)


def test_events_record_phases_and_errors(cluster, controller):
    sc.setup(cluster, statefulset=0, deployment=1, result="Failed")
    controller()
    create(cluster, partialData="ScaleBack")
    sc.wait_finished(cluster, "r1")
    events = [e for e in cluster.kube.list(k.EVENTS, cluster.ns) if e["involvedObject"].get("name") == "r1"]
    reasons = [e["reason"] for e in sorted(events, key=lambda e: e["metadata"]["creationTimestamp"])]
    for reason in ("Initialize", "ScaleDown", "Restore", "RestoreFailed", "Finalize", "Failed"):
        assert reason in reasons
    assert {e["type"] for e in events if e["reason"] in ("RestoreFailed", "Failed")} == {"Warning"}
