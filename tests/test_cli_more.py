"""`snapshots` against a real restic repository (Debian's restic), `doctor`, and completion through kubectl."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import locks
from kubectl_pvc_restore.cli import cli
from tests import scenario as sc

TIMES = ["2024-05-01 10:00:00", "2024-05-02 10:00:00", "2024-05-03 10:00:00"]
PASSWORD = "s3cret-restic-password"


@pytest.fixture
def restic_repo(tmp_path):
    restic = shutil.which("restic")
    assert restic, "restic is required (scripts/setup.sh installs Debian's restic)"
    repo, data = tmp_path / "repo", tmp_path / "data"
    data.mkdir()
    env = dict(os.environ, RESTIC_REPOSITORY=str(repo), RESTIC_PASSWORD=PASSWORD)
    subprocess.run([restic, "init"], env=env, check=True, capture_output=True)
    for i, when in enumerate(TIMES):
        (data / "file.txt").write_text(f"version {i}\n")
        subprocess.run([restic, "backup", "--host", "volsync", "--time", when, str(data)], env=env, check=True,
                       capture_output=True)
    listed = json.loads(subprocess.run([restic, "snapshots", "--json"], env=env, check=True, capture_output=True,
                                       text=True).stdout)
    return repo, [s["id"] for s in sorted(listed, key=lambda s: s["time"])]


def test_snapshots_lists_the_real_repository_and_the_selection(cluster, run, restic_repo):
    repo, ids = restic_repo
    cluster.pvc("data")
    cluster.kube.create(k.SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "data-backup-restic"},
                                    "stringData": {"RESTIC_REPOSITORY": str(repo), "RESTIC_PASSWORD": PASSWORD}},
                        cluster.ns)
    cluster.replication_source("data-backup", "data")
    result = run("snapshots", "data")
    assert result.exit_code == 0, result.output
    assert "ReplicationSource: data-backup (mover restic" in result.output
    assert "Snapshots (3, newest first; listed by restic on this machine)" in result.output
    assert "TIME (UTC)" in result.output and "LOCAL TIME" in result.output and "HOST" in result.output
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines if line[:8] in {i[:8] for i in ids}] == [i[:8] for i in reversed(ids)]
    assert PASSWORD not in result.output
    previous = run("snapshots", "data", "--previous", "1")
    assert f"--previous 1 restores snapshot {ids[1][:8]}" in previous.output
    as_of = run("snapshots", "data", "--as-of", "2024-05-01T12:00:00Z")
    assert f"restores snapshot {ids[0][:8]}" in as_of.output
    none = run("snapshots", "data", "--previous", "3")
    assert "restores nothing: no eligible snapshot" in none.output
    as_json = json.loads(run("snapshots", "data", "-o", "json").output)
    assert [s["id"] for s in as_json["snapshots"]] == list(reversed(ids))  # newest first, as the table


def test_snapshots_reports_a_wrong_password_without_printing_secrets(cluster, run, restic_repo):
    repo, _ = restic_repo
    cluster.pvc("data")
    cluster.kube.create(k.SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "data-backup-restic"},
                                    "stringData": {"RESTIC_REPOSITORY": str(repo), "RESTIC_PASSWORD": "Zq9-not-it-Xw"}},
                        cluster.ns)
    cluster.replication_source("data-backup", "data")
    result = run("snapshots", "data")
    assert result.exit_code == 1, result.output  # a list that could not be read is not a success
    assert "the snapshots could not be listed: restic snapshots failed" in result.output
    assert "wrong password" in result.output and "a pod" not in result.output  # final: no pod tried
    assert "Zq9-not-it-Xw" not in result.output


def test_doctor_finds_problems_and_says_how_to_fix_them(cluster, run):
    sc.setup(cluster, statefulset=0, deployment=1, source=False)
    cluster.replication_source("data-backup", "data", extra={"moverSecurityContext": None})
    import datetime as dt
    cluster.kube.create(k.CONFIGMAPS, locks.lock_manifest(cluster.ns, "data", "ghost", "u",
                                                          dt.datetime.now(dt.timezone.utc)), cluster.ns)
    result = run("doctor", "data")
    out = result.output
    assert result.exit_code == 1, out  # no controller pod runs in the test cluster
    assert "[ok  ] the PVCRestore CRD is installed" in out
    assert "[ok  ] the volsync CRDs are installed" in out
    assert "[FAIL] no pvc-restore controller pod runs" in out and "fix: helm install pvc-restore" in out
    assert "no default StorageClass" in out
    assert "has never completed a backup" in out
    assert "sets no moverSecurityContext" in out
    assert "held by ghost, which is not active" in out and "locks clear data" in out
    assert "workloads to scale down: Deployment web (1)" in out
    missing = run("doctor", "nope")
    assert "[FAIL] PVC" in missing.output and "does not exist" in missing.output


def test_completion_through_kubectl(cluster, control_plane, kubeconfig, tmp_path):
    sc.setup(cluster, statefulset=0, deployment=0)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(os.path.join(os.path.dirname(sys.executable), "kubectl-pvc_restore"), bindir / "kubectl-pvc_restore")
    env = dict(os.environ, KUBECONFIG=kubeconfig, PATH=f"{bindir}{os.pathsep}{control_plane.bin}{os.pathsep}"
               f"{os.path.dirname(sys.executable)}{os.pathsep}/usr/bin:/bin")
    installed = subprocess.run(["kubectl", "pvc-restore", "completion", "--dir", str(bindir)], env=env,
                               capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    assert (bindir / "kubectl_complete-pvc_restore").exists()

    def complete(*words):
        out = subprocess.run(["kubectl", "__complete", "pvc-restore", *words], env=env, capture_output=True,
                             text=True).stdout
        return [line for line in out.splitlines() if line and not line.startswith(":")]

    assert {"start", "snapshots", "doctor"} <= set(complete(""))
    assert complete("sna") == ["snapshots"]
    assert complete("start", "-n", cluster.ns, "da") == ["data"]
    cluster.kube.create(k.PVC_RESTORES, {"apiVersion": "pvc-restore.homelab-helper.benfiola.com/v1",
                                         "kind": "PVCRestore", "metadata": {"name": "data-1"},
                                         "spec": {"pvc": "data"}}, cluster.ns)
    assert complete("describe", "-n", cluster.ns, "") == ["data-1"]


def test_crd_not_installed_says_how_to_install(tmp_path):
    from devtools.controlplane import ControlPlane

    cp = ControlPlane(f"nocrd-{os.getpid()}", nodes=1, pvcrestore_crd=False)
    kubeconfig = cp.start()
    try:
        result = CliRunner().invoke(cli, ["list", "--kubeconfig", str(kubeconfig)], catch_exceptions=False)
        assert result.exit_code == 1
        assert "the PVCRestore CRD is not installed" in result.output and "helm install pvc-restore" in result.output
        assert "Traceback" not in result.output
    finally:
        cp.stop(quiet=True)


def test_rbac_denial_names_verb_and_resource(cluster, kubeconfig, tmp_path):
    from tests.test_packaging import sa_kubeconfig

    cluster.kube.create(k.Resource("v1", "ServiceAccount", "serviceaccounts"),
                        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "nobody"}}, cluster.ns)
    config = sa_kubeconfig(cluster, kubeconfig, cluster.ns, "nobody", tmp_path / "nobody.kubeconfig")
    result = CliRunner().invoke(cli, ["list", "--kubeconfig", str(config), "-n", cluster.ns], catch_exceptions=False)
    assert result.exit_code == 1
    assert "permission denied" in result.output and 'cannot list resource "pvcrestores"' in result.output
    assert "Traceback" not in result.output
