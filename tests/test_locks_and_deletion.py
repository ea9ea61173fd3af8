"""Serialization of restores of one PVC through the lock, stale lock cleanup, and deletion mid-flight."""

from __future__ import annotations

import datetime as dt
import time

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import locks, model
from tests import scenario as sc
from tests.helpers import wait_for


def status(cluster, name):
    return cluster.kube.get(k.PVC_RESTORES, name, cluster.ns).get("status") or {}


def test_second_restore_waits_for_the_first(cluster, controller):
    sc.setup(cluster, statefulset=0, deployment=2, delay=2.0)
    sc.create_restore(cluster, "first")
    time.sleep(1.1)  # creationTimestamp has one-second precision
    sc.create_restore(cluster, "second", previous=1)
    controller()
    sc.wait_phase(cluster, "first", "Restore")
    waiting = wait_for(lambda: (lambda s: s if s.get("lockHolder") == "first" else None)(status(cluster, "second")),
                       message="the second restore to wait for the first")
    assert waiting["phase"] == "Initialize" and "first" in waiting["message"]
    first = sc.wait_finished(cluster, "first")
    second = sc.wait_finished(cluster, "second")
    assert first["status"].get("error") is None and second["status"].get("error") is None
    assert (first["status"]["restoredSnapshot"], second["status"]["restoredSnapshot"]) == ("cccc3333", "bbbb2222")
    r1 = cluster.simulator_record(first["status"]["replicationDestination"])
    r2 = cluster.simulator_record(second["status"]["replicationDestination"])
    assert r1["finishedAt"] < r2["startedAt"], "the two restores overlapped"
    assert r2["podsMountingPVC"] == []
    # Replicas recorded by the second restore are the real ones, not the first restore's zero.
    assert {o["name"]: o["replicas"] for o in second["status"]["pvcOwners"]} == {"web": 2}
    sc.assert_cleaned_up(cluster, statefulset=0, deployment=2)


def test_lock_held_by_someone_else_blocks(cluster, controller):
    sc.setup(cluster, statefulset=0, deployment=1)
    lock = locks.lock_manifest(cluster.ns, sc.PVC, "manual", "uid-manual", dt.datetime.now(dt.timezone.utc))
    cluster.kube.create(k.CONFIGMAPS, lock, cluster.ns)
    sc.create_restore(cluster, "r1")
    controller(lock_stale_after=3600)
    wait_for(lambda: status(cluster, "r1").get("lockHolder") == "manual", message="r1 to report the lock holder")
    time.sleep(1.0)
    assert status(cluster, "r1")["phase"] == "Initialize"
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 1
    cluster.kube.delete(k.CONFIGMAPS, locks.lock_name(sc.PVC), cluster.ns)
    assert sc.wait_finished(cluster, "r1")["status"].get("error") is None


def test_stale_locks_are_cleaned_and_live_ones_kept(cluster, controller):
    sc.setup(cluster, statefulset=0, deployment=1, result="Hang")
    cluster.pvc("other")
    cluster.pvc("third")
    cluster.pvc("fourth")
    now = dt.datetime.now(dt.timezone.utc)
    # Abandoned: its holder does not exist.
    cluster.kube.create(k.CONFIGMAPS, locks.lock_manifest(cluster.ns, "other", "ghost", "uid-ghost", now), cluster.ns)
    # Abandoned: its holder is Finished.
    done = cluster.kube.create(k.PVC_RESTORES, model.manifest("done", cluster.ns, model.Spec(pvc="third")), cluster.ns)
    cluster.kube.replace(k.PVC_RESTORES, {**done, "status": {"phase": "Finished", "error": "x"}}, subresource="status")
    cluster.kube.create(k.CONFIGMAPS, locks.lock_manifest(cluster.ns, "third", "done", done["metadata"]["uid"], now),
                        cluster.ns)
    # Kept: its holder Finished on partial data and holds the PVC for a retry.
    holding = cluster.kube.create(k.PVC_RESTORES, model.manifest("holding", cluster.ns, model.Spec(pvc="fourth")),
                                  cluster.ns)
    cluster.kube.replace(k.PVC_RESTORES, {**holding, "status": {"phase": "Finished", "error": "x",
                                                                "dataIncomplete": True}}, subresource="status")
    cluster.kube.create(k.CONFIGMAPS, locks.lock_manifest(cluster.ns, "fourth", "holding",
                                                          holding["metadata"]["uid"], now), cluster.ns)
    # Live: held by a restore stuck in Restore (the mover hangs).
    sc.create_restore(cluster, "live")
    controller(lock_stale_after=1.0, restore_timeout=600)
    wait_for(lambda: cluster.kube.get_or_none(k.CONFIGMAPS, locks.lock_name("other"), cluster.ns) is None,
             message="the ghost's lock to be deleted")
    wait_for(lambda: cluster.kube.get_or_none(k.CONFIGMAPS, locks.lock_name("third"), cluster.ns) is None,
             message="the finished restore's lock to be deleted")
    sc.wait_phase(cluster, "live", "Restore")
    time.sleep(2.5)  # older than lock_stale_after, over many polls
    live_lock = cluster.kube.get(k.CONFIGMAPS, locks.lock_name(sc.PVC), cluster.ns)
    assert locks.holder_of(live_lock)[0] == "live"
    assert locks.holder_of(cluster.kube.get(k.CONFIGMAPS, locks.lock_name("fourth"), cluster.ns))[0] == "holding"
    assert status(cluster, "live")["phase"] == "Restore"


def _delete_and_wait_gone(cluster, name):
    cluster.kube.delete(k.PVC_RESTORES, name, cluster.ns)
    wait_for(lambda: cluster.kube.get_or_none(k.PVC_RESTORES, name, cluster.ns) is None,
             message=f"{name} to be deleted after cleanup")


def test_delete_in_initialize_and_restore(cluster, controller):
    sc.setup(cluster, result="Hang")
    # (the default holds after partial data: test_partial_data.py)
    sc.create_restore(cluster, "first", partialData="ScaleBack")
    time.sleep(1.1)
    sc.create_restore(cluster, "second")
    controller(restore_timeout=600)
    sc.wait_phase(cluster, "first", "Restore")
    wait_for(lambda: status(cluster, "second").get("lockHolder") == "first", message="second to wait")
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 0
    _delete_and_wait_gone(cluster, "second")  # waiting in Initialize: nothing to undo, first unaffected
    assert status(cluster, "first")["phase"] == "Restore"
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 0
    _delete_and_wait_gone(cluster, "first")  # mid-restore: workloads back, destination and lock gone
    sc.assert_cleaned_up(cluster)


def test_delete_in_scale_down(cluster, controller):
    cluster.pvc(sc.PVC)
    cluster.replication_source(sc.SOURCE, sc.PVC)
    cluster.simulate(snapshots={sc.REPOSITORY: sc.SNAPSHOTS})
    template = cluster.pod_template("web", sc.PVC)
    template["metadata"]["finalizers"] = ["example.com/hold"]  # pods stay Terminating: ScaleDown must wait
    cluster.kube.create(k.DEPLOYMENTS, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": cluster.ns},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template}}, cluster.ns)
    cluster.wait_running(2, pvc=sc.PVC)
    sc.create_restore(cluster, "r1")
    controller()
    wait_for(lambda: "waiting for 2 pod(s)" in (status(cluster, "r1").get("message") or ""),
             message="ScaleDown to wait for the terminating pods")
    assert status(cluster, "r1")["phase"] == "ScaleDown"
    assert cluster.kube.list(k.REPLICATION_DESTINATIONS, cluster.ns) == []
    _delete_and_wait_gone(cluster, "r1")
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 2
    assert cluster.kube.get_or_none(k.CONFIGMAPS, locks.lock_name(sc.PVC), cluster.ns) is None
    assert not cluster.kube.get(k.REPLICATION_SOURCES, sc.SOURCE, cluster.ns)["spec"].get("paused")
    for pod in cluster.pods():
        cluster.kube.patch(k.PODS, pod["metadata"]["name"], cluster.ns, {"metadata": {"finalizers": None}})


def test_scale_down_timeout(cluster, controller):
    cluster.pvc(sc.PVC)
    cluster.replication_source(sc.SOURCE, sc.PVC)
    template = cluster.pod_template("web", sc.PVC)
    template["metadata"]["finalizers"] = ["example.com/hold"]
    cluster.kube.create(k.DEPLOYMENTS, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": cluster.ns},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template}}, cluster.ns)
    cluster.wait_running(1, pvc=sc.PVC)
    sc.create_restore(cluster, "r1")
    controller(scale_down_timeout=2)
    restore = sc.wait_finished(cluster, "r1")
    assert restore["status"]["error"].startswith("timed out after 2s waiting for pods to stop")
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 1
    for pod in cluster.pods():
        cluster.kube.patch(k.PODS, pod["metadata"]["name"], cluster.ns, {"metadata": {"finalizers": None}})
