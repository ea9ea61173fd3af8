"""The chart's restore guard on the real API server: while a restore's lock says ``guard: on``, the API server itself
refuses scaling up a held workload (through /scale or the workload) and pods that mount the PVC, except volsync's
mover and the controller's own scale-up in Finalize.

Each test installs the chart's policies for its own namespace only (admissionPolicies.namespaceSelector), so the rest
of the suite is not affected.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import locks, model
from tests import scenario as sc
from tests.helpers import SyncKube, identity_kubeconfig, render_chart_for_namespace, wait_for

CHART = Path(__file__).resolve().parents[1] / "charts" / "pvc-restore"
RCS = k.Resource("v1", "ReplicationController", "replicationcontrollers")


class Installed:
    def __init__(self, release: str, namespace: str, account: str) -> None:
        self.release = release
        self.account = account
        self.username = f"system:serviceaccount:{namespace}:{account}"




@pytest.fixture(scope="session")
def configmap_params_kept(control_plane):
    """Kubernetes bug (kubernetes/kubernetes#130887, still in 1.36): the API server stops its ConfigMap param
    informer for good once no binding uses ConfigMap params, and a policy bound again later reads a frozen copy
    until the API server restarts. The session's control plane fixture (tests/conftest.py) applies a binding that
    matches nothing, before any test, so ConfigMap params stay in use whatever order the tests run in."""
    yield


@pytest.fixture
def guard_policies(cluster, control_plane, configmap_params_kept):
    """The chart rendered into the test's namespace (its ServiceAccount, RBAC and admission policies, scoped to this
    namespace; the mutating one left out), applied with kubectl; removed afterwards."""
    release = f"ag-{uuid.uuid4().hex[:6]}"
    docs = render_chart_for_namespace(control_plane, release, cluster.ns, "admissionPolicies.recordRequester=false")
    guard = [d for d in docs if d["kind"].startswith("ValidatingAdmissionPolicy")
             and d["metadata"]["name"].endswith("-guard")]
    assert len(guard) == 2, [d["metadata"]["name"] for d in docs]
    manifest = yaml.safe_dump_all(docs)
    control_plane.kubectl("apply", "-f", "-", input=manifest)
    account = next(d for d in docs if d["kind"] == "ServiceAccount")["metadata"]["name"]
    try:
        _wait_effective(cluster)
        yield Installed(release, cluster.ns, account)
    finally:
        control_plane.kubectl("delete", "--ignore-not-found", "--wait=false", "-f", "-", input=manifest, check=False)


def lock(cluster, pvc: str, *, holder: str = "someone", **data: str) -> dict:
    """A lock ConfigMap as the controller writes it (``held``/``guard`` given as keyword arguments)."""
    body = locks.lock_manifest(cluster.ns, pvc, holder, str(uuid.uuid4()), model.now())
    body["data"].update(data)
    return cluster.kube.create(k.CONFIGMAPS, body, cluster.ns)


def pod(cluster, name: str, pvc: str, owner: dict | None = None) -> dict:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": cluster.ns},
            "spec": cluster.pod_template(name, pvc)["spec"]}
    if owner is not None:
        body["metadata"]["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job", "controller": True,
                                                "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}]
    return cluster.kube.create(k.PODS, body, cluster.ns)


def _wait_effective(cluster) -> None:
    """Policies take effect a moment after they are created, and a lock a moment after it is written (the API server
    reads locks through its ConfigMap param informer): probe with a guarded lock of a PVC of no restore. The informer
    takes ConfigMap changes in order, so once it has the probe it has every lock written before it too."""
    probe = lock(cluster, "probe", holder="probe", held="", guard="on")
    attempt = iter(range(10_000))

    def refused() -> bool:
        name = f"probe-{next(attempt)}"
        try:
            pod(cluster, name, "probe")
        except k.Forbidden:
            return True
        cluster.kube.delete(k.PODS, name, cluster.ns)
        return False

    wait_for(refused, timeout=30, message="the restore guard to take effect (if an earlier test of this session "
             "deleted the only binding with ConfigMap params, the API server's param informer is stopped for good: "
             "kubernetes/kubernetes#130887)")
    cluster.kube.delete(k.CONFIGMAPS, probe["metadata"]["name"], cluster.ns)


def run_controller(controller_process, kube, kubeconfig, cluster, installed, tmp_path):
    path = identity_kubeconfig(kube, kubeconfig, cluster.ns, installed.account, tmp_path / "controller.kubeconfig")
    return controller_process(args=("--kubeconfig", path, "--namespace", cluster.ns, "--poll-interval", "0.2",
                                    "--health-address", "", "--metrics-address", ""))


def test_no_second_writer_during_a_restore(cluster, guard_policies, controller_process, kube, kubeconfig, tmp_path):
    ns = cluster.ns
    sc.setup(cluster, statefulset=0, deployment=2, delay=8.0)
    cluster.pvc("other")
    cluster.deployment("other", replicas=0, pvc="other")
    run_controller(controller_process, kube, kubeconfig, cluster, guard_policies, tmp_path)
    cluster.kube.create(k.PVC_RESTORES, model.manifest("r1", ns, model.Spec(pvc=sc.PVC)), ns)
    sc.wait_phase(cluster, "r1", "Restore")
    data = cluster.kube.get(k.CONFIGMAPS, locks.lock_name(sc.PVC), ns)["data"]
    assert data["held"] == "deployments/web" and data["guard"] == "on" and data["holder"] == "r1", data
    _wait_effective(cluster)  # the API server has read that lock (it was written a moment before the phase)
    look = f"kubectl pvc-restore describe r1 -n {ns}"

    # As the cluster admin: the held Deployment cannot be scaled up, by /scale or by the Deployment itself.
    with pytest.raises(k.Forbidden, match="restore r1") as refused:
        cluster.kube.set_scale(k.DEPLOYMENTS, "web", ns, 3)
    assert "scaling deployments/web up (0 -> 3)" in str(refused.value) and look in str(refused.value)
    with pytest.raises(k.Forbidden, match="restore r1"):
        cluster.kube.patch(k.DEPLOYMENTS, "web", ns, {"spec": {"replicas": 1}})
    # Leaving the replicas alone (or at 0) is fine.
    cluster.kube.patch(k.DEPLOYMENTS, "web", ns, {"metadata": {"labels": {"edited": "yes"}}})
    cluster.kube.set_scale(k.DEPLOYMENTS, "web", ns, 0)
    # No bare pod may mount the PVC; another PVC, and another Deployment, are not the restore's business.
    with pytest.raises(k.Forbidden, match="restore r1") as refused:
        pod(cluster, "intruder", sc.PVC)
    assert f"mounts PVC {sc.PVC}" in str(refused.value) and look in str(refused.value)
    pod(cluster, "bystander", "other")
    cluster.kube.set_scale(k.DEPLOYMENTS, "other", ns, 1)
    assert cluster.replicas(k.DEPLOYMENTS, "other") == 1
    # All of that happened while the restore guarded the PVC.
    assert cluster.kube.get(k.PVC_RESTORES, "r1", ns)["status"]["phase"] == "Restore"
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 0
    assert cluster.kube.get_or_none(k.PODS, "intruder", ns) is None

    # The controller's own scale-up in Finalize passes, and nothing it would have had to stop again was there.
    done = sc.wait_finished(cluster, "r1")
    assert done["status"].get("error") is None, done["status"]
    sc.assert_cleaned_up(cluster, statefulset=0, deployment=2)
    # The lock is gone: the admin scales freely again.
    cluster.kube.set_scale(k.DEPLOYMENTS, "web", ns, 3)
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 3


def test_volsync_movers_may_mount_the_locked_pvc(cluster, guard_policies):
    cluster.pvc(sc.PVC)
    lock(cluster, sc.PVC, holder="r1", held="", guard="on")
    _wait_effective(cluster)

    def job(name: str) -> dict:
        return cluster.kube.create(k.JOBS, {
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": cluster.ns},
            "spec": {"suspend": True, "template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "mover", "image": "registry.example/mover:1"}]}}},
        }, cluster.ns)

    # volsync's Job names: volsync-dst-<destination> (restic), volsync-rclone-dst-<destination> (rclone), and the
    # source's mover that takes the safety backup before the restore writes.
    for name in ("volsync-dst-r1-abc", "volsync-rclone-dst-r1-abc", "volsync-src-data-backup"):
        pod(cluster, f"{name}-pod", sc.PVC, owner=job(name))
    assert {p["metadata"]["name"] for p in cluster.pods(pvc=sc.PVC)} == {
        "volsync-dst-r1-abc-pod", "volsync-rclone-dst-r1-abc-pod", "volsync-src-data-backup-pod"}
    # The same pod of any other Job, or of none, is refused.
    with pytest.raises(k.Forbidden, match="only the volsync mover may use the PVC"):
        pod(cluster, "impostor", sc.PVC, owner=job("backup-dst-r1-abc"))
    with pytest.raises(k.Forbidden, match="only the volsync mover may use the PVC"):
        pod(cluster, "bare", sc.PVC)


def test_what_the_lock_says_is_what_is_guarded(cluster, guard_policies, portal, kube, kubeconfig, tmp_path):
    ns = cluster.ns
    cluster.pvc(sc.PVC)
    cluster.statefulset("db", replicas=0, pvc=sc.PVC)
    cluster.kube.create(RCS, {"apiVersion": "v1", "kind": "ReplicationController",
                              "metadata": {"name": "legacy", "namespace": ns},
                              "spec": {"replicas": 2, "selector": {"app": "legacy"},
                                       "template": cluster.pod_template("legacy", None)}}, ns)
    # A lock of an older controller (no held/guard keys) guards nothing.
    old = lock(cluster, sc.PVC, holder="r0")
    cluster.kube.set_scale(k.STATEFULSETS, "db", ns, 1)
    cluster.kube.set_scale(k.STATEFULSETS, "db", ns, 0)
    pod(cluster, "early", sc.PVC)
    cluster.kube.delete(k.PODS, "early", ns)
    cluster.kube.delete(k.CONFIGMAPS, old["metadata"]["name"], ns)

    current = lock(cluster, sc.PVC, holder="r1", held="replicationcontrollers/legacy statefulsets/db", guard="on")
    name = current["metadata"]["name"]

    # The API server reads a new lock through its ConfigMap param informer, a moment after it is created (longer on
    # a loaded machine): ask until it refuses, undoing a scale-up that came before it saw the lock.
    def refusal() -> str | None:
        try:
            cluster.kube.set_scale(k.STATEFULSETS, "db", ns, 2)
        except k.Forbidden as exc:
            return str(exc)
        cluster.kube.set_scale(k.STATEFULSETS, "db", ns, 0)
        return None

    refused = wait_for(refusal, timeout=30, message="the guard to see the new lock")
    assert "scaling statefulsets/db up (0 -> 2) is refused: restore r1" in refused, refused
    # Lowering is allowed, raising again is not, whichever way it is asked.
    cluster.kube.set_scale(RCS, "legacy", ns, 1)
    with pytest.raises(k.Forbidden, match=r"replicationcontrollers/legacy up \(1 -> 2\)"):
        cluster.kube.set_scale(RCS, "legacy", ns, 2)
    with pytest.raises(k.Forbidden, match=r"replicationcontrollers/legacy up \(1 -> 3\)"):
        cluster.kube.patch(RCS, "legacy", ns, {"spec": {"replicas": 3}})
    # Deleted and created again with replicas: still a second writer.
    cluster.kube.delete(k.STATEFULSETS, "db", ns)
    wait_for(lambda: cluster.kube.get_or_none(k.STATEFULSETS, "db", ns) is None, message="db to be deleted")
    with pytest.raises(k.Forbidden, match=r"scaling statefulsets/db up \(0 -> 1\)"):
        cluster.statefulset("db", replicas=1, pvc=sc.PVC)
    cluster.statefulset("db", replicas=0, pvc=sc.PVC)
    # The controller's ServiceAccount (the chart's RBAC) is not refused: it scales the workloads back itself.
    path = identity_kubeconfig(kube, kubeconfig, ns, guard_policies.account, tmp_path / "controller.kubeconfig")
    controller = SyncKube(portal, portal.call(lambda: k.Kube.connect(kubeconfig=path)))
    controller.set_scale(k.STATEFULSETS, "db", ns, 1)
    controller.set_scale(k.STATEFULSETS, "db", ns, 0)

    # Guard off (Finalize starts): the workloads may come back, and pods may mount the PVC.
    cluster.kube.patch(k.CONFIGMAPS, name, ns, {"data": {"guard": "off"}})

    def allowed() -> bool:
        try:
            cluster.kube.set_scale(k.STATEFULSETS, "db", ns, 2)
        except k.Forbidden:
            return False
        return True

    wait_for(allowed, timeout=30, message="the guard to be switched off")
    cluster.kube.set_scale(RCS, "legacy", ns, 2)
    pod(cluster, "late", sc.PVC)


def test_the_guard_is_on_by_default_and_can_be_turned_off(control_plane):
    def guard_kinds(*args: str) -> list[str]:
        out = subprocess.run([str(control_plane.bin / "helm"), "template", "pr", str(CHART), "-n", "ops", *args],
                             capture_output=True, text=True, check=True).stdout
        return sorted(d["kind"] for d in yaml.safe_load_all(out)
                      if d and d["metadata"]["name"] == "pr-pvc-restore-guard")

    assert guard_kinds() == ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]
    assert guard_kinds("--set", "admissionPolicies.guard=false") == []
    assert guard_kinds("--set", "admissionPolicies.enabled=false") == []
    proc = subprocess.run([str(control_plane.bin / "helm"), "template", "pr", str(CHART), "--set",
                           "admissionPolicies.guard=yes"], capture_output=True, text=True)
    assert proc.returncode != 0 and "values don't meet the specifications of the schema" in proc.stderr
