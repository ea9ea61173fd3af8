"""Restores proven on real bytes with real volsync: volsync's own manager (v0.14.0, built from its Go module), its
restic mover (volsync's ``mover-restic/entry.sh`` with restic 0.18.0) run for real by the node agent
(devtools/node_agent.py), a restic repository on a REST server. Files are written into the PVC's volume, backed up
through a ReplicationSource, changed, then restored by annotation, by the CLI and through the TUI; the tree's sha256
is compared with what was backed up.

These run on a control plane of their own (the ``real_volsync`` session fixture); everything else uses the mover
simulator (devtools/mover_simulator.py) where a real mover would cost a test its time (hanging movers, partial data,
crash points, many restores)."""

from __future__ import annotations

import asyncio
import json
import time

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import locks, model
from tests import scenario as sc
from tests.real_scenario import NOW, PASSWORD, PVC, V1, V2, V3, digest, wait_new_finished


def test_annotation_restores_latest_previous_and_as_of_on_real_bytes(data, real_controller):
    data.setup()
    data.write(V1)
    s1, end1 = data.backup()
    data.write(V2)
    s2, _ = data.backup()
    data.write(V3)
    s3, _ = data.backup()
    data.write(NOW)
    real_controller()

    data.annotate("")
    restore = sc.wait_finished(data.cluster, timeout=180)
    assert restore["status"].get("error") is None, restore["status"]
    assert digest(data.read()) == digest(V3), data.read()  # new.txt, added after the backup, is gone
    assert restore["status"]["restoredSnapshot"] == s3
    data.assert_back()

    done = {restore["metadata"]["name"]}
    data.annotate("1")
    restore = wait_new_finished(data, done)
    assert restore["status"].get("error") is None, restore["status"]
    assert digest(data.read()) == digest(V2) and restore["status"]["restoredSnapshot"] == s2
    data.assert_back()

    done = {r["metadata"]["name"] for r in sc.restores(data.cluster)}
    data.annotate(end1)  # as of the end of the first backup: before the second one began
    restore = wait_new_finished(data, done)
    assert restore["status"].get("error") is None, restore["status"]
    assert digest(data.read()) == digest(V1) and restore["status"]["restoredSnapshot"] == s1
    data.assert_back()


def test_cli_start_and_undo_of_a_safety_backup_on_real_bytes(data, run_cli, request):
    # The source keeps the last 2 snapshots: a safety backup taken through it would make restic forget the snapshot
    # this restore asks for (previous 1, the first backup). The restore's own source forgets nothing.
    data.setup(retain={"last": "2"})
    data.write(V1)
    s1, _ = data.backup()
    data.write(V2)
    data.backup()
    data.write(NOW)
    request.getfixturevalue("chart_rbac_controller")  # its own source and its mover's log: in the chart's RBAC

    result = run_cli("start", PVC, "--previous", "1", "--safety-backup", "--wait", "--timeout", "240")
    assert result.exit_code == 0, result.output
    name = result.output.splitlines()[0]
    assert f"succeeded (snapshot {s1})" in result.output, result.output
    assert digest(data.read()) == digest(V1)
    data.assert_back()
    described = run_cli("describe", name)
    assert described.exit_code == 0 and s1 in described.output, described.output

    restore = data.kube.get(k.PVC_RESTORES, name, data.ns)
    safety = restore["status"]["safetyBackup"]
    assert safety["snapshot"] and data.kube.get_or_none(k.REPLICATION_SOURCES, safety["source"], data.ns) is None

    undo = run_cli("undo", name, "--wait", "--timeout", "240")
    assert undo.exit_code == 0, undo.output
    assert digest(data.read()) == digest(NOW), data.read()  # the bytes the restore overwrote are back
    undone = data.kube.get(k.PVC_RESTORES, undo.output.splitlines()[0], data.ns)
    assert undone["status"]["restoredSnapshot"] == safety["snapshot"]
    data.assert_back()

    # Once the source has backed up again, its forget (--keep-last 2) may have dropped the safety backup: undo refuses
    # rather than restore an older snapshot over the data.
    data.backup()
    refused = run_cli("undo", name)
    assert refused.exit_code == 1 and "--keep-last 2" in refused.output and "may be gone" in refused.output, \
        refused.output
    assert "Traceback" not in refused.output


def test_tui_restores_the_chosen_snapshot_on_real_bytes(data, real_controller, real_volsync):
    from tests.helpers import screen_text
    from tests.test_tui import SIZE, app_for, confirm_restore, open_restore_dialog, until, until_finished_on_screen

    s1 = data.two_backups_then_new_data()
    real_controller()

    async def scenario():
        app = app_for(str(real_volsync.cp.kubeconfig), data.ns)
        async with app.run_test(size=SIZE) as pilot:
            await open_restore_dialog(pilot, app, data.ns, PVC)
            await pilot.click("#previous")
            await pilot.click("#n")
            await pilot.press("1")
            app.screen.query_one("#next").press()  # may be scrolled out of an 80x24 view
            await until(pilot, lambda: type(app.screen).__name__ == "ConfirmRestore", what="the confirmation")
            screen_text(app)  # the confirmation, searched for the password with the rest
            name = await confirm_restore(pilot, app, PVC)
            await until_finished_on_screen(pilot, app, 180)
            screen_text(app)
            return name

    name = asyncio.run(scenario())
    restore = data.kube.get(k.PVC_RESTORES, name, data.ns)
    assert restore["status"]["restoredSnapshot"] == s1 and restore["status"].get("error") is None
    assert digest(data.read()) == digest(V1)
    data.assert_back()


def test_a_wrong_repository_password_fails_fast_with_restics_error_and_changes_nothing(data, request):
    data.setup()
    data.write(V1)
    data.backup()
    data.write(NOW)
    data.secret("not the password")
    request.getfixturevalue("chart_rbac_controller")  # reading the failed mover's log (pods/log) is in the chart

    started = time.monotonic()
    # A long name: volsync names the mover Job "volsync-dst-" + the CRC-32 of the destination's name, and the
    # controller must still find the failed mover pod.
    name = "wrong-password-" + "x" * 45
    data.kube.create(k.PVC_RESTORES, model.manifest(name, data.ns, model.Spec(pvc=PVC)), data.ns)
    restore = sc.wait_finished(data.cluster, name, timeout=240)
    took = time.monotonic() - started
    error = restore["status"].get("error") or ""
    assert "incorrect password" in error or "wrong password" in error, error
    assert PASSWORD not in json.dumps(restore) and "not the password" not in json.dumps(restore)
    # Within 2 minutes, against the restore's timeout (24 h by default) that volsync's own retries would run into;
    # the bound leaves room for a loaded machine's kube-controller-manager and scheduler.
    assert took < 120, f"the failure took {took:.0f}s to surface"
    assert not restore["status"].get("dataIncomplete"), restore["status"]
    assert digest(data.read()) == digest(NOW)  # restic never began: the data is as it was
    assert data.cluster.replicas(k.DEPLOYMENTS, "web") == 1
    assert data.kube.list(k.REPLICATION_DESTINATIONS, data.ns) == []
    assert data.kube.get_or_none(k.CONFIGMAPS, locks.lock_name(PVC), data.ns) is None


def test_no_eligible_snapshot_is_a_failure_that_changes_nothing(data, real_controller):
    data.setup()
    data.write(V1)
    data.backup()
    data.write(NOW)
    real_controller()

    data.annotate("5")
    restore = sc.wait_finished(data.cluster, timeout=180)
    assert "no snapshot matched" in (restore["status"].get("error") or ""), restore["status"]
    assert digest(data.read()) == digest(NOW)
    data.assert_back()
