"""The kubectl plugin, run through click against the real control plane, and through real kubectl plugin discovery."""

from __future__ import annotations

import os
import subprocess
import sys

from click.testing import CliRunner

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import locks
from kubectl_pvc_restore.cli import cli
from tests import scenario as sc

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_dry_run_shows_the_plan_and_changes_nothing(cluster, run):
    sc.setup(cluster)
    result = run("start", "data", "--previous", "1", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Deployment web: 3 replica(s)" in result.output and "StatefulSet db: 2 replica(s)" in result.output
    assert "ReplicationSource: data-backup (mover restic" in result.output
    assert "destinationPVC: data" in result.output and "previous: 1" in result.output
    assert sc.restores(cluster) == []
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 3


def test_dry_run_reports_what_would_fail(cluster, run):
    sc.setup(cluster, source=False, statefulset=0)
    result = run("start", "data", "--dry-run")
    assert result.exit_code == 1 and "no ReplicationSource" in result.output


def test_start_wait_succeeds_and_list_describe_show_it(cluster, controller, run):
    sc.setup(cluster)
    controller()
    result = run("start", "data", "--previous", "1", "--wait", "--timeout", "120")
    assert result.exit_code == 0, result.output
    name = result.output.splitlines()[0]
    assert name.startswith("data-") and "succeeded (snapshot bbbb2222)" in result.output
    # Every phase, in order, once, with the time it began (from status.timeline: none skipped between polls).
    import re
    shown = re.findall(r"^\d\d:\d\d:\d\d  (\w+)", result.output, re.MULTILINE)
    assert shown == ["Initialize", "ScaleDown", "Restore", "Finalize", "Finished"], result.output
    assert "Pending" not in result.output
    listed = run("list")
    assert listed.exit_code == 0 and name in listed.output and "Finished" in listed.output
    assert "1 before latest" in listed.output
    wide = run("ls", "-o", "wide")
    assert "Deployment/web=3" in wide.output
    as_json = run("list", "-o", "json")
    import json
    assert [i["metadata"]["name"] for i in json.loads(as_json.output)["items"]] == [name]
    described = run("describe", name)
    assert described.exit_code == 0
    for text in ("Phase:         Finished", "Deployment web: 3 replica(s) before the restore, now 3",
                 "ReplicationSource:       data-backup", "Restored snapshot:       bbbb2222", "ScaleDown",
                 "Timeline:\n  Initialize  20", "  Finished    20",
                 "ReplicationDestination:  pvc-restore-" + name + " (deleted when the restore finished)"):
        assert text in described.output, described.output
    assert "\n  (deleted)" not in described.output
    timeline = described.output.split("Timeline:\n")[1].split("Events:")[0].splitlines()
    assert [line.split()[0] for line in timeline] == ["Initialize", "ScaleDown", "Restore", "Finalize", "Finished"]
    assert all(re.search(r"\d+(\.\d)?s$|\dm\d\ds$", line) for line in timeline[:-1]), timeline  # durations
    all_ns = run("list", "-A", ns=False)
    assert cluster.ns in all_ns.output and name in all_ns.output


def test_watch_exits_nonzero_on_failure(cluster, controller, run):
    sc.setup(cluster, statefulset=0, deployment=1, result="Failed")
    controller()
    result = run("start", "data", "--as-of", "2024-05-02T12:00:00Z")
    assert result.exit_code == 0
    watched = run("watch", result.output.strip().splitlines()[-1])
    assert watched.exit_code == 1 and "simulated failure" in watched.output


def test_bad_inputs_are_clear_errors(cluster, run, kubeconfig, tmp_path):
    sc.setup(cluster, statefulset=0, deployment=1)
    missing = run("start", "dta")
    assert missing.exit_code == 1 and 'PersistentVolumeClaim "dta" not found' in missing.output
    assert "did you mean data?" in missing.output
    future = run("start", "data", "--as-of", "2999-01-01")
    assert future.exit_code == 2 and "in the future" in future.output
    garbage = run("start", "data", "--as-of", "not a time")
    assert garbage.exit_code == 2 and "not a date and time" in garbage.output
    both = run("start", "data", "--previous", "1", "--as-of", "2024-01-01T00:00:00Z")
    assert both.exit_code == 2 and "mutually exclusive" in both.output
    nope = run("describe", "nope")
    assert nope.exit_code == 1 and 'PVCRestore "nope" not found' in nope.output
    assert sc.restores(cluster) == [] and cluster.replicas(k.DEPLOYMENTS, "web") == 1
    bad = tmp_path / "kubeconfig"
    bad.write_text(open(kubeconfig).read().replace(
        "server: https://127.0.0.1:", "server: https://127.0.0.1:1#"))
    unreachable = CliRunner().invoke(cli, ["list", "--kubeconfig", str(bad), "--request-timeout", "2"])
    assert unreachable.exit_code == 1 and "cannot reach the Kubernetes API server" in unreachable.output
    assert "Traceback" not in unreachable.output


def test_cancel_mid_restore_scales_back(cluster, controller, run):
    sc.setup(cluster, result="Hang")
    controller(restore_timeout=600)
    name = run("start", "data", "--partial-data", "ScaleBack").output.strip()
    sc.wait_phase(cluster, name, "Restore")
    result = run("cancel", name, "--wait")
    assert result.exit_code == 0 and "cancelled in phase Restore" in result.output
    sc.assert_cleaned_up(cluster)


def test_locks_list_and_clear(cluster, controller, run):
    sc.setup(cluster, statefulset=0, deployment=1, result="Hang")
    import datetime as dt
    cluster.pvc("old")
    cluster.kube.create(k.CONFIGMAPS, locks.lock_manifest(cluster.ns, "old", "ghost", "uid",
                                                          dt.datetime.now(dt.timezone.utc)), cluster.ns)
    controller(restore_timeout=600, lock_stale_after=3600)
    name = run("start", "data").output.strip()
    sc.wait_phase(cluster, name, "Restore")
    listed = run("locks")
    assert listed.exit_code == 0, listed.output
    assert "ghost" in listed.output and "gone" in listed.output
    assert name in listed.output and "active (Restore)" in listed.output
    refused = run("locks", "clear", "data")
    assert refused.exit_code == 1 and "still" not in refused.output and "is active (Restore)" in refused.output
    assert cluster.kube.get_or_none(k.CONFIGMAPS, locks.lock_name("data"), cluster.ns) is not None
    cleared = run("locks", "clear", "old")
    assert cleared.exit_code == 0 and cluster.kube.get_or_none(k.CONFIGMAPS, locks.lock_name("old"), cluster.ns) is None
    forced = run("locks", "clear", "data", "--force")
    assert forced.exit_code == 0
    run("cancel", name, "--wait")


def test_through_kubectl_plugin_discovery(cluster, control_plane, kubeconfig):
    sc.setup(cluster, statefulset=0, deployment=1)
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}{os.pathsep}{control_plane.bin}"
                                f"{os.pathsep}{os.environ['PATH']}", KUBECONFIG=kubeconfig)
    plugins = subprocess.run(["kubectl", "plugin", "list"], env=env, capture_output=True, text=True)
    assert "kubectl-pvc_restore" in plugins.stdout
    result = subprocess.run(["kubectl", "pvc-restore", "start", "data", "--dry-run", "-n", cluster.ns], env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Deployment web: 1 replica(s)" in result.stdout
    version = subprocess.run(["kubectl", "pvc-restore", "version"], env=env, capture_output=True, text=True)
    server = (control_plane.cache / "version").read_text().strip()  # the pinned one, or scripts/compat.sh's
    assert f"Kubernetes {server} at" in version.stdout, version.stdout
    assert "CRD pvcrestores" in version.stdout and "served v1" in version.stdout


def test_a_server_that_never_answers_times_out_with_a_message(kubeconfig, tmp_path):
    """A listening socket that accepts connections but never speaks: every API call has a timeout, connect too."""
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)
    port = silent.getsockname()[1]
    config = tmp_path / "silent"
    import re as _re
    config.write_text(_re.sub(r"server: https://127\.0\.0\.1:\d+", f"server: https://127.0.0.1:{port}",
                              open(kubeconfig).read()))
    try:
        result = CliRunner().invoke(cli, ["list", "--kubeconfig", str(config), "--request-timeout", "1"])
    finally:
        silent.close()
    assert result.exit_code == 1
    assert "cannot reach the Kubernetes API server" in result.output and "Traceback" not in result.output
