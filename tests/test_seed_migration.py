"""Migrating from the seed's Go controller (README): what it leaves behind, made here as it made it (its CRD group
pvc-restore.homelab-images.benfiola.com, its annotation, its lock ConfigMaps: benfiola/homelab-images, pvc-restore/),
on the real control plane. `doctor` names each leftover with the command that deals with it, and says nothing when
there is none; the fix it prints for an old annotation, run with kubectl, moves the request to this controller's
annotation; a restore that meets one of the Go controller's locks says so, and goes on once the lock is gone."""

from __future__ import annotations

import os
import shlex
import subprocess

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import model
from kubectl_pvc_restore import seed_controller as seed
from tests import scenario as sc
from tests.helpers import cli, wait_for

#: The Go controller's CRD as its kubebuilder markers generate it (the parts the API server needs to serve it).
SEED_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": seed.CRD_NAME},
    "spec": {"group": seed.GROUP, "scope": "Namespaced",
             "names": {"kind": "PVCRestore", "listKind": "PVCRestoreList", "plural": "pvcrestores",
                       "singular": "pvcrestore"},
             "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {"type": "object",
                                                          "x-kubernetes-preserve-unknown-fields": True}}}]},
}


def seed_lock(namespace: str, pvc: str, restore: str) -> dict:
    """A lock as the Go controller's PVCLock.buildConfigMap writes it."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"pvc-restore-lock-{pvc}", "namespace": namespace,
                         "annotations": {seed.LOCK_ANNOTATION: "true"}},
            "data": {"accessed-at": model.format_time(model.now()), "restore": restore, "pvc": pvc}}


def doctor(kubeconfig: str, namespace: str, *args: str) -> tuple[int, list[str]]:
    result = cli("doctor", *args, kubeconfig=kubeconfig, namespace=namespace)
    return result.exit_code, result.output.splitlines()


def annotated_pvc(kube, namespace: str, name: str, annotations: dict[str, str]) -> None:
    kube.create(k.PVCS, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                         "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
                         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                                  "storageClassName": "none"}}, namespace)


def test_doctor_names_what_the_go_controller_left_and_nothing_when_it_left_nothing(kube, namespace, kubeconfig,
                                                                                   control_plane):
    _, before = doctor(kubeconfig, namespace)
    assert not [line for line in before if "Go controller" in line], before

    annotated_pvc(kube, namespace, "old-req", {seed.ANNOTATION: "2"})
    annotated_pvc(kube, namespace, "old-bad", {seed.ANNOTATION: "last tuesday\x1b[2J"})
    annotated_pvc(kube, namespace, "old-doc", {seed.DOCUMENTED_ANNOTATION: ""})
    kube.create(k.CONFIGMAPS, seed_lock(namespace, "locked", "locked-1700000000"), namespace)
    kube.create(k.CRDS, SEED_CRD)
    try:
        wait_for(lambda: _served(kube, namespace), timeout=30, message="the Go controller's CRD to be served")
        for name, phase in (("running-1700000000", "Restore"), ("done-1700000000", "Finished")):
            kube.create(seed.PVC_RESTORES, {"apiVersion": f"{seed.GROUP}/v1", "kind": "PVCRestore",
                                            "metadata": {"name": name, "namespace": namespace},
                                            "spec": {"pvc": "data"}}, namespace)
            obj = kube.get(seed.PVC_RESTORES, name, namespace)
            kube.replace(seed.PVC_RESTORES, {**obj, "status": {"phase": phase}}, subresource="status")

        code, lines = doctor(kubeconfig, namespace)
        text = "\n".join(lines)
        assert (f"[warn] 1 restore(s) of the seed's Go controller are not Finished in namespace {namespace}: "
                f"{namespace}/running-1700000000 (Restore). Keep that controller running until they are: the "
                "workloads they scaled down stay down otherwise, and their locks block restores of those PVCs"
                ) in lines, text
        assert f"       fix: kubectl get pvcrestores.{seed.GROUP} -n {namespace}" in lines, text
        assert (f"[warn] PVC {namespace}/old-req carries {seed.ANNOTATION}='2', the seed's Go controller's "
                f"annotation: this controller reads {model.RESTORE_ANNOTATION}, so no restore starts from it here"
                ) in lines, text
        assert (f"[warn] PVC {namespace}/old-doc carries {seed.DOCUMENTED_ANNOTATION}='', the annotation an earlier "
                f"homelab page documents (no controller reads it): this controller reads "
                f"{model.RESTORE_ANNOTATION}, so no restore starts from it here") in lines, text
        assert (f"       fix: kubectl annotate pvc old-doc -n {namespace} {seed.DOCUMENTED_ANNOTATION}- "
                f"{model.RESTORE_ANNOTATION}=''") in lines, text
        fix = f"kubectl annotate pvc old-req -n {namespace} {seed.ANNOTATION}- {model.RESTORE_ANNOTATION}=2"
        assert f"       fix: {fix}" in lines, text
        # A value that is no selector is shown escaped (never sent raw to the terminal) and not copied into a fix.
        bad = next(line for line in lines if f"PVC {namespace}/old-bad" in line)
        assert "\x1b" not in text and "'last tuesday\\x1b[2J'" in bad and "not a snapshot selector" in bad, bad
        assert (f"       fix: kubectl annotate pvc old-bad -n {namespace} {seed.ANNOTATION}-; then: kubectl "
                f"pvc-restore start old-bad -n {namespace} (see --help for choosing the snapshot)") in lines, text
        assert any(line.startswith(f"[warn] ConfigMap {namespace}/pvc-restore-lock-locked is a lock of the seed's Go "
                                   "controller: a restore of PVC locked waits while it exists") for line in lines), text
        assert f"       fix: once that controller no longer runs: kubectl delete configmap pvc-restore-lock-locked " \
               f"-n {namespace}" in lines, text
        assert code in (0, 1, 3)  # warnings alone never fail doctor (other checks may, e.g. no controller here)

        # The fix printed, run as printed: the request moves to this controller's annotation.
        env = dict(os.environ, KUBECONFIG=kubeconfig)
        moved = subprocess.run([str(control_plane.bin / "kubectl"), *shlex.split(fix)[1:]], env=env,
                               capture_output=True, text=True)
        assert moved.returncode == 0, moved.stderr
        annotations = kube.get(k.PVCS, "old-req", namespace)["metadata"]["annotations"]
        assert seed.ANNOTATION not in annotations and annotations[model.RESTORE_ANNOTATION] == "2", annotations

        obj = kube.get(seed.PVC_RESTORES, "running-1700000000", namespace)
        kube.replace(seed.PVC_RESTORES, {**obj, "status": {"phase": "Finished"}}, subresource="status")
        _, lines = doctor(kubeconfig, namespace)
        assert (f"[ok  ] the seed's Go controller's CRD {seed.CRD_NAME} is installed, with no unfinished restore in "
                f"namespace {namespace}; once its chart is uninstalled, `kubectl delete crd {seed.CRD_NAME}` removes "
                f"it and the 2 record(s) it holds in namespace {namespace}") in lines, "\n".join(lines)
        assert not [line for line in lines if "old-req" in line], lines
        assert [line for line in lines if "old-doc" in line], lines
    finally:
        kube.delete(k.CRDS, seed.CRD_NAME)


def _served(kube, namespace: str) -> bool:
    try:
        kube.list(seed.PVC_RESTORES, namespace)
        return True
    except k.KubeError:
        return False


def test_a_restore_that_meets_a_go_controller_lock_says_so_and_goes_on_once_it_is_gone(cluster, controller):
    sc.setup(cluster, delay=0.5)
    lock = seed_lock(cluster.ns, sc.PVC, f"{sc.PVC}-1700000000")
    lock["data"]["restore"] = "not a name; rm -rf /"  # data anyone may write: never repeated unless a name
    cluster.kube.create(k.CONFIGMAPS, lock, cluster.ns)
    controller()
    sc.annotate(cluster, "")

    def waiting() -> str | None:
        found = sc.restores(cluster)
        message = (found[0].get("status") or {}).get("message") if found else None
        return message if message and "Go pvc-restore controller" in message else None

    message = wait_for(waiting, timeout=30, message="the restore to name the Go controller's lock")
    assert message == (f"PVC {sc.PVC} is locked by the seed's Go pvc-restore controller, for a pvcrestores."
                       f"{seed.GROUP} (ConfigMap pvc-restore-lock-{sc.PVC}). That controller deletes the lock when "
                       f"its restore ends, or 10 minutes after it last looked at it; if it no longer runs, delete the "
                       f"ConfigMap: kubectl delete configmap pvc-restore-lock-{sc.PVC} -n {cluster.ns}"), message
    [restore] = sc.restores(cluster)
    assert restore["status"]["phase"] == "Initialize" and not restore["status"].get("pvcOwners"), restore["status"]
    # Nothing was scaled down while it waited.
    assert cluster.kube.get(k.DEPLOYMENTS, "web", cluster.ns)["spec"]["replicas"] == 3
    cluster.kube.delete(k.CONFIGMAPS, f"pvc-restore-lock-{sc.PVC}", cluster.ns)
    done = sc.wait_finished(cluster, timeout=60)
    assert done["status"].get("error") is None, done["status"]
    assert cluster.kube.get(k.DEPLOYMENTS, "web", cluster.ns)["spec"]["replicas"] == 3
