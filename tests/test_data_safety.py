"""Ordinary cluster events during a restore never lose data or end in a false success (real control plane)."""

from __future__ import annotations

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import model
from tests import scenario as sc
from tests.helpers import wait_for


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
    sc.create_restore(cluster, pvc=claim, previous=1)
    done = sc.wait_finished(cluster, "r1")
    assert done["status"].get("error") is None, done["status"]
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
    sc.create_restore(cluster)
    sc.wait_phase(cluster, "r1", "Restore")
    cluster.kube.delete(k.PVCS, sc.PVC, cluster.ns)
    done = sc.wait_finished(cluster, "r1")
    # Seen gone, or seen while its deletion waits for the pvc-protection finalizer: both end the restore.
    error = done["status"]["error"] or ""
    assert "was deleted during the restore" in error or f"PersistentVolumeClaim {sc.PVC} is being deleted" in error, \
        done["status"]
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 2
    assert cluster.kube.list(k.REPLICATION_DESTINATIONS, cluster.ns) == []


def test_a_pvc_replaced_during_the_restore_is_an_error(cluster, controller_process):
    import signal

    sc.setup(cluster, statefulset=0, deployment=2, delay=4.0)
    proc = controller_process()
    sc.create_restore(cluster)
    sc.wait_phase(cluster, "r1", "Restore")
    # Paused while the PVC is replaced, so that it sees the new one, never the gap (that is the deleted case).
    proc.send_signal(signal.SIGSTOP)
    old = cluster.kube.get(k.PVCS, sc.PVC, cluster.ns)
    cluster.kube.delete(k.PVCS, sc.PVC, cluster.ns)
    wait_for(lambda: cluster.kube.get_or_none(k.PVCS, sc.PVC, cluster.ns) is None, message="the PVC gone")
    new = cluster.kube.create(k.PVCS, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                       "metadata": {"name": sc.PVC, "namespace": cluster.ns},
                                       "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                                                "resources": {"requests": {"storage": "1Gi"}}}}, cluster.ns)
    proc.send_signal(signal.SIGCONT)
    done = sc.wait_finished(cluster, "r1")
    error = done["status"]["error"] or ""
    assert "deleted and created again" in error and old["metadata"]["uid"] in error \
        and new["metadata"]["uid"] in error, done["status"]
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 2


def test_an_annotation_changed_after_its_claim_becomes_one_more_restore(cluster, controller_process):
    """The controller dies after creating the PVCRestore for "1" but before clearing the annotation; meanwhile the
    user changes it to "2". The change is not dropped: "1" keeps its one restore, and "2" gets its own."""
    from controller.triggers import CLAIM_ANNOTATION

    sc.setup(cluster, statefulset=0, deployment=1)
    sc.annotate(cluster, "1")
    crashed = controller_process(crash_at="created-restore")
    assert crashed.wait(timeout=90) == -9
    sc.annotate(cluster, "2")
    controller_process()
    both = wait_for(lambda: (lambda rs: rs if len(rs) == 2 and all(
        (r.get("status") or {}).get("phase") == "Finished" for r in rs) else None)(sc.restores(cluster)),
        timeout=90, message="two finished restores")
    assert sorted(r["spec"].get("previous") for r in both) == [1, 2]
    assert all(r["status"].get("error") is None for r in both), [r["status"] for r in both]
    annotations = cluster.kube.get(k.PVCS, sc.PVC, cluster.ns)["metadata"].get("annotations") or {}
    assert model.RESTORE_ANNOTATION not in annotations and CLAIM_ANNOTATION not in annotations
    sc.assert_cleaned_up(cluster, statefulset=0, deployment=1)


def test_a_second_writer_during_the_mover_is_stopped_again(cluster, controller):
    """Someone scales the stopped Deployment back up while the mover writes: its pods are stopped again before the
    restore goes on, reported with a Warning Event, and the app still comes back at its recorded replicas."""
    # The mover runs 12 s: time enough, on a loaded machine, for kube-controller-manager to make the second writer's
    # pods and for the controller to see them while it runs.
    sc.setup(cluster, statefulset=0, deployment=2, delay=12.0)
    controller()
    sc.create_restore(cluster)
    sc.wait_phase(cluster, "r1", "Restore")
    cluster.kube.set_scale(k.DEPLOYMENTS, "web", cluster.ns, 3)
    wait_for(lambda: [e for e in cluster.kube.list(k.EVENTS, cluster.ns) if e["reason"] == "SecondWriter"],
             message="the SecondWriter warning")
    wait_for(lambda: cluster.replicas(k.DEPLOYMENTS, "web") == 0, message="the second writer scaled back to 0")
    done = sc.wait_finished(cluster, "r1")
    assert done["status"].get("error") is None, done["status"]
    sc.assert_cleaned_up(cluster, statefulset=0, deployment=2)


def test_an_unrecorded_writer_during_the_mover_fails_the_restore(cluster, controller):
    sc.setup(cluster, statefulset=0, deployment=2, delay=12.0)  # (as above: the intruder's pods come while it runs)
    controller()
    sc.create_restore(cluster)
    # The mover has started (recorded), so the intruder's pods come while it may be writing: partial data.
    wait_for(lambda: (cluster.kube.get(k.PVC_RESTORES, "r1", cluster.ns).get("status") or {}).get("moverStarted"),
             message="the mover to start")
    cluster.deployment("intruder", replicas=1, pvc=sc.PVC)
    # The mover had started: the PVC may hold partial (and foreign) data, so the workloads are kept stopped.
    done = sc.wait_holding(cluster, "r1")
    assert "pods that the restore did not stop mount the PVC" in (done["status"]["error"] or ""), done["status"]
    assert "Deployment intruder" in done["status"]["error"]
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 0


def test_a_workload_deleted_during_scale_down_does_not_stall_the_restore(cluster, controller):
    """A pod that will not terminate keeps the restore in ScaleDown; its Deployment is deleted meanwhile (so /scale
    answers NotFound): the restore goes on, notes it, and brings the others back."""
    sc.setup(cluster, statefulset=2, deployment=2)
    stuck = next(p for p in cluster.pods(pvc=sc.PVC) if p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet")
    cluster.kube.patch(k.PODS, stuck["metadata"]["name"], cluster.ns, {"metadata": {"finalizers": ["test/hold"]}})
    controller()
    sc.create_restore(cluster)
    sc.wait_phase(cluster, "r1", "ScaleDown")
    wait_for(lambda: cluster.replicas(k.DEPLOYMENTS, "web") == 0, message="web scaled to 0")
    cluster.kube.delete(k.DEPLOYMENTS, "web", cluster.ns)
    wait_for(lambda: cluster.kube.get_or_none(k.DEPLOYMENTS, "web", cluster.ns) is None, message="web deleted")
    wait_for(lambda: "Deployment/web was deleted during the restore; it is not scaled back" in (
        cluster.kube.get(k.PVC_RESTORES, "r1", cluster.ns)["status"].get("notes") or []),
        message="the deletion noted")
    cluster.kube.patch(k.PODS, stuck["metadata"]["name"], cluster.ns, {"metadata": {"finalizers": None}})
    done = sc.wait_finished(cluster, "r1")
    assert done["status"].get("error") is None, done["status"]
    assert cluster.replicas(k.STATEFULSETS, "db") == 2


def test_a_stale_list_never_undoes_a_finished_reconcile(cluster, kube, portal, monkeypatch):
    """The race, made deterministic: a poll lists the restore while it is in Restore, and the reconcile that takes
    it to Finished (deleting the ReplicationDestination) ends right after that list. The stale copy must not act
    (it would create a new ReplicationDestination: a mover writing while the app runs)."""
    import asyncio

    from controller import loop as loop_module
    from controller import phases
    from controller.loop import Controller
    from controller.settings import Settings

    sc.setup(cluster, statefulset=0, deployment=1, result="Hang")  # the test finishes the sync itself, below
    ctl = Controller(kube.kube, Settings(namespace=cluster.ns, poll_interval=0.2, restore_timeout=30.0,
                                         scale_down_timeout=60.0, health_address="", metrics_address=""))

    async def settle():
        await asyncio.gather(*[t for t in ctl.tasks.values() if not t.done()], return_exceptions=True)

    def poll():
        portal.call(ctl.poll)
        portal.call(settle)

    sc.create_restore(cluster)

    def mover_started():
        poll()
        status = cluster.kube.get(k.PVC_RESTORES, "r1", cluster.ns).get("status") or {}
        return status if status.get("phase") == "Restore" and status.get("moverStarted") else None
    status = wait_for(mover_started, message="the restore in Restore with its mover started")
    # Acting as volsync, with no poll running: the sync ends as the mover writes it (what the simulator would do).
    cluster.kube.patch(k.REPLICATION_DESTINATIONS, status["replicationDestination"], cluster.ns, {"status": {
        "lastManualSync": status["trigger"], "lastSyncTime": model.format_time(model.now()),
        "latestMoverStatus": {"result": "Successful", "logs": "restoring <Snapshot cccc3333 of [/data]> to .\n"
                                                              "Restic completed in 1s\n=== Done ===\n"}}},
        subresource="status")

    gate = asyncio.Event()
    real_reconcile, real_list = phases.reconcile, ctl._list

    async def gated(run):
        await gate.wait()
        await real_reconcile(run)

    monkeypatch.setattr(loop_module.phases, "reconcile", gated)
    portal.call(ctl.poll)  # starts the reconcile that will finish the restore; it waits for the gate
    [first] = [t for t in ctl.tasks.values() if not t.done()]

    async def list_then_finish():
        listed = await real_list()  # this list still shows the restore in Restore
        gate.set()
        await asyncio.gather(first, return_exceptions=True)  # ... and the reconcile ends after it
        return listed

    monkeypatch.setattr(ctl, "_list", list_then_finish)
    poll()
    monkeypatch.setattr(loop_module.phases, "reconcile", real_reconcile)
    monkeypatch.setattr(ctl, "_list", real_list)
    done = cluster.kube.get(k.PVC_RESTORES, "r1", cluster.ns)
    assert done["status"]["phase"] == "Finished" and done["status"].get("error") is None, done["status"]
    assert cluster.kube.list(k.REPLICATION_DESTINATIONS, cluster.ns) == [], "a stale copy created a destination"
    poll()
    sc.assert_cleaned_up(cluster, statefulset=0, deployment=1)
