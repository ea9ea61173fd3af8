"""The restore workflow end to end on the real control plane: triggers, snapshot selection, scaling."""

from __future__ import annotations

import pytest

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import model
from kubectl_pvc_restore.model import RESTORE_ANNOTATION
from tests import scenario as sc
from tests.helpers import wait_for


def test_annotation_restores_latest_with_workloads_down(cluster, controller):
    sc.setup(cluster)
    controller()
    sc.annotate(cluster, "")
    restore = sc.wait_finished(cluster)
    status = restore["status"]
    assert status["error"] is None, status
    assert status["restoredSnapshot"] == "cccc3333"
    assert restore["metadata"]["name"].startswith("data-")
    assert restore["spec"] == {"pvc": "data"}
    owners = {(o["kind"], o["name"]): o["replicas"] for o in status["pvcOwners"]}
    assert owners == {("Deployment", "web"): 3, ("StatefulSet", "db"): 2}
    record = cluster.simulator_record(status["replicationDestination"])
    assert record["snapshot"] == "cccc3333"
    assert record["podsMountingPVC"] == [], "the mover ran while pods still mounted the PVC"
    pvc = cluster.kube.get(k.PVCS, sc.PVC, cluster.ns)
    assert RESTORE_ANNOTATION not in (pvc["metadata"].get("annotations") or {})
    assert restore["metadata"].get("finalizers") in (None, [])
    assert [c["reason"] for c in status["conditions"] if c["type"] == "Ready"] == ["Succeeded"]
    sc.assert_cleaned_up(cluster)
    assert len(sc.restores(cluster)) == 1


@pytest.mark.parametrize("how,spec,expected", [
    ("create", {"previous": 1}, "bbbb2222"),
    ("create", {"restoreAsOf": "2024-05-02T12:00:00Z"}, "bbbb2222"),
    ("annotation", "2", "aaaa1111"),
    ("annotation", "2024-05-01T23:59:59+02:00", "aaaa1111"),
])
def test_snapshot_selection(cluster, controller, how, spec, expected):
    sc.setup(cluster, statefulset=0, deployment=1)
    controller()
    if how == "create":
        cluster.kube.create(k.PVC_RESTORES, model.manifest("r1", cluster.ns, model.Spec.from_dict(
            {"pvc": "data", **spec})), cluster.ns)
    else:
        sc.annotate(cluster, spec)
    restore = sc.wait_finished(cluster)
    assert restore["status"]["error"] is None
    assert restore["status"]["restoredSnapshot"] == expected
    assert cluster.simulator_record(restore["status"]["replicationDestination"])["snapshot"] == expected
    sc.assert_cleaned_up(cluster, deployment=1, statefulset=0)


@pytest.mark.parametrize("spec", [{"previous": 3}, {"restoreAsOf": "2024-04-01T00:00:00Z"}])
def test_selector_matching_no_snapshot_is_an_error(cluster, controller, spec):
    sc.setup(cluster, statefulset=0, deployment=2)
    controller()
    cluster.kube.create(k.PVC_RESTORES, model.manifest("r1", cluster.ns, model.Spec.from_dict(
        {"pvc": "data", **spec})), cluster.ns)
    restore = sc.wait_finished(cluster, "r1")
    assert "no snapshot matched the selector" in restore["status"]["error"]
    assert restore["status"]["restoredSnapshot"] is None
    sc.assert_cleaned_up(cluster, deployment=2, statefulset=0)


@pytest.mark.parametrize("value", ["abc", "-1", "2024-13-45", "2999-01-01T00:00:00Z", "1.5", "2024-05-01 10:00"])
def test_invalid_annotation_creates_nothing_and_warns(cluster, controller, value):
    sc.setup(cluster, statefulset=0, deployment=1)
    controller()
    sc.annotate(cluster, value)

    def warning():
        events = cluster.kube.list(k.EVENTS, cluster.ns)
        return [e for e in events if e["reason"] == "InvalidRestoreAnnotation"]

    [event] = wait_for(warning, message="a Warning Event on the PVC")
    assert event["type"] == "Warning" and event["involvedObject"]["name"] == "data"
    assert repr(value) in event["message"]
    import time
    time.sleep(1.0)  # several polls
    assert sc.restores(cluster) == []
    assert len(warning()) == 1, "the warning must not repeat on every poll"
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 1
    assert cluster.kube.list(k.REPLICATION_DESTINATIONS, cluster.ns) == []
    assert cluster.kube.list(k.CONFIGMAPS, cluster.ns, label_selector="pvc-restore.homelab-helper.benfiola.com/lock") == []
