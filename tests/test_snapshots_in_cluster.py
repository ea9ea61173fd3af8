"""Snapshots listed from inside the cluster, where this machine cannot reach the repository: `snapshots --list-from
cluster`, the TUI's picker and `start --dry-run`. The listing pod (volsync's mover image, restic) runs for real on the
node agent against a real restic repository (the real-volsync control plane), in a namespace that enforces
restricted Pod Security."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import restic
from tests.helpers import bind_role, identity_kubeconfig, wait_for
from tests.real_scenario import PASSWORD, PVC, V1, V2, V3, digest

RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted",
              "pod-security.kubernetes.io/enforce-version": "latest"}


def restricted(data) -> None:
    data.kube.patch(k.NAMESPACES, data.ns, None, {"metadata": {"labels": RESTRICTED}})


def listing_pods(data) -> list:
    return data.kube.list(k.PODS, data.ns, label_selector=restic.POD_LABEL)


def assert_no_listing_pod_left(data) -> None:
    """Deleted after each listing (gone once the node stopped it)."""
    assert all(p["metadata"].get("deletionTimestamp") for p in listing_pods(data))
    wait_for(lambda: listing_pods(data) == [], timeout=30, message="the listing pods to be gone")


def test_snapshots_are_listed_by_a_pod_in_the_cluster(data, run_cli):
    restricted(data)
    data.setup(replicas=0)  # the test Deployment's pods are not restricted; volsync's movers and the listing pod are
    data.write(V1)
    s1, _ = data.backup()
    data.write(V2)
    s2, _ = data.backup()
    data.write(V3)
    s3, end3 = data.backup()

    result = run_cli("snapshots", PVC, "--list-from", "cluster")
    assert result.exit_code == 0, result.output
    assert "Snapshots (3, newest first; listed by a pod in the cluster)" in result.output
    lines = [line for line in result.output.splitlines() if line[:8] in (s1, s2, s3)]
    assert [line.split()[0] for line in lines] == [s3, s2, s1]
    assert "latest" in lines[0] and "--previous 1" in lines[1] and "--previous 2" in lines[2]
    assert all("volsync" in line and "/data" in line and "--as-of 20" in line for line in lines)
    assert "LOCAL TIME" in result.output and PASSWORD not in result.output

    listed = json.loads(run_cli("snapshots", PVC, "--list-from", "cluster", "-o", "json").output)
    assert listed["listedWith"] == "a pod in the cluster"
    assert [s["short_id"] for s in listed["snapshots"]] == [s3, s2, s1]
    assert all(isinstance(s["size"], int) and s["size"] > 0 for s in listed["snapshots"])
    assert listed["snapshots"][1]["restoredBy"]["previous"] == 1
    assert_no_listing_pod_left(data)

    dry = run_cli("start", PVC, "--as-of", end3, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"This restore would restore snapshot {s3}" in dry.output and "<== selected" in dry.output


def test_in_cluster_listing_says_clearly_why_it_failed(data, run_cli, real_volsync):
    restricted(data)
    data.setup(replicas=0)
    # An initialized repository with no snapshot yet (the source's first sync found an empty volume and skipped).
    env = dict(os.environ, RESTIC_REPOSITORY=real_volsync.repository(data.ns), RESTIC_PASSWORD=PASSWORD)
    subprocess.run([str(real_volsync.restic), "init"], env=env, check=True, capture_output=True)
    empty = run_cli("snapshots", PVC, "--list-from", "cluster")
    assert empty.exit_code == 0 and "Snapshots: none" in empty.output, empty.output

    data.secret("not the password")
    wrong = run_cli("snapshots", PVC, "--list-from", "cluster")
    assert wrong.exit_code == 1 and "wrong password" in wrong.output, wrong.output
    assert "not the password" not in wrong.output and "Traceback" not in wrong.output

    data.kube.patch(k.SECRETS, "data-backup-restic", data.ns,
                    {"stringData": {"RESTIC_REPOSITORY": "rest:http://127.0.0.1:1/nowhere", "RESTIC_PASSWORD": "x"}})
    # (Time for the listing pod to be scheduled and started as well: restic then retries until the limit.)
    unreachable = run_cli("snapshots", PVC, "--list-from", "cluster", "--timeout", "30")
    assert unreachable.exit_code == 1, unreachable.output
    assert "did not finish within 30s" in unreachable.output and "connection refused" in unreachable.output
    assert_no_listing_pod_left(data)


def test_a_user_who_may_not_create_pods_is_told_so(data, real_volsync, tmp_path):
    from click.testing import CliRunner

    from kubectl_pvc_restore.cli import cli

    data.setup()
    bind_role(data.kube, data.ns, "viewer", [
        {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["get", "list"]},
        {"apiGroups": ["volsync.backube"], "resources": ["replicationsources"], "verbs": ["get", "list"]}])
    config = identity_kubeconfig(data.kube, str(real_volsync.cp.kubeconfig), data.ns, "viewer",
                                 tmp_path / "viewer.kubeconfig")
    result = CliRunner().invoke(cli, ["snapshots", PVC, "--kubeconfig", config, "-n", data.ns],
                                prog_name="kubectl pvc-restore", catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert f"you may not create pods in namespace {data.ns}" in result.output and "Traceback" not in result.output
    assert_no_listing_pod_left(data)


def test_tui_picker_restores_exactly_the_picked_snapshot_when_a_backup_lands_meanwhile(data, real_controller,
                                                                                       real_volsync):
    from tests.helpers import screen_text
    from tests.test_tui import SIZE, app_for, confirm_restore, open_restore_dialog, until, until_finished_on_screen

    s1 = data.two_backups_then_new_data()
    real_controller()

    async def scenario():
        app = app_for(str(real_volsync.cp.kubeconfig), data.ns)
        async with app.run_test(size=SIZE) as pilot:
            await open_restore_dialog(pilot, app, data.ns, PVC)
            await until(pilot, lambda: app.screen.snapshots is not None, timeout=60, what="the snapshot list")
            await pilot.press("f")  # list from a pod in the cluster instead
            await until(pilot, lambda: "listed by a pod in the cluster" in note(app), timeout=60,
                        what="the list from the cluster")
            screen_text(app)  # the snapshots as listed in the cluster
            table = app.screen.query_one("#snapshots")
            table.focus()
            await pilot.press("down")  # the second newest: the first backup
            # Focusing the table highlights its first row before "down" moves on: wait for the pick to be the second.
            await until(pilot, lambda: f"will restore snapshot {s1}" in str(app.screen.query_one("#choice").render()),
                        what=f"the pick to be snapshot {s1}")
            assert app.screen.query_one("#time").value, "picked by its time"
            # A backup lands while the user confirms: the pick still means the same snapshot.
            data.write(V3)
            data.backup()
            app.screen.query_one("#next").press()  # may be scrolled out of an 80x24 view
            await until(pilot, lambda: type(app.screen).__name__ == "ConfirmRestore", what="the confirmation")
            screen_text(app)  # the confirmation, searched for the password with the rest
            name = await confirm_restore(pilot, app, PVC)
            await until_finished_on_screen(pilot, app, 180)
            screen_text(app)
            return name

    name = asyncio.run(scenario())
    restore = data.kube.get(k.PVC_RESTORES, name, data.ns)
    assert restore["spec"].get("restoreAsOf") and not restore["spec"].get("previous")
    assert restore["status"]["restoredSnapshot"] == s1 and restore["status"].get("error") is None
    assert digest(data.read()) == digest(V1)
    data.assert_back()


def note(app) -> str:
    return str(app.screen.query_one("#snapshots-note").render())
