"""The foundation: the local control plane is a real Kubernetes (versions, CRD validation, controllers, kwok nodes,
the scale subresource) and the mover simulator behaves as volsync does at the API level."""

from __future__ import annotations

import pytest

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import model
from tests.helpers import wait_for


def test_servers_report_their_real_version(control_plane, kube):
    version = kube.version()
    assert version["gitVersion"] == (control_plane.cache / "version").read_text().strip()
    assert version["major"] == "1" and int(version["minor"]) >= 34
    nodes = kube.list(k.Resource("v1", "Node", "nodes", namespaced=False))
    assert len(nodes) == control_plane.nodes
    assert all(any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]) for n in nodes)


def test_volsync_crds_are_the_real_ones(kube):
    for plural in ("replicationsources", "replicationdestinations"):
        crd = kube.get(k.CRDS, f"{plural}.volsync.backube")
        version = crd["spec"]["versions"][0]
        assert version["name"] == "v1alpha1"
        restic = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["restic"]
        assert "repository" in restic["properties"]
    rd = kube.get(k.CRDS, "replicationdestinations.volsync.backube")
    restic = rd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["restic"]
    assert {"previous", "restoreAsOf", "enableFileDeletion", "destinationPVC"} <= set(restic["properties"])


def test_api_server_enforces_the_pvcrestore_cel_rules(kube, namespace):
    both = model.manifest("both", namespace, model.Spec(pvc="data", previous=1, restore_as_of="2024-01-01T00:00:00Z"))
    with pytest.raises(k.Invalid, match="previous and restoreAsOf are mutually exclusive"):
        kube.create(k.PVC_RESTORES, both, namespace)
    assert kube.get_or_none(k.PVC_RESTORES, "both", namespace) is None

    bad_time = model.manifest("bad-time", namespace, model.Spec(pvc="data", restore_as_of="2024-13-45"))
    with pytest.raises(k.Invalid, match="restoreAsOf"):
        kube.create(k.PVC_RESTORES, bad_time, namespace)

    ok = kube.create(k.PVC_RESTORES, model.manifest("ok", namespace, model.Spec(pvc="data", previous=2)), namespace)
    assert ok["spec"] == {"pvc": "data", "previous": 2}
    with pytest.raises(k.Invalid, match="spec is immutable"):
        kube.patch(k.PVC_RESTORES, "ok", namespace, {"spec": {"previous": 3}})
    assert kube.get(k.PVC_RESTORES, "ok", namespace)["spec"]["previous"] == 2


def test_deployment_runs_pods_and_scaling_to_zero_terminates_them(cluster, kube):
    cluster.pvc("data")
    cluster.deployment("web", replicas=2, pvc="data")
    pods = cluster.wait_running(2, pvc="data")
    owners = {ref["kind"] for p in pods for ref in p["metadata"]["ownerReferences"]}
    assert owners == {"ReplicaSet"}
    [rs] = kube.list(k.REPLICASETS, cluster.ns)
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    nodes = {n["metadata"]["name"] for n in kube.list(k.Resource("v1", "Node", "nodes", namespaced=False))}
    assert {p["spec"].get("nodeName") for p in pods} <= nodes

    # The scale subresource, through the kr8s-based access layer.
    scale = kube.get_scale(k.DEPLOYMENTS, "web", cluster.ns)
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 2
    kube.set_scale(k.DEPLOYMENTS, "web", cluster.ns, 0)
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 0
    wait_for(lambda: cluster.pods(pvc="data") == [], timeout=60, message="the pods to terminate")

    kube.set_scale(k.DEPLOYMENTS, "web", cluster.ns, 1)
    cluster.wait_running(1, pvc="data")


def test_statefulset_pods_run_on_kwok_nodes(cluster):
    cluster.pvc("db-data")
    cluster.statefulset("db", replicas=2, pvc="db-data")
    pods = cluster.wait_running(2, pvc="db-data")
    assert sorted(p["metadata"]["name"] for p in pods) == ["db-0", "db-1"]


SNAPSHOTS = [
    {"id": "aaaa1111", "time": "2024-05-01T10:00:00Z"},
    {"id": "bbbb2222", "time": "2024-05-02T10:00:00Z"},
    {"id": "cccc3333", "time": "2024-05-03T10:00:00Z"},
]


def _destination(cluster, name, trigger, **restic):
    return cluster.kube.create(k.REPLICATION_DESTINATIONS, {
        "apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationDestination",
        "metadata": {"name": name, "namespace": cluster.ns},
        "spec": {"trigger": {"manual": trigger},
                 "restic": {"repository": "repo", "copyMethod": "Direct", "destinationPVC": "data", **restic}},
    }, cluster.ns)


def _wait_synced(cluster, name, trigger):
    return wait_for(lambda: (lambda rd: rd if rd.get("status", {}).get("lastManualSync") == trigger else None)(
        cluster.kube.get(k.REPLICATION_DESTINATIONS, name, cluster.ns)), timeout=30, message=f"{name} to sync")


@pytest.mark.parametrize("restic,expected", [
    ({}, "cccc3333"),
    ({"previous": 1}, "bbbb2222"),
    ({"restoreAsOf": "2024-05-02T12:00:00Z"}, "bbbb2222"),
    ({"restoreAsOf": "2024-05-02T12:00:00Z", "previous": 1}, "aaaa1111"),
    ({"previous": 3}, None),
    ({"restoreAsOf": "2024-04-01T00:00:00Z"}, None),
])
def test_mover_simulator_selects_snapshots_like_restic(cluster, restic, expected):
    cluster.simulate(snapshots={"repo": SNAPSHOTS}, delay=0.2)
    _destination(cluster, "rd", "t1", **restic)
    rd = _wait_synced(cluster, "rd", "t1")
    status = rd["status"]
    assert status["latestMoverStatus"]["result"] == "Successful"
    assert status["lastSyncTime"] and "lastSyncStartTime" not in status  # volsync clears it when a sync ends
    assert status["conditions"][0]["type"] == "Synchronizing"
    if expected:  # volsync's log filter keeps restic's line, not entry.sh's "Selected restic snapshot with id:"
        assert f"restoring snapshot {expected[:8]} of [/data]" in status["latestMoverStatus"]["logs"]
        assert "Selected restic snapshot" not in status["latestMoverStatus"]["logs"]
    else:
        assert "No eligible snapshots found" in status["latestMoverStatus"]["logs"]
    # The simulator sets the destination's status first and writes its record after: wait for the record too.
    record = wait_for(lambda: (lambda r: r if r and r["trigger"] == "t1" else None)(cluster.simulator_record("rd")),
                      timeout=30, message="the simulator's record of rd")
    assert record["snapshot"] == expected


def test_mover_simulator_fails_and_hangs_on_demand(cluster):
    cluster.simulate(snapshots={"repo": SNAPSHOTS}, result="Failed", delay=0.2)
    _destination(cluster, "failing", "t1")
    # As volsync: a failed sync never sets lastManualSync; latestMoverStatus says Failed, with the attempt's log.
    rd = wait_for(lambda: (lambda rd: rd if (rd.get("status", {}).get("latestMoverStatus") or {}).get("result")
                           else None)(cluster.kube.get(k.REPLICATION_DESTINATIONS, "failing", cluster.ns)),
                  timeout=30, message="the failing sync to report")
    assert rd["status"]["latestMoverStatus"]["result"] == "Failed" and "lastManualSync" not in rd["status"]
    assert "simulated failure" in rd["status"]["latestMoverStatus"]["logs"]

    cluster.simulate(snapshots={"repo": SNAPSHOTS}, result="Hang", delay=0.0)
    _destination(cluster, "hanging", "t1")
    wait_for(lambda: cluster.kube.get(k.REPLICATION_DESTINATIONS, "hanging", cluster.ns).get("status", {})
             .get("lastSyncStartTime"), message="the hanging sync to start")
    import time
    time.sleep(1.0)
    status = cluster.kube.get(k.REPLICATION_DESTINATIONS, "hanging", cluster.ns)["status"]
    assert "lastManualSync" not in status and status["conditions"][0]["reason"] == "SyncInProgress"
