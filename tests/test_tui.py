"""The TUI driven by Textual's Pilot against the real control plane (with the controller and mover simulator)."""

from __future__ import annotations

import asyncio
import datetime as dt

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import locks
from kubectl_pvc_restore.tui.app import PVCRestoreApp
from kubectl_pvc_restore.tui.data import Cluster
from tests import scenario as sc
from tests.helpers import wait_for

SIZE = (80, 24)


def app_for(kubeconfig: str, namespace: str | None) -> PVCRestoreApp:
    async def connect():
        kube = await k.Kube.connect(kubeconfig=kubeconfig, timeout=5)
        return Cluster(kube, namespace)
    return PVCRestoreApp(connect, poll_interval=0.3)


async def until(pilot, predicate, timeout=30.0, what="condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        value = predicate()
        if value:
            return value
        await pilot.pause(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def table_keys(screen, selector):
    table = screen.query_one(selector)
    return [row.value for row in table.rows]


async def open_restore_dialog(pilot, app, namespace: str, pvc: str) -> None:
    """From the PVCs screen: wait for the PVC's row, press r, wait for the dialog."""
    await until(pilot, lambda: f"{namespace}/{pvc}" in table_keys(app.screen, "#pvcs"), what="the PVC row")
    await pilot.press("r")
    await until(pilot, lambda: type(app.screen).__name__ == "RestoreDialog", what="the dialog")


async def confirm_restore(pilot, app, pvc: str) -> str:
    """On the confirmation: type the PVC's name, press enter, and return the restore the screen follows."""
    for ch in pvc:
        await pilot.press(ch)
    # The PVC name is typed: the restore may start (once the preview has loaded: callers may not have waited for it).
    await until(pilot, lambda: not app.screen.query_one("#go").disabled, what="Restore enabled")
    await pilot.press("enter")
    await until(pilot, lambda: type(app.screen).__name__ == "RestoreScreen", what="the restore screen")
    return app.screen.restore_name


async def until_finished_on_screen(pilot, app, timeout: float) -> None:
    await until(pilot, lambda: "✔ Finished" in str(app.screen.query_one("#detail").render()), timeout=timeout,
                what="Finished on screen")


def test_create_a_restore_through_the_dialog_and_watch_it_finish(cluster, controller, kubeconfig):
    sc.setup(cluster, statefulset=0, deployment=1)
    controller()

    async def scenario():
        app = app_for(kubeconfig, cluster.ns)
        async with app.run_test(size=SIZE) as pilot:
            await open_restore_dialog(pilot, app, cluster.ns, "data")
            await pilot.click("#previous")
            await pilot.click("#n")
            await pilot.press("1")
            await until(pilot, lambda: "1 before latest" in str(app.screen.query_one("#choice").render()),
                        what="the choice to say 1 before latest")
            app.screen.query_one("#next").press()  # may be scrolled out of an 80x24 view
            await until(pilot, lambda: type(app.screen).__name__ == "ConfirmRestore", what="the confirmation")
            await until(pilot, lambda: "Deployment web: 1 replica(s)" in str(app.screen.query_one("#plan").render()),
                        what="the plan")
            assert app.screen.query_one("#go").disabled, "must not start before the PVC name is typed"
            name = await confirm_restore(pilot, app, "data")
            await until_finished_on_screen(pilot, app, 60)
            return name

    name = asyncio.run(scenario())
    restore = cluster.kube.get(k.PVC_RESTORES, name, cluster.ns)
    assert restore["spec"] == {"pvc": "data", "previous": 1}
    assert restore["status"]["restoredSnapshot"] == "bbbb2222" and restore["status"].get("error") is None


def test_locks_screen_clears_a_stale_lock_and_refuses_a_live_one(cluster, controller, kubeconfig):
    sc.setup(cluster, statefulset=0, deployment=1, result="Hang")
    cluster.pvc("old")
    cluster.kube.create(k.CONFIGMAPS, locks.lock_manifest(cluster.ns, "old", "ghost", "u",
                                                          dt.datetime.now(dt.timezone.utc)), cluster.ns)
    controller(restore_timeout=600, lock_stale_after=3600)
    cluster.kube.create(k.PVC_RESTORES, {"apiVersion": "pvc-restore.homelab-helper.benfiola.com/v1",
                                         "kind": "PVCRestore", "metadata": {"name": "live"},
                                         "spec": {"pvc": "data", "partialData": "ScaleBack"}}, cluster.ns)
    sc.wait_phase(cluster, "live", "Restore")

    async def scenario():
        app = app_for(kubeconfig, cluster.ns)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.5)
            await pilot.press("l")
            await until(pilot, lambda: len(table_keys(app.screen, "#locks")) == 2, what="two locks")
            keys = table_keys(app.screen, "#locks")
            live_row = keys.index(f"{cluster.ns}/{locks.lock_name('data')}")
            app.screen.query_one("#locks").move_cursor(row=live_row)
            await pilot.press("c")
            await until(pilot, lambda: app.status_message.startswith("refused"), what="the refusal")
            assert "held by live" in app.status_message
            app.screen.query_one("#locks").move_cursor(row=1 - live_row)
            await pilot.press("c")
            await until(pilot, lambda: type(app.screen).__name__ == "Confirm", what="the confirmation")
            await pilot.press("y")
            await until(pilot, lambda: app.status_message.startswith("cleared"), what="the lock to be cleared")

    asyncio.run(scenario())
    assert cluster.kube.get_or_none(k.CONFIGMAPS, locks.lock_name("old"), cluster.ns) is None
    assert cluster.kube.get_or_none(k.CONFIGMAPS, locks.lock_name("data"), cluster.ns) is not None
    cluster.kube.delete(k.PVC_RESTORES, "live", cluster.ns)
    wait_for(lambda: cluster.kube.get_or_none(k.PVC_RESTORES, "live", cluster.ns) is None, message="cleanup")


def test_forbidden_and_unreachable_show_in_the_message_bar(cluster, kubeconfig, tmp_path):
    from tests.test_packaging import sa_kubeconfig

    cluster.kube.create(k.Resource("v1", "ServiceAccount", "serviceaccounts"),
                        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "nobody"}}, cluster.ns)
    nobody = sa_kubeconfig(cluster, kubeconfig, cluster.ns, "nobody", tmp_path / "nobody")
    unreachable = tmp_path / "unreachable"
    unreachable.write_text(open(kubeconfig).read().replace("server: https://127.0.0.1:", "server: https://127.0.0.1:1#"))

    async def scenario(config, expected):
        app = app_for(str(config), cluster.ns)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: expected in app.status_message, what=expected)
            await pilot.press("t")  # still responsive: other screens open
            await until(pilot, lambda: type(app.screen).__name__ == "RestoresScreen", what="restores screen")
            bar = app.screen.query_one("MessageBar")
            assert bar.has_class("-error")

    asyncio.run(scenario(nobody, "permission denied"))
    asyncio.run(scenario(unreachable, "cannot reach the Kubernetes API server"))


def test_real_tui_in_tmux(cluster, control_plane, kubeconfig, tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    tmux = shutil.which("tmux")
    assert tmux, "tmux is required (scripts/setup.sh installs it)"
    sc.setup(cluster, statefulset=0, deployment=1)
    session = f"tui-{os.getpid()}"
    env = dict(os.environ, TERM="xterm-256color", PATH=f"{os.path.dirname(sys.executable)}{os.pathsep}"
               f"{control_plane.bin}{os.pathsep}{os.environ['PATH']}")
    command = f"kubectl pvc-restore tui -n {cluster.ns} --kubeconfig {kubeconfig} --interval 0.5"
    subprocess.run([tmux, "-L", session, "new-session", "-d", "-s", session, "-x", "80", "-y", "24", command],
                   env=env, check=True)

    def screen() -> str:
        return subprocess.run([tmux, "-L", session, "capture-pane", "-p", "-t", session], capture_output=True,
                              text=True).stdout

    def keys(*k):
        subprocess.run([tmux, "-L", session, "send-keys", "-t", session, *k], check=True)

    try:
        wait_for(lambda: "data-backup" in screen() and "Restore" in screen(), timeout=30, message="the PVC table")
        text = screen()
        assert "data" in text and "restic" in text and "1Gi" in text
        keys("?")
        wait_for(lambda: "Restore dialog" in screen(), message="the help screen")
        keys("Escape")
        wait_for(lambda: "Restore dialog" not in screen(), message="help to close")
        keys("l")
        wait_for(lambda: "HOLDER STATE" in screen(), message="the locks screen")
        keys("Escape")
        wait_for(lambda: "HOLDER STATE" not in screen() and "data-backup" in screen(), message="the PVC table")
        keys("q")
        wait_for(lambda: subprocess.run([tmux, "-L", session, "has-session", "-t", session],
                                        capture_output=True).returncode != 0, message="the app to quit")
    finally:
        subprocess.run([tmux, "-L", session, "kill-server"], capture_output=True)


def test_restore_dialog_sets_the_options_start_has(cluster, controller, kubeconfig):
    sc.setup(cluster, statefulset=0, deployment=1)

    async def scenario():
        app = app_for(kubeconfig, cluster.ns)
        async with app.run_test(size=SIZE) as pilot:
            await open_restore_dialog(pilot, app, cluster.ns, "data")
            for box in ("#bare", "#fail-jobs", "#scale-back"):
                app.screen.query_one(box).value = True
            app.screen.query_one("#timeout").value = "0s"
            app.screen.query_one("#next").press()
            await until(pilot, lambda: "at least 1s" in str(app.screen.query_one("#problem").render()),
                        what="the bad timeout refused")
            assert type(app.screen).__name__ == "RestoreDialog"
            app.screen.query_one("#timeout").value = "48h"
            app.screen.query_one("#next").press()
            await until(pilot, lambda: type(app.screen).__name__ == "ConfirmRestore", what="the confirmation")
            await until(pilot, lambda: "Fails at once if Jobs run" in str(app.screen.query_one("#plan").render()),
                        what="the options in the plan")
            return await confirm_restore(pilot, app, "data")

    name = asyncio.run(scenario())
    spec = cluster.kube.get(k.PVC_RESTORES, name, cluster.ns)["spec"]
    assert spec["deleteBarePods"] is True and spec["runningJobs"] == "Fail" and spec["timeout"] == "48h"
    assert spec["partialData"] == "ScaleBack" and not spec.get("safetyBackup")
