"""The restore workflow end to end on the real control plane: triggers, snapshot selection, scaling."""

from __future__ import annotations

import pytest

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import model
from kubectl_pvc_restore.model import RESTORE_ANNOTATION
from tests import scenario as sc
from tests.helpers import wait_for


def test_annotation_restores_latest_with_workloads_down(cluster, controller, control_plane):
    sc.setup(cluster)
    controller()
    sc.annotate(cluster, "")
    restore = sc.wait_finished(cluster)
    status = restore["status"]
    assert status.get("error") is None, status
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
    table = control_plane.kubectl("get", "pvcrestores", "-n", cluster.ns).stdout
    assert "ERROR" in table and "<no value>" not in table, table  # absent: an empty cell


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
    assert restore["status"].get("error") is None
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


BAD_VALUES = ["abc", "-1", "2024-13-45", "2999-01-01T00:00:00Z", "1.5", "2024-05-01 10:00", "01", " 1", "   ",
              "0001-01-01T00:00:00Z", "1" * 10_000]


def test_invalid_annotations_are_refused_removed_and_reported(cluster, controller):
    """Each bad value: one Warning Event (its reason at the start), the annotation removed (so it can never act
    later, as a future time would once it is past), nothing created or scaled; the same bad value added again is
    reported again."""
    sc.setup(cluster, statefulset=0, deployment=1)
    controller()

    def warnings():
        events = cluster.kube.list(k.EVENTS, cluster.ns)
        return sorted((e for e in events if e["reason"] == "InvalidRestoreAnnotation"),
                      key=lambda e: e["metadata"]["creationTimestamp"] + e["metadata"]["name"])

    def annotations():
        return cluster.kube.get(k.PVCS, "data", cluster.ns)["metadata"].get("annotations") or {}

    seen = 0
    for value in BAD_VALUES + ["abc"]:
        sc.annotate(cluster, value)
        got = wait_for(lambda seen=seen: (lambda w: w if len(w) == seen + 1 else None)(warnings()),
                       message=f"a Warning Event for {value[:20]!r}")
        seen += 1
        # Events carry second-resolution times: find this value's by its text, not by its order.
        shown = repr(value[:64]) if value.strip() else "only whitespace"
        [event] = [e for e in got if shown in e["message"]][-1:]
        assert event["type"] == "Warning" and event["involvedObject"]["name"] == "data"
        assert event["message"].startswith("Refused restore annotation: ")
        assert len(event["message"]) < 600, "a long value must not bury the reason"
        wait_for(lambda: model.RESTORE_ANNOTATION not in annotations(), message="the bad annotation removed")
    import time
    time.sleep(1.0)  # several polls
    assert len(warnings()) == seen, "a warning must not repeat on every poll"
    assert len([e for e in warnings() if "'abc'" in e["message"]]) == 2, "the same bad value again: a new warning"
    assert sc.restores(cluster) == []
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 1
    assert cluster.kube.list(k.REPLICATION_DESTINATIONS, cluster.ns) == []
    assert cluster.kube.list(k.CONFIGMAPS, cluster.ns,
                             label_selector="pvc-restore.homelab-helper.benfiola.com/lock") == []
