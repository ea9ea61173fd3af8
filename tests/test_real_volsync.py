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
import base64
import hashlib
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import locks, model
from kubectl_pvc_restore.cli import cli
from kubectl_pvc_restore.model import RESTORE_ANNOTATION
from tests import scenario as sc
from tests.helpers import Cluster, wait_for

PASSWORD = "correct horse battery staple"
SECRETS = k.Resource("v1", "Secret", "secrets")
PVC = "data"
SOURCE = "data-backup"
REPOSITORY_SECRET = "data-backup-restic"
APP_USER = 1000

V1 = {"a.txt": "one\n", "dir/b.txt": "one-b\n"}
V2 = {"a.txt": "two\n", "dir/b.txt": "two-b\n", "c.txt": "two-c\n"}
V3 = {"a.txt": "three\n", "dir/b.txt": "three-b\n", "dir/deep/d.bin": "\x00\x01three\n"}
NOW = {"a.txt": "four: written after the last backup\n", "new.txt": "added after the last backup\n"}


def digest(files: dict[str, str]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return h.hexdigest()


class Data:
    """The PVC ``data`` on the agent's node, mounted by Deployment ``web``, backed up by ReplicationSource
    ``data-backup`` (restic, manual trigger, as the application's user) into a repository of this namespace."""

    def __init__(self, kube: Any, ns: str, volsync: Any) -> None:
        self.kube, self.ns, self.volsync = kube, ns, volsync
        self.cluster = Cluster(kube, ns)
        self.backups = 0

    def setup(self, *, replicas: int = 1, retain: dict[str, Any] | None = None) -> None:
        """``retain``: the source's retain policy (volsync runs restic forget with it after every backup; without
        one it keeps the last snapshot only)."""
        self.secret(PASSWORD)
        self.kube.create(k.PVCS, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                  "metadata": {"name": PVC, "namespace": self.ns},
                                  "spec": {"accessModes": ["ReadWriteOnce"],
                                           "resources": {"requests": {"storage": "1Gi"}}}}, self.ns)
        wait_for(lambda: (self.kube.get(k.PVCS, PVC, self.ns).get("status") or {}).get("phase") == "Bound",
                 message="the PVC to be bound")
        self.kube.create(k.REPLICATION_SOURCES, {
            "apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationSource",
            "metadata": {"name": SOURCE, "namespace": self.ns},
            "spec": {"sourcePVC": PVC, "trigger": {"manual": "initial"},
                     "restic": {"repository": REPOSITORY_SECRET, "copyMethod": "Direct",
                                "retain": retain or {"last": "10"},
                                "moverSecurityContext": {"runAsUser": APP_USER, "runAsGroup": APP_USER,
                                                         "fsGroup": APP_USER}}}}, self.ns)
        # The source's first sync finds an empty volume ("Directory is empty skipping backup").
        wait_for(lambda: self.source_status().get("lastManualSync") == "initial", timeout=120,
                 message="the source's first sync")
        if replicas:
            self.cluster.deployment("web", replicas=replicas, pvc=PVC)
            self.cluster.wait_running(replicas, pvc=PVC)

    def secret(self, password: str) -> None:
        body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": REPOSITORY_SECRET, "namespace": self.ns},
                "data": {"RESTIC_REPOSITORY": base64.b64encode(self.volsync.repository(self.ns).encode()).decode(),
                         "RESTIC_PASSWORD": base64.b64encode(password.encode()).decode()}}
        if self.kube.get_or_none(SECRETS, REPOSITORY_SECRET, self.ns):
            self.kube.replace(SECRETS, body)
        else:
            self.kube.create(SECRETS, body, self.ns)

    def source_status(self) -> dict[str, Any]:
        return self.kube.get(k.REPLICATION_SOURCES, SOURCE, self.ns).get("status") or {}

    @property
    def path(self) -> Path:
        volume = self.kube.get(k.PVCS, PVC, self.ns)["spec"]["volumeName"]
        return Path(self.kube.get(k.PVS, volume)["spec"]["hostPath"]["path"])

    def write(self, files: dict[str, str]) -> None:
        """Replace the volume's content, as the application (its user) would."""
        root = self.path
        for child in root.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        for name, content in files.items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        for item in [root, *root.rglob("*")]:
            shutil.chown(item, APP_USER, APP_USER)

    def read(self) -> dict[str, str]:
        root = self.path
        return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}

    def backup(self) -> tuple[str, str]:
        """A backup through the source (a manual trigger): (snapshot id, the sync's end time)."""
        self.backups += 1
        trigger = f"backup-{self.backups}"
        self.kube.patch(k.REPLICATION_SOURCES, SOURCE, self.ns, {"spec": {"trigger": {"manual": trigger}}})
        status = wait_for(lambda: (lambda s: s if s.get("lastManualSync") == trigger else None)(self.source_status()),
                          timeout=120, message=f"backup {trigger}")
        logs = status["latestMoverStatus"]["logs"]
        saved = re.search(r"snapshot (\w+) saved", logs)
        assert status["latestMoverStatus"]["result"] == "Successful" and saved, logs
        time.sleep(1.1)  # the next snapshot in another second: volsync selects snapshots at one-second precision
        return saved.group(1), status["lastSyncTime"]

    def annotate(self, value: str) -> None:
        self.kube.patch(k.PVCS, PVC, self.ns, {"metadata": {"annotations": {RESTORE_ANNOTATION: value}}})

    def mover_runs(self) -> list[dict[str, Any]]:
        """The node agent's record of every mover it ran in this namespace."""
        path = self.volsync.workdir / "agent" / "movers.jsonl"
        runs = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        return [r for r in runs if r["namespace"] == self.ns]

    def assert_back(self, *, replicas: int = 1) -> None:
        assert self.cluster.replicas(k.DEPLOYMENTS, "web") == replicas
        assert self.kube.list(k.REPLICATION_DESTINATIONS, self.ns) == []
        assert self.kube.get_or_none(k.CONFIGMAPS, locks.lock_name(PVC), self.ns) is None
        assert not self.kube.get(k.REPLICATION_SOURCES, SOURCE, self.ns)["spec"].get("paused")
        restores = [r for r in self.mover_runs() if r["args"] == ["restore"]]
        assert restores and all(r["podsMountingClaims"] == [] for r in restores), restores


def wait_new_finished(data: Data, done: set[str]) -> dict[str, Any]:
    """The restore, not among ``done``, that finished."""
    return wait_for(lambda: next((r for r in sc.restores(data.cluster) if r["metadata"]["name"] not in done
                                  and (r.get("status") or {}).get("phase") == "Finished"
                                  and not r["metadata"].get("finalizers")), None),
                    timeout=180, message="a new restore to finish")


@pytest.fixture
def data(real_kube, real_namespace, real_volsync) -> Data:
    return Data(real_kube, real_namespace, real_volsync)


@pytest.fixture
def chart_rbac_controller(portal, real_volsync, real_kube, real_namespace, tmp_path):
    """An in-process controller that acts with exactly the chart's RBAC rules (its ClusterRole, bound in the test's
    namespace to a ServiceAccount with a real token): the verbs real volsync needs are in the chart."""
    import asyncio
    import subprocess

    import yaml

    from controller.loop import Controller
    from controller.settings import Settings
    from tests.helpers import bind_role, identity_kubeconfig

    chart = Path(__file__).resolve().parents[1] / "charts" / "pvc-restore"
    rendered = subprocess.run([str(real_volsync.cp.bin / "helm"), "template", "r", str(chart), "-n", real_namespace],
                              capture_output=True, text=True, check=True).stdout
    role = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "ClusterRole"
                and d["metadata"]["name"] == "r-pvc-restore")
    bind_role(real_kube, real_namespace, "controller", role["rules"])
    config = identity_kubeconfig(real_kube, str(real_volsync.cp.kubeconfig), real_namespace, "controller",
                                 tmp_path / "controller.kubeconfig")
    kube = portal.call(lambda: k.Kube.connect(kubeconfig=config))
    ctl = Controller(kube, Settings(namespace=real_namespace, poll_interval=0.2, restore_timeout=120.0,
                                    scale_down_timeout=60.0, lock_stale_after=300.0))
    stop = asyncio.Event()
    future = portal.start_task_soon(ctl.run, stop)
    yield ctl
    portal.call(stop.set)
    future.result(timeout=60)


@pytest.fixture
def run_cli(real_volsync, real_namespace):
    def invoke(*args: str):
        return CliRunner().invoke(cli, [*args, "--kubeconfig", str(real_volsync.cp.kubeconfig), "-n", real_namespace],
                                  prog_name="kubectl pvc-restore", catch_exceptions=False)
    return invoke


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
    from tests.test_tui import SIZE, app_for, table_keys, until

    data.setup()
    data.write(V1)
    s1, _ = data.backup()
    data.write(V2)
    data.backup()
    data.write(NOW)
    real_controller()

    async def scenario():
        app = app_for(str(real_volsync.cp.kubeconfig), data.ns)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: f"{data.ns}/{PVC}" in table_keys(app.screen, "#pvcs"), what="the PVC row")
            await pilot.press("r")
            await until(pilot, lambda: type(app.screen).__name__ == "RestoreDialog", what="the dialog")
            await pilot.click("#previous")
            await pilot.click("#n")
            await pilot.press("1")
            await pilot.click("#next")
            await until(pilot, lambda: type(app.screen).__name__ == "ConfirmRestore", what="the confirmation")
            for ch in PVC:
                await pilot.press(ch)
            await pilot.press("enter")
            await until(pilot, lambda: type(app.screen).__name__ == "RestoreScreen", what="the restore screen")
            await until(pilot, lambda: "✔ Finished" in str(app.screen.query_one("#detail").render()), timeout=180,
                        what="Finished on screen")
            return app.screen.restore_name

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
    restore = sc.wait_finished(data.cluster, name, timeout=120)
    took = time.monotonic() - started
    error = restore["status"].get("error") or ""
    assert "incorrect password" in error or "wrong password" in error, error
    assert PASSWORD not in json.dumps(restore) and "not the password" not in json.dumps(restore)
    assert took < 60, f"the failure took {took:.0f}s to surface"
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
