"""The chart's admission policies on the real API server, with real identities (ServiceAccount tokens): only the
controller writes PVCRestore status; the restore annotation needs the right to create PVCRestores; who asked for a
restore is recorded by the API server (MutatingAdmissionPolicy) and cannot be forged. On a server without the
MutatingAdmissionPolicy v1 API (Kubernetes < 1.36: scripts/compat.sh runs these there) the chart leaves the requester
policy out: nothing is recorded, and naming anyone but yourself is still refused.

Each test installs the policies for its own namespace only (the chart's admissionPolicies.namespaceSelector), so
the rest of the suite, which writes status as the cluster admin, is not affected.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import yaml

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import model
from tests import scenario as sc
from tests.helpers import SyncKube, bind_role, identity_kubeconfig, render_chart_for_namespace, wait_for

CHART = Path(__file__).resolve().parents[1] / "charts" / "pvc-restore"
REQUESTED_BY = model.REQUESTED_BY_ANNOTATION
PVCRESTORE_RULE = {"apiGroups": [model.GROUP], "resources": ["pvcrestores"], "verbs": ["get", "list", "create",
                                                                                       "patch"]}
PVC_RULE = {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["get", "list", "patch"]}


class Installed:
    def __init__(self, release: str, namespace: str, account: str, records: bool) -> None:
        self.release = release
        self.account = account
        self.username = f"system:serviceaccount:{namespace}:{account}"
        #: The requester MutatingAdmissionPolicy is installed: the API server records who asked.
        self.records = records


def serves_mutating_admission_policies(control_plane) -> bool:
    """The API server serves admissionregistration.k8s.io/v1 MutatingAdmissionPolicy (Kubernetes >= 1.36): what the
    chart's recordRequester: auto asks Helm."""
    import json

    group = json.loads(control_plane.kubectl("get", "--raw", "/apis/admissionregistration.k8s.io/v1").stdout)
    return any(r["name"] == "mutatingadmissionpolicies" for r in group.get("resources", []))


@pytest.fixture
def policies(cluster, control_plane, kubeconfig):
    """The chart rendered into the test's namespace: its ServiceAccount, RBAC and admission policies (scoped to this
    namespace), applied with kubectl; removed afterwards."""
    release = f"ap-{uuid.uuid4().hex[:6]}"
    records = serves_mutating_admission_policies(control_plane)
    docs = render_chart_for_namespace(control_plane, release, cluster.ns,
                                      f"admissionPolicies.recordRequester={str(records).lower()}")
    kinds = {d["kind"] for d in docs}
    assert {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} <= kinds, kinds
    assert ({"MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"} <= kinds) == records, kinds
    manifest = yaml.safe_dump_all(docs)
    control_plane.kubectl("apply", "-f", "-", input=manifest)
    account = next(d for d in docs if d["kind"] == "ServiceAccount")["metadata"]["name"]
    installed = Installed(release, cluster.ns, account, records)
    try:
        _wait_effective(cluster, mutating=records)
        yield installed
    finally:
        control_plane.kubectl("delete", "--ignore-not-found", "--wait=false", "-f", "-", input=manifest, check=False)


def _wait_effective(cluster, *, mutating: bool) -> None:
    """Policies take effect a moment after they are created: probe a PVC of no restore until both do."""
    cluster.kube.create(k.PVCS, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                 "metadata": {"name": "probe", "namespace": cluster.ns},
                                 "spec": {"accessModes": ["ReadWriteOnce"],
                                          "resources": {"requests": {"storage": "1Mi"}}}}, cluster.ns)
    attempt = iter(range(10_000))

    def validating() -> bool:
        try:
            cluster.kube.patch(k.PVCS, "probe", cluster.ns, {"metadata": {"annotations": {
                REQUESTED_BY: f"nobody-{next(attempt)}"}}})
        except k.Forbidden:
            return True
        return False

    wait_for(validating, timeout=30, message="the ValidatingAdmissionPolicies to take effect")

    def recorded() -> bool:
        pvc = cluster.kube.patch(k.PVCS, "probe", cluster.ns, {"metadata": {"annotations": {
            model.RESTORE_ANNOTATION: f"probe-{next(attempt)}", REQUESTED_BY: None}}})
        return REQUESTED_BY in (pvc["metadata"].get("annotations") or {})

    if mutating:
        wait_for(recorded, timeout=30, message="the MutatingAdmissionPolicy to take effect")
    cluster.kube.delete(k.PVCS, "probe", cluster.ns)


def identity(portal, kube, kubeconfig, namespace, account, tmp_path, rules) -> SyncKube:
    path = identity_kubeconfig(kube, kubeconfig, namespace, account, tmp_path / f"{account}.kubeconfig")
    if rules:
        bind_role(kube, namespace, account, rules)
    return SyncKube(portal, portal.call(lambda: k.Kube.connect(kubeconfig=path)))


def run_controller(controller_process, kube, kubeconfig, cluster, installed, tmp_path):
    path = identity_kubeconfig(kube, kubeconfig, cluster.ns, installed.account, tmp_path / "controller.kubeconfig")
    return controller_process(args=("--kubeconfig", path, "--namespace", cluster.ns, "--poll-interval", "0.2",
                                    "--health-address", "", "--metrics-address", ""))


def test_only_the_controller_writes_status(cluster, policies, controller_process, kube, kubeconfig, tmp_path):
    sc.setup(cluster, statefulset=0, deployment=2)
    run_controller(controller_process, kube, kubeconfig, cluster, policies, tmp_path)
    cluster.kube.create(k.PVC_RESTORES, model.manifest("r1", cluster.ns, model.Spec(pvc=sc.PVC)), cluster.ns)
    done = sc.wait_finished(cluster, "r1")
    assert done["status"].get("error") is None, done["status"]  # the controller's own writes pass
    sc.assert_cleaned_up(cluster, statefulset=0, deployment=2)
    # The cluster admin is refused: the status is the controller's record.
    done["status"]["message"] = "edited"
    with pytest.raises(k.Forbidden, match="only the pvc-restore controller"):
        cluster.kube.replace(k.PVC_RESTORES, done, subresource="status")
    assert cluster.kube.get(k.PVC_RESTORES, "r1", cluster.ns)["status"]["message"] != "edited"


def test_the_annotation_needs_the_right_to_create_restores(cluster, policies, controller_process, kube, kubeconfig,
                                                            portal, tmp_path):
    sc.setup(cluster, statefulset=0, deployment=2)
    run_controller(controller_process, kube, kubeconfig, cluster, policies, tmp_path)
    patcher = identity(portal, kube, kubeconfig, cluster.ns, "patcher", tmp_path, [PVC_RULE])
    restorer = identity(portal, kube, kubeconfig, cluster.ns, "restorer", tmp_path, [PVC_RULE, PVCRESTORE_RULE])

    # May patch PVCs, may not create PVCRestores: the annotation, a restore by another door, is refused.
    with pytest.raises(k.Forbidden, match="needs the right to create PVCRestores in namespace"):
        patcher.patch(k.PVCS, sc.PVC, cluster.ns, {"metadata": {"annotations": {model.RESTORE_ANNOTATION: ""}}})
    # ... and may not name someone else as the requester either.
    with pytest.raises(k.Forbidden, match="may set it only to"):
        patcher.patch(k.PVCS, sc.PVC, cluster.ns, {"metadata": {"annotations": {REQUESTED_BY: "someone-else"}}})
    patcher.patch(k.PVCS, sc.PVC, cluster.ns, {"metadata": {"labels": {"other": "edits-are-fine"}}})
    time.sleep(1.0)
    assert sc.restores(cluster) == []

    # May create PVCRestores: the annotation is accepted, and the API server records who asked.
    restorer.patch(k.PVCS, sc.PVC, cluster.ns, {"metadata": {"annotations": {model.RESTORE_ANNOTATION: "1"}}})
    done = sc.wait_finished(cluster)
    assert done["status"].get("error") is None, done["status"]
    assert done["spec"] == {"pvc": sc.PVC, "previous": 1}
    if not policies.records:  # no requester policy on this server: nobody is recorded
        assert REQUESTED_BY not in (done["metadata"].get("annotations") or {}), done["metadata"]
        sc.assert_cleaned_up(cluster, statefulset=0, deployment=2)
        return
    assert done["metadata"]["annotations"][REQUESTED_BY] == "system:serviceaccount:" + cluster.ns + ":restorer"
    from click.testing import CliRunner

    from kubectl_pvc_restore.cli import cli

    shown = CliRunner().invoke(cli, ["describe", done["metadata"]["name"], "--kubeconfig", kubeconfig, "-n",
                                     cluster.ns], prog_name="kubectl pvc-restore")
    assert f"Requested by:  system:serviceaccount:{cluster.ns}:restorer, through annotation" in shown.output, \
        shown.output
    pvc_annotations = cluster.kube.get(k.PVCS, sc.PVC, cluster.ns)["metadata"].get("annotations") or {}
    assert model.RESTORE_ANNOTATION not in pvc_annotations and REQUESTED_BY not in pvc_annotations
    sc.assert_cleaned_up(cluster, statefulset=0, deployment=2)


def test_who_asked_cannot_be_forged(cluster, policies, kube, kubeconfig, portal, tmp_path):
    restorer = identity(portal, kube, kubeconfig, cluster.ns, "restorer", tmp_path, [PVCRESTORE_RULE])
    body = model.manifest("r1", cluster.ns, model.Spec(pvc="nothing-here"), annotations={REQUESTED_BY: "the-boss"})
    me = f"system:serviceaccount:{cluster.ns}:restorer"
    if not policies.records:  # no requester policy: naming someone else is refused, naming yourself is the record
        with pytest.raises(k.Forbidden, match="may set it only to"):
            restorer.create(k.PVC_RESTORES, body, cluster.ns)
        body["metadata"]["annotations"][REQUESTED_BY] = me
    created = restorer.create(k.PVC_RESTORES, body, cluster.ns)
    assert created["metadata"]["annotations"][REQUESTED_BY] == me
    for who in ("the-boss", me + "-not"):
        with pytest.raises(k.Forbidden, match="may not change it"):
            restorer.patch(k.PVC_RESTORES, "r1", cluster.ns, {"metadata": {"annotations": {REQUESTED_BY: who}}})
    # Even the cluster admin: the record is set by the API server at creation.
    with pytest.raises(k.Forbidden):
        cluster.kube.patch(k.PVC_RESTORES, "r1", cluster.ns, {"metadata": {"annotations": {REQUESTED_BY: "x"}}})
    assert cluster.kube.get(k.PVC_RESTORES, "r1", cluster.ns)["metadata"]["annotations"][REQUESTED_BY] == me
