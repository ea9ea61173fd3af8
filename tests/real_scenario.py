"""Real volsync scenarios (tests/test_real_volsync.py, tests/test_snapshots_in_cluster.py): a PVC on the node agent's
node, mounted by a Deployment, backed up for real through a restic ReplicationSource into a repository on the restic
REST server; its files written, read and hashed on the volume's host path. The fixtures that build it."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import locks
from kubectl_pvc_restore.model import RESTORE_ANNOTATION
from tests import scenario as sc
from tests.chaos import secrets_absent
from tests.helpers import Cluster, cli, wait_for

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
        #: Every repository password this scenario wrote into its Secret (searched for afterwards).
        self.passwords: set[str] = set()

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
                                                         "fsGroup": APP_USER, "runAsNonRoot": True,
                                                         "seccompProfile": {"type": "RuntimeDefault"}}}}},
                         self.ns)
        # The source's first sync finds an empty volume ("Directory is empty skipping backup").
        wait_for(lambda: self.source_status().get("lastManualSync") == "initial", timeout=120,
                 message="the source's first sync")
        if replicas:
            self.cluster.deployment("web", replicas=replicas, pvc=PVC)
            self.cluster.wait_running(replicas, pvc=PVC)

    def secret(self, password: str) -> None:
        self.passwords.add(password)
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

    def two_backups_then_new_data(self) -> str:
        """V1 backed up, V2 backed up, then NOW written (not backed up): the usual history. Returns V1's snapshot."""
        self.setup()
        self.write(V1)
        first, _ = self.backup()
        self.write(V2)
        self.backup()
        self.write(NOW)
        return first

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
def data(real_kube, real_namespace, real_volsync, caplog, ledger):
    """The scenario; afterwards the repository's password (right or wrong) is searched for in everything the test
    made the product say: CLI output and TUI screens, the in-process controller's log, Events and restore statuses."""
    from tests import helpers

    caplog.set_level(logging.DEBUG)
    first_output = len(helpers.OUTPUTS)
    scenario = Data(real_kube, real_namespace, real_volsync)
    yield scenario
    if not scenario.passwords:
        return
    restores = real_kube.list(k.PVC_RESTORES, real_namespace)
    texts = {"CLI output and TUI screens": "\n".join(helpers.OUTPUTS[first_output:]),
             "the in-process controller's log": caplog.text,
             "the namespace's events": json.dumps(real_kube.list(k.Resource("v1", "Event", "events"), real_namespace)),
             "the restores' statuses": json.dumps([r.get("status") for r in restores])}
    secrets_absent(ledger, {f"repository password {i + 1}": p for i, p in enumerate(sorted(scenario.passwords))},
                   texts)


@pytest.fixture
def chart_rbac_controller(portal, real_volsync, real_kube, real_namespace, tmp_path):
    """An in-process controller that acts with exactly the chart's RBAC rules (its ClusterRole, bound in the test's
    namespace to a ServiceAccount with a real token): the verbs real volsync needs are in the chart."""
    import subprocess

    import yaml

    from tests.helpers import bind_role, identity_kubeconfig, in_process_controllers

    chart = Path(__file__).resolve().parents[1] / "charts" / "pvc-restore"
    rendered = subprocess.run([str(real_volsync.cp.bin / "helm"), "template", "r", str(chart), "-n", real_namespace],
                              capture_output=True, text=True, check=True).stdout
    role = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "ClusterRole"
                and d["metadata"]["name"] == "r-pvc-restore")
    bind_role(real_kube, real_namespace, "controller", role["rules"])
    config = identity_kubeconfig(real_kube, str(real_volsync.cp.kubeconfig), real_namespace, "controller",
                                 tmp_path / "controller.kubeconfig")
    kube = portal.call(lambda: k.Kube.connect(kubeconfig=config))
    with in_process_controllers(portal, kube, real_namespace, restore_timeout=120.0) as start:
        yield start()


@pytest.fixture
def run_cli(real_volsync, real_namespace):
    def invoke(*args: str):
        return cli(*args, kubeconfig=real_volsync.cp.kubeconfig, namespace=real_namespace)
    return invoke
