"""`doctor` finds the controller by its pod, its leader-election Lease or its recent work (status.lastReconciledTime)
and says what it looked at when none shows one; it compares the installed PVCRestore CRD's schema with this version's;
`version` prints the versions each CRD serves. The shared CRD of the test session is never modified: the schema
comparison is unit-tested on copies of the chart's CRD."""

from __future__ import annotations

import copy
import datetime as dt
import os
import subprocess
from pathlib import Path

import yaml

from kubectl_pvc_restore import __version__, model
from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore.cli import doctor
from tests.helpers import bind_role, cli, identity_kubeconfig, wait_for

REPO = Path(__file__).resolve().parents[1]
CRD = yaml.safe_load((REPO / "charts" / "pvc-restore" / "crds" / "pvcrestores.yaml").read_text())
SELECTOR = "app.kubernetes.io/name=pvc-restore"
GROUP = model.GROUP


def schema(crd: dict) -> dict:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]


def cli_as(config: str, namespace: str, *args: str):
    return cli(*args, kubeconfig=config, namespace=namespace)


# -- the CRD schema comparison (no cluster) ------------------------------------------------------------------------

def test_the_chart_crd_has_every_field_of_this_version():
    assert doctor.missing_fields(CRD) == []
    fields, source = doctor.expected_fields()
    assert source.endswith("pvcrestores.yaml")  # read from the shipped CRD, not the model fallback
    assert {"spec.pvc", "status.timeline", "status.timeline[].phase", "status.stopped[].kind"} <= fields


def test_a_crd_lacking_fields_of_this_version_is_reported_with_the_command_that_upgrades_it():
    old = copy.deepcopy(CRD)
    props = schema(old)
    del props["status"]["properties"]["timeline"]
    del props["spec"]["properties"]["partialData"]
    del props["status"]["properties"]["stopped"]["items"]["properties"]["kind"]
    # A missing object's own fields (status.timeline[].phase, ...) are not listed again.
    assert doctor.missing_fields(old) == ["spec.partialData", "status.stopped[].kind", "status.timeline"]

    report = doctor.Report()
    doctor.check_crd(report, old)
    [finding] = report.findings
    assert finding.level == "fail"
    assert finding.text.startswith(f"the PVCRestore CRD is older than this plugin ({__version__}): its v1 schema "
                                   "lacks spec.partialData, status.stopped[].kind, status.timeline; the API server "
                                   "drops these fields")
    assert finding.fix.splitlines() == [
        "kubectl apply --server-side --force-conflicts -f https://raw.githubusercontent.com/benfiola/pvc-restore/"
        f"v{__version__}/charts/pvc-restore/crds/pvcrestores.yaml",
        "or from the chart you install (charts/pvc-restore in a checkout, or the chart repository's):",
        "helm show crds charts/pvc-restore | kubectl apply --server-side --force-conflicts -f -"]

    current = doctor.Report()
    doctor.check_crd(current, CRD)
    assert [(f.level, f.text) for f in current.findings] == [
        ("ok", "the PVCRestore CRD is installed, served v1 (storage v1), and its schema has every field of this "
               "version")]


def test_fields_kept_by_preserve_unknown_fields_are_not_missing():
    loose = copy.deepcopy(CRD)
    status = schema(loose)["status"]
    del status["properties"]["timeline"]
    status["x-kubernetes-preserve-unknown-fields"] = True
    assert doctor.missing_fields(loose) == []


def test_a_crd_that_does_not_serve_this_version_is_reported():
    other = copy.deepcopy(CRD)
    other["spec"]["versions"][0].update(name="v2alpha1", served=True, storage=True)
    other["spec"]["versions"].append({"name": "v1", "served": False, "storage": False,
                                      "schema": other["spec"]["versions"][0]["schema"]})
    assert doctor.served_versions(other) == (["v2alpha1"], "v2alpha1")
    report = doctor.Report()
    doctor.check_crd(report, other)
    [finding] = report.findings
    assert finding.level == "fail" and "does not serve v1" in finding.text
    assert "served v2alpha1 (storage v2alpha1)" in finding.text and "--force-conflicts" in finding.fix
    report = doctor.Report()
    doctor.check_crd(report, None)
    assert [(f.level, f.text) for f in report.findings] == [("fail", "the PVCRestore CRD is not installed")]


def test_the_model_fallback_has_the_same_fields_as_the_chart_crd():
    """The krew binary carries no data files: there doctor compares with the model's fields, which must be the CRD's
    top-level ones."""
    fields, _ = doctor.expected_fields()
    top = {f for f in fields if f.count(".") <= 1 and "[]" not in f and "{}" not in f}
    assert doctor.model_fields() == top


def test_names_doctor_relies_on_match_the_controller_and_the_chart():
    from controller.leader import LEASE_NAME

    assert doctor.LEASE_NAME == LEASE_NAME
    chart = yaml.safe_load((REPO / "charts" / "pvc-restore" / "Chart.yaml").read_text())
    assert chart["home"] == f"https://github.com/{doctor.PROJECT_REPOSITORY}"
    assert (REPO / doctor.CRD_PATH_IN_REPOSITORY).is_file()


def test_lease_state_held_only_while_renewed_within_its_duration():
    now = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)

    def lease(holder, seconds_ago, duration=15):
        renew = (now - dt.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {"metadata": {"name": "pvc-restore-controller", "namespace": "ops"},
                "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration, "renewTime": renew}}

    assert doctor.lease_state(lease("a", 3), now) == (
        True, "a holds Lease ops/pvc-restore-controller, renewed 3s ago (lease duration 15s)")
    assert doctor.lease_state(lease("a", 15 + doctor.LEASE_SLACK), now)[0] is True
    assert doctor.lease_state(lease("a", 16 + doctor.LEASE_SLACK), now) == (
        False, "Lease ops/pvc-restore-controller was last renewed by a 26s ago: expired (lease duration 15s)")
    assert doctor.lease_state(lease(None, 5, 1), now) == (
        False, "Lease ops/pvc-restore-controller has no holder: released by the last controller that held it 5s ago")


# -- doctor's controller check on the real control plane -----------------------------------------------------------

def lease_holder(kube, namespace):
    lease = kube.get_or_none(k.LEASES, doctor.LEASE_NAME, namespace)
    return ((lease or {}).get("spec") or {}).get("holderIdentity")


def test_doctor_finds_a_controller_by_its_lease_and_says_what_it_checked_when_none_runs(kube, namespace, run,
                                                                                       controller_process):
    result = run("doctor")
    out = result.output
    assert result.exit_code == 1, out
    lines = out.splitlines()
    assert (f"[FAIL] no pvc-restore controller pod runs in the cluster (label {SELECTOR}, looked in all namespaces), "
            "and nothing else shows one at work:") in lines, out
    lease = "       Lease pvc-restore-controller (leader election): "
    [lease_line] = [line for line in lines if line.startswith(lease)]
    assert f"Lease {namespace}/" not in lease_line, out
    assert (f"       PVCRestores in namespace {namespace}: none (one updated in the last 10m would show a controller"
            " at work)") in lines, out
    assert "       fix: helm install pvc-restore charts/pvc-restore" in out
    assert "            or, for a controller you run outside the cluster: give it --leader-election" in out

    # A controller run outside the cluster (as in the demo) with leader election: its Lease is in its first
    # --namespace (no pod namespace here), and doctor finds it there.
    proc = controller_process(extra=("--leader-election", "--leader-election-id", "doctor-test-leader"))
    wait_for(lambda: lease_holder(kube, namespace) == "doctor-test-leader", timeout=30,
             message="the controller to take its Lease")
    result = run("doctor")
    out = result.output
    assert result.exit_code == 0, out
    assert (f"[ok  ] the controller is running: doctor-test-leader holds Lease {namespace}/pvc-restore-controller, "
            "renewed ") in out and "(lease duration 15s)" in out
    assert "no pvc-restore controller pod runs" not in out and "[FAIL]" not in out

    # Stopped, it releases the Lease: doctor says so.
    proc.terminate()
    assert proc.wait(timeout=30) == 0
    assert lease_holder(kube, namespace) is None
    result = run("doctor")
    out = result.output
    assert result.exit_code == 1, out
    assert (f"       Lease pvc-restore-controller (leader election): Lease {namespace}/pvc-restore-controller has no "
            "holder: released by the last controller that held it ") in out


def test_an_expired_lease_is_named_with_its_last_holder(kube, namespace, run):
    renewed = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=3)
    kube.create(k.LEASES, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                           "metadata": {"name": "pvc-restore-controller", "namespace": namespace},
                           "spec": {"holderIdentity": "gone-host_1234", "leaseDurationSeconds": 15,
                                    "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}}, namespace)
    result = run("doctor")
    assert result.exit_code == 1, result.output
    assert (f"Lease {namespace}/pvc-restore-controller was last renewed by gone-host_1234 3h ago: expired (lease "
            "duration 15s)") in result.output


def test_a_recent_status_last_reconciled_time_shows_a_controller_at_work(kube, namespace, run):
    kube.create(k.PVC_RESTORES, model.manifest("r1", namespace, model.Spec(pvc="data")), namespace)

    def reconciled(when: dt.datetime) -> str:
        stamp = model.format_time(when)
        kube.patch(k.PVC_RESTORES, "r1", namespace, {"status": {"phase": "Initialize", "lastReconciledTime": stamp}},
                   subresource="status")
        return stamp

    now = dt.datetime.now(dt.timezone.utc)
    reconciled(now - dt.timedelta(seconds=30))
    result = run("doctor")
    out = result.output
    assert result.exit_code == 0, out
    assert (f"[ok  ] a controller is at work: a controller updated PVCRestore {namespace}/r1 ") in out
    assert ("ago (its status.lastReconciledTime); no controller pod or live Lease pvc-restore-controller was found "
            "(a controller run outside the cluster without --leader-election?)") in out

    stamp = reconciled(now - dt.timedelta(hours=1))
    result = run("doctor")
    out = result.output
    assert result.exit_code == 1, out
    assert (f"       PVCRestores in namespace {namespace}: none updated by a controller in the last 10m (the latest "
            f"status.lastReconciledTime: r1 at {stamp}, 60m ago)") in out


def test_forbidden_parts_of_the_controller_check_are_findings_never_tracebacks(kube, namespace, kubeconfig,
                                                                               controller_process, tmp_path):
    # No permission at all: one [????] finding for the controller check, naming each part it could not do.
    nobody = identity_kubeconfig(kube, kubeconfig, namespace, "nobody", tmp_path / "nobody.kubeconfig")
    result = cli_as(nobody, namespace, "doctor")
    out = result.output
    assert result.exit_code == 3, out
    lines = out.splitlines()
    i = lines.index(f"[????] could not check whether the pvc-restore controller runs (its pods, label {SELECTOR}): "
                    "you may not list pods cluster-wide")
    assert lines[i + 1:i + 6] == [
        "       not checked either: its Lease pvc-restore-controller: you may not list leases.coordination.k8s.io "
        f"cluster-wide; may not get it in namespace {namespace}, pvc-restore, default either",
        f"       not checked either: the status.lastReconciledTime of the PVCRestores in namespace {namespace}: you "
        f"may not list pvcrestores.{GROUP} in namespace {namespace}",
        "       check: kubectl auth can-i list pods --all-namespaces",
        "              kubectl auth can-i list leases.coordination.k8s.io --all-namespaces",
        f"              kubectl auth can-i list pvcrestores.{GROUP} -n {namespace}"], out
    # 4: also what restores hold (one finding for its three lists; tests/test_doctor_holds.py), and 5: what the seed's
    # Go controller left (one for its two lists; tests/test_seed_migration.py)
    assert "[FAIL]" not in out and "5 check(s) could not be done for lack of permission" in out
    i = lines.index(f"[????] could not check whether PVCs in namespace {namespace} carry an annotation this controller "
                    "does not read (the seed's Go controller's): you may not list persistentvolumeclaims in namespace "
                    f"{namespace}")
    assert lines[i + 1:i + 4] == [
        f"       not checked either: whether the seed's Go controller left locks in namespace {namespace}: you may not "
        f"list configmaps in namespace {namespace}",
        f"       check: kubectl auth can-i list persistentvolumeclaims -n {namespace}",
        f"              kubectl auth can-i list configmaps -n {namespace}"], out
    version = cli_as(nobody, namespace, "version")
    assert version.exit_code == 0, version.output
    assert (f"CRD pvcrestores.{GROUP}: cannot read: forbidden (you may not get "
            "customresourcedefinitions.apiextensions.k8s.io cluster-wide)") in version.output.splitlines()

    # May only get Leases in its namespace: the controller's Lease there is enough; its pods stay unchecked.
    controller_process(extra=("--leader-election", "--leader-election-id", "doctor-test-leader"))
    reader = identity_kubeconfig(kube, kubeconfig, namespace, "lease-reader", tmp_path / "lease-reader.kubeconfig")
    bind_role(kube, namespace, "lease-reader", [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                                                 "verbs": ["get"]}])
    held = f"[ok  ] the controller is running: doctor-test-leader holds Lease {namespace}/pvc-restore-controller"

    def doctor_as_reader():
        result = cli_as(reader, namespace, "doctor")
        return result if held in result.output else None

    result = wait_for(doctor_as_reader, timeout=30, message="the lease reader's Role to take effect")
    out = result.output
    assert result.exit_code == 3, out
    assert (f"[????] could not check the controller's pods (label {SELECTOR}) and their settings: you may not list "
            "pods cluster-wide") in out
    assert "[FAIL]" not in out and "whether the pvc-restore controller runs" not in out


def test_doctor_reports_the_installed_crd_as_current_and_version_prints_its_served_versions(run):
    out = run("doctor").output
    assert ("[ok  ] the PVCRestore CRD is installed, served v1 (storage v1), and its schema has every field of this "
            "version") in out.splitlines(), out
    result = run("version")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"kubectl-pvc_restore {__version__}" and lines[1].startswith("Kubernetes v")
    assert lines[2:] == [f"CRD pvcrestores.{GROUP}: served v1 (storage v1)",
                         "CRD replicationsources.volsync.backube: served v1alpha1 (storage v1alpha1)",
                         "CRD replicationdestinations.volsync.backube: served v1alpha1 (storage v1alpha1)"]


def test_crd_upgrade_command_needs_force_conflicts_over_a_helm_installed_crd(control_plane, kubeconfig, tmp_path):
    """What doctor prints, run for real: a CRD that Helm installed from a chart's crds/ (field manager "helm") is
    upgraded by `kubectl apply --server-side --force-conflicts`; without --force-conflicts the API server refuses.
    A CRD of its own (the session's PVCRestore CRD is never touched)."""
    def crd(extra: str) -> str:
        return f"""apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: widgets.doctor-test.example.com}}
spec:
  group: doctor-test.example.com
  scope: Namespaced
  names: {{kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            status:
              type: object
              properties:
                phase: {{type: string}}
{extra}"""

    chart = tmp_path / "chart"
    (chart / "crds").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: doctor-test\nversion: 0.1.0\n")
    (chart / "crds" / "widgets.yaml").write_text(crd(""))
    (tmp_path / "new.yaml").write_text(crd("                timeline: {type: string}\n"))
    env = dict(os.environ, KUBECONFIG=kubeconfig)
    bin_ = control_plane.bin

    def sh(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(a) for a in args], env=env, capture_output=True, text=True, cwd=tmp_path)

    installed = sh(bin_ / "helm", "install", "doctor-test", chart, "-n", "default")
    try:
        assert installed.returncode == 0, installed.stderr
        plain = sh(bin_ / "kubectl", "apply", "--server-side", "-f", "new.yaml")
        assert plain.returncode != 0 and 'conflict with "helm"' in plain.stderr, plain.stderr
        forced = sh(bin_ / "kubectl", "apply", "--server-side", "--force-conflicts", "-f", "new.yaml")
        assert forced.returncode == 0, forced.stderr
        got = yaml.safe_load(sh(bin_ / "kubectl", "get", "crd", "widgets.doctor-test.example.com", "-o",
                                "yaml").stdout)
        assert "timeline" in got["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"][
            "properties"]
    finally:
        sh(bin_ / "helm", "uninstall", "doctor-test", "-n", "default")
        sh(bin_ / "kubectl", "delete", "crd", "widgets.doctor-test.example.com", "--ignore-not-found")
