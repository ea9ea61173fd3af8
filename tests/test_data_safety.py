"""Ordinary cluster events during a restore never lose data or end in a false success (real control plane)."""

from __future__ import annotations

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import model
from tests import scenario as sc
from tests.helpers import wait_for


def create(cluster, name="r1", pvc=sc.PVC, **spec):
    return cluster.kube.create(k.PVC_RESTORES, model.manifest(name, cluster.ns, model.Spec.from_dict(
        {"pvc": pvc, **spec})), cluster.ns)


def test_statefulset_retention_delete_never_deletes_the_restored_pvc(cluster, controller):
    """whenScaled: Delete would make Kubernetes delete the StatefulSet's claim when the restore scales it to 0: the
    restore switches it to Retain first (recorded) and puts Delete back after the replicas."""
    claim = "data-db-0"
    before = cluster.pvc(claim)
    cluster.kube.create(k.STATEFULSETS, {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": cluster.ns},
        "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Delete"},
                 "template": cluster.pod_template("db", None),
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                     "accessModes": ["ReadWriteOnce"], "storageClassName": "",
                     "resources": {"requests": {"storage": "1Gi"}}}}]}}, cluster.ns)
    cluster.replication_source(sc.SOURCE, claim)
    cluster.simulate(snapshots={sc.REPOSITORY: sc.SNAPSHOTS})
    cluster.wait_running(1, pvc=claim)
    # (Scaled to 0 by hand, the StatefulSet controller gives the claim an ownerReference to its condemned pod and
    # the garbage collector deletes it with the pod: seen on this control plane.)
    controller()
    create(cluster, pvc=claim, previous=1)
    done = sc.wait_finished(cluster, "r1")
    assert done["status"]["error"] is None, done["status"]
    assert [s["method"] for s in done["status"]["stopped"]] == ["pvcRetention"]
    after = cluster.kube.get(k.PVCS, claim, cluster.ns)
    assert after["metadata"]["uid"] == before["metadata"]["uid"], "the restored PVC was deleted and recreated"
    sts = cluster.kube.get(k.STATEFULSETS, "db", cluster.ns)
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] == "Delete"
    assert sts["spec"]["replicas"] == 1
    cluster.wait_running(1, pvc=claim)


def test_a_pvc_deleted_during_the_restore_is_an_error_and_workloads_come_back(cluster, controller):
    sc.setup(cluster, statefulset=0, deployment=2, delay=4.0)
    controller()
    create(cluster)
    sc.wait_phase(cluster, "r1", "Restore")
    cluster.kube.delete(k.PVCS, sc.PVC, cluster.ns)
    done = sc.wait_finished(cluster, "r1")
    assert "was deleted during the restore" in (done["status"]["error"] or ""), done["status"]
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 2
    assert cluster.kube.list(k.REPLICATION_DESTINATIONS, cluster.ns) == []


def test_a_pvc_replaced_during_the_restore_is_an_error(cluster, controller):
    sc.setup(cluster, statefulset=0, deployment=2, delay=4.0)
    controller()
    create(cluster)
    sc.wait_phase(cluster, "r1", "Restore")
    old = cluster.kube.get(k.PVCS, sc.PVC, cluster.ns)
    cluster.kube.delete(k.PVCS, sc.PVC, cluster.ns)
    wait_for(lambda: cluster.kube.get_or_none(k.PVCS, sc.PVC, cluster.ns) is None, message="the PVC gone")
    new = cluster.kube.create(k.PVCS, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                       "metadata": {"name": sc.PVC, "namespace": cluster.ns},
                                       "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                                                "resources": {"requests": {"storage": "1Gi"}}}}, cluster.ns)
    done = sc.wait_finished(cluster, "r1")
    error = done["status"]["error"] or ""
    assert "deleted and created again" in error and old["metadata"]["uid"] in error \
        and new["metadata"]["uid"] in error, done["status"]
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 2
