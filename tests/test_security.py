"""Status is not trusted, names cannot escape, and bad specs change nothing: on the real API server.

The CRD's rules make the API server refuse, whoever writes, what the controller itself never does (a phase going
back, the recorded replicas or stops changed, a zero timeout, a time before 1970); the controller refuses what the
schema cannot know (a future restoreAsOf) and acts only on status records it could have written itself.
"""

from __future__ import annotations

import time

import pytest

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import model
from tests import scenario as sc


def put_status(cluster, name, **fields):
    """Replace the status as any writer could (retrying when the controller wrote in between)."""
    for _ in range(20):
        obj = cluster.kube.get(k.PVC_RESTORES, name, cluster.ns)
        obj["status"] = {**(obj.get("status") or {}), **fields}
        try:
            return cluster.kube.replace(k.PVC_RESTORES, obj, subresource="status")
        except k.Conflict:
            time.sleep(0.05)
    raise AssertionError("the status kept changing")


def generations(cluster, namespace=None):
    ns = namespace or cluster.ns
    return {(r.kind, o["metadata"]["name"]): o["metadata"]["generation"]
            for r in (k.DEPLOYMENTS, k.STATEFULSETS, k.REPLICATION_SOURCES) for o in cluster.kube.list(r, ns)}


def test_a_finished_restore_never_runs_again(cluster, controller):
    sc.setup(cluster, statefulset=0, deployment=2)
    controller()
    sc.create_restore(cluster)
    done = sc.wait_finished(cluster, "r1")
    assert done["status"].get("error") is None
    before = generations(cluster)
    for phase in ("Initialize", "ScaleDown", "Restore", "Finalize"):
        with pytest.raises(k.Invalid, match="cannot go back"):
            put_status(cluster, "r1", phase=phase)
    with pytest.raises(k.Invalid, match="cannot go back"):
        put_status(cluster, "r1", phase=None)
    time.sleep(1.0)  # several polls
    assert cluster.kube.get(k.PVC_RESTORES, "r1", cluster.ns)["status"]["phase"] == "Finished"
    assert generations(cluster) == before, "a finished restore touched a workload again"


def test_recorded_replicas_cannot_be_changed_during_the_restore(cluster, controller):
    sc.setup(cluster, statefulset=0, deployment=2, delay=3.0)
    controller()
    sc.create_restore(cluster)
    running = sc.wait_phase(cluster, "r1", "Restore")
    owners = running["status"]["pvcOwners"]
    assert owners == [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": cluster.ns,
                       "replicas": 2}]
    for changed in ([{**owners[0], "replicas": 7}], [], owners + [{**owners[0], "name": "victim"}],
                    [{**owners[0], "name": "../../default/deployments/victim"}],
                    [{**owners[0], "namespace": "default"}]):
        with pytest.raises(k.Invalid):
            put_status(cluster, "r1", pvcOwners=changed)
    with pytest.raises(k.Invalid):
        put_status(cluster, "r1", stopped=[{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "x",
                                            "namespace": cluster.ns, "method": "nodeSelector", "original": None}])
    done = sc.wait_finished(cluster, "r1")
    assert done["status"].get("error") is None
    sc.assert_cleaned_up(cluster, statefulset=0, deployment=2)


@pytest.mark.parametrize("spec,message", [
    ({"timeout": "0s"}, "timeout must be at least 1s"),
    ({"timeout": "0.5s"}, "timeout must be at least 1s"),
    ({"restoreAsOf": "0001-01-01T00:00:00Z"}, "before 1970"),
    ({"restoreAsOf": "1969-12-31T23:59:59Z"}, "before 1970"),
    ({"pvc": "../pods"}, "spec.pvc"),
    ({"previous": -1}, "spec.previous"),
])
def test_the_api_server_refuses_bad_specs(cluster, spec, message):
    with pytest.raises(k.Invalid, match=message):
        cluster.kube.create(k.PVC_RESTORES, {"apiVersion": model.API_VERSION, "kind": model.KIND,
                                             "metadata": {"name": "bad", "namespace": cluster.ns},
                                             "spec": {"pvc": "data", **spec}}, cluster.ns)
    assert cluster.kube.list(k.PVC_RESTORES, cluster.ns) == []


def test_a_future_restore_as_of_touches_nothing(cluster, controller):
    sc.setup(cluster, statefulset=0, deployment=2)
    before = generations(cluster)
    controller()
    future = model.format_time(model.now().replace(year=model.now().year + 1))
    sc.create_restore(cluster, restoreAsOf=future)
    done = sc.wait_finished(cluster, "r1")
    assert done["status"]["error"] == f"spec.restoreAsOf {future!r} is in the future; no snapshot can be that new; " \
                                      "nothing was touched"
    assert generations(cluster) == before
    sc.assert_cleaned_up(cluster, statefulset=0, deployment=2)


def test_untrusted_status_records_are_never_acted_on(cluster, controller, kube):
    """Records the controller could not have written (another namespace, a kind it never scales or stops, a name
    that is not one) are skipped and reported, whatever replicas they ask for; the real workloads come back."""
    sc.setup(cluster, statefulset=0, deployment=2)
    other = f"{cluster.ns}-victim"[:63].rstrip("-")
    kube.create(k.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}})
    try:
        victim = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "victim", "namespace": other},
                  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "victim"}},
                           "template": cluster.pod_template("victim", None)}}
        kube.create(k.DEPLOYMENTS, victim, other)
        sc.create_restore(cluster)
        # Before any controller runs: a status that goes straight to Finalize with hostile records (the CRD's rules
        # allow a first status; the chart's admission policy would refuse this writer).
        put_status(cluster, "r1", phase="Finalize", pvcOwners=[
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "victim", "namespace": other, "replicas": 9},
            {"apiVersion": "v1", "kind": "Secret", "name": "web", "namespace": cluster.ns, "replicas": 9},
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": cluster.ns, "replicas": 2},
        ], stopped=[
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "web", "namespace": other,
             "method": "nodeSelector", "original": None},
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": cluster.ns,
             "method": "suspend", "original": "true"},
        ], replicationDestination="someone-elses")
        cluster.kube.create(k.REPLICATION_DESTINATIONS, {
            "apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationDestination",
            "metadata": {"name": "someone-elses", "namespace": cluster.ns},
            "spec": {"trigger": {"manual": "x"}, "restic": {"repository": "r", "copyMethod": "Direct",
                                                            "destinationPVC": "data"}}}, cluster.ns)
        victim_generation = kube.get(k.DEPLOYMENTS, "victim", other)["metadata"]["generation"]
        web_generation = cluster.kube.get(k.DEPLOYMENTS, "web", cluster.ns)["metadata"]["generation"]
        controller()
        done = sc.wait_finished(cluster, "r1")
        notes = done["status"]["notes"]
        assert any(f"in namespace '{other}'" in n and "its own namespace" in n for n in notes), notes
        assert any("v1 Secret" in n and "not a kind this controller scales" in n for n in notes), notes
        assert any("'suspend' on a apps/v1 Deployment" in n for n in notes), notes
        assert any("DaemonSet web in namespace" in n for n in notes), notes
        assert kube.get(k.DEPLOYMENTS, "victim", other)["metadata"]["generation"] == victim_generation
        assert kube.get(k.DEPLOYMENTS, "victim", other)["spec"]["replicas"] == 1
        assert cluster.kube.get(k.DEPLOYMENTS, "web", cluster.ns)["metadata"]["generation"] == web_generation
        assert cluster.kube.get_or_none(k.REPLICATION_DESTINATIONS, "someone-elses", cluster.ns) is not None
        events = [e for e in cluster.kube.list(k.EVENTS, cluster.ns) if e["reason"] == "UntrustedStatus"]
        assert len(events) == 4 and all(e["type"] == "Warning" for e in events)
    finally:
        kube.delete(k.NAMESPACES, other)


def test_names_cannot_leave_their_api_path(cluster, kube):
    """The last line of defence: the kube layer refuses before any request is made."""
    cm = cluster.kube.create(k.CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                            "metadata": {"name": "x", "namespace": cluster.ns}}, cluster.ns)
    hostile = f"../../../../../../api/v1/namespaces/{cluster.ns}/configmaps/x"
    for call in (lambda: kube.delete(k.PVC_RESTORES, hostile, cluster.ns),
                 lambda: kube.delete(k.PVC_RESTORES, "", cluster.ns),
                 lambda: kube.get(k.PVCS, "../pods", cluster.ns),
                 lambda: kube.patch(k.PVCS, "data", "../kube-system", {}),
                 lambda: kube.resource_for("../../api/v1/namespaces/x/secrets", "Secret")):
        with pytest.raises(k.BadName):
            call()
    assert cluster.kube.get(k.CONFIGMAPS, "x", cluster.ns)["metadata"]["uid"] == cm["metadata"]["uid"]


def test_scaled_kinds_come_from_a_known_set(cluster, controller, kube):
    """A workload kind with /scale that is not a built-in one is scaled only when the controller is told to
    (--extra-scale-kind); otherwise the restore fails before touching anything."""
    import uuid

    from tests.helpers import wait_for

    group = f"w{uuid.uuid4().hex[:8]}.example.com"
    crds = k.Resource("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions",
                      namespaced=False)
    kube.create(crds, {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "subresources": {"scale": {"specReplicasPath": ".spec.replicas",
                                                          "statusReplicasPath": ".status.replicas"}},
                               "schema": {"openAPIV3Schema": {"type": "object",
                                                              "x-kubernetes-preserve-unknown-fields": True}}}]}})
    try:
        widgets = k.Resource(f"{group}/v1", "Widget", "widgets")
        wait_for(lambda: _served(kube, widgets, cluster.ns), message="the Widget CRD served")
        sc.setup(cluster, statefulset=0, deployment=0)
        widget = cluster.kube.create(widgets, {"apiVersion": f"{group}/v1", "kind": "Widget",
                                               "metadata": {"name": "w", "namespace": cluster.ns},
                                               "spec": {"replicas": 2}}, cluster.ns)
        template = cluster.pod_template("w", sc.PVC)
        cluster.kube.create(k.PODS, {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"], "metadata": {
            "name": "w-0", "namespace": cluster.ns, "ownerReferences": [{
                "apiVersion": f"{group}/v1", "kind": "Widget", "name": "w", "uid": widget["metadata"]["uid"],
                "controller": True}]}}, cluster.ns)
        cluster.wait_running(1, pvc=sc.PVC)

        ctl = controller()
        sc.create_restore(cluster, "r1")
        failed = sc.wait_finished(cluster, "r1")
        assert "Widget w mounts the PVC but is not a kind this controller scales" in failed["status"]["error"]
        assert f"--extra-scale-kind {group}/v1/Widget" in failed["status"]["error"]
        assert cluster.kube.get(widgets, "w", cluster.ns)["spec"]["replicas"] == 2

        import dataclasses

        ctl.settings = dataclasses.replace(ctl.settings, extra_scale_kinds=frozenset({(f"{group}/v1", "Widget")}))
        sc.create_restore(cluster, "r2")
        # The widget has no controller of its own here: play it, and remove its pod once it is scaled to 0.
        wait_for(lambda: cluster.kube.get(widgets, "w", cluster.ns)["spec"]["replicas"] == 0,
                 message="the Widget scaled to 0")
        cluster.kube.delete(k.PODS, "w-0", cluster.ns)
        done = sc.wait_finished(cluster, "r2")
        assert done["status"].get("error") is None, done["status"]
        assert cluster.kube.get(widgets, "w", cluster.ns)["spec"]["replicas"] == 2
    finally:
        kube.delete(crds, f"widgets.{group}")


def _served(kube, res, namespace):
    try:
        kube.list(res, namespace)
        return True
    except k.KubeError:
        return False


def test_the_timeline_only_grows(cluster):
    """status.timeline's rule (written without CEL's list slice(), which Kubernetes 1.34 lacks: scripts/compat.sh
    runs this there): entries are appended, never changed, removed or reordered."""
    sc.create_restore(cluster)
    entries = [{"phase": p, "at": f"2024-05-01T10:00:0{i}Z"}
               for i, p in enumerate(["Initialize", "ScaleDown", "Restore", "Finalize", "Finished"])]
    put_status(cluster, "r1", timeline=entries[:1])
    put_status(cluster, "r1", timeline=entries[:3])
    for bad in (entries[:2],                                          # removed
                [entries[0], entries[2], entries[1]],                 # reordered
                [{**entries[0], "at": "2024-05-01T09:00:00Z"}, *entries[1:3]],  # changed
                [entries[1], entries[2]]):                             # the first removed
        with pytest.raises(k.Invalid, match="status.timeline only grows"):
            put_status(cluster, "r1", timeline=bad)
    put_status(cluster, "r1", timeline=entries)
    assert cluster.kube.get(k.PVC_RESTORES, "r1", cluster.ns)["status"]["timeline"] == entries
    with pytest.raises(k.Invalid):  # maxItems: 5, one per phase
        put_status(cluster, "r1", timeline=[*entries, entries[-1]])
