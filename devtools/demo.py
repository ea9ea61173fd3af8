"""The demo: a restore of real files with real volsync, from annotation to Finished, on a local control plane.

1. starts the local control plane (``devtools.controlplane``) and real volsync beside it (``devtools.real_volsync``:
   volsync's manager, its restic mover run by the node agent, a restic REST server; all built and cached on first
   use);
2. creates namespace ``demo`` with a PVC ``app-data``, a Deployment ``app`` (2 replicas) that mounts it and a restic
   ReplicationSource that backs it up; writes version 1 of the site into the volume, backs it up, writes version 2,
   backs it up, then changes it again (not backed up), printing the sha256 of the files each time;
3. runs the pvc-restore controller;
4. annotates the PVC with ``pvc-restore.homelab-helper.benfiola.com/restore: "1"`` (the snapshot before the latest,
   version 1), prints each phase until the PVCRestore is Finished, and the sha256 of the files after the restore;
5. leaves the control plane (and volsync) running and prints how to use ``kubectl pvc-restore`` against it.

    python -m devtools.demo            # the above
    python -m devtools.demo --serve    # then keep the controller running until Ctrl-C
    python -m devtools.demo --down     # tear the demo's control plane and volsync down at the end
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import re
import shutil
import socket
import sys
import time
from pathlib import Path

from controller.leader import LeaderElector
from controller.loop import Controller
from controller.settings import Settings
from devtools.controlplane import REPO, ControlPlane
from devtools.real_volsync import RealVolsync
from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore.model import RESTORE_ANNOTATION

NS = "demo"
PVC = "app-data"
SOURCE = "app-data-backup"
APP_USER = 1000
SITES = {
    1: {"index.html": "<h1>version 1</h1>\n", "about.html": "<p>first release</p>\n"},
    2: {"index.html": "<h1>version 2</h1>\n", "about.html": "<p>second release</p>\n", "news.html": "<p>new</p>\n"},
    3: {"index.html": "<h1>version 3: a bad edit, never backed up</h1>\n", "oops.txt": "corrupted\n"},
}


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


def tree_sha256(root: Path) -> str:
    """sha256 over every file's relative path and content, in path order."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def write_site(root: Path, files: dict[str, str]) -> None:
    for child in root.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    for name, content in files.items():
        (root / name).write_text(content)
        shutil.chown(root / name, APP_USER, APP_USER)


async def volume_path(kube: k.Kube) -> Path:
    while not (pvc := await kube.get(k.PVCS, PVC, NS))["spec"].get("volumeName"):
        await asyncio.sleep(0.2)
    return Path((await kube.get(k.PVS, pvc["spec"]["volumeName"]))["spec"]["hostPath"]["path"])


async def backup(kube: k.Kube, n: int) -> str:
    trigger = f"demo-backup-{n}-{int(time.time())}"
    await kube.patch(k.REPLICATION_SOURCES, SOURCE, NS, {"spec": {"trigger": {"manual": trigger}}})
    while True:
        status = (await kube.get(k.REPLICATION_SOURCES, SOURCE, NS)).get("status") or {}
        if status.get("lastManualSync") == trigger:
            saved = re.search(r"snapshot (\w+) saved", (status.get("latestMoverStatus") or {}).get("logs") or "")
            if saved is None:
                raise RuntimeError(f"the backup failed: {status.get('latestMoverStatus')}")
            await asyncio.sleep(1.1)  # volsync tells snapshots apart by the second
            return saved.group(1)
        await asyncio.sleep(0.3)


async def create_sample(kube: k.Kube, volsync: RealVolsync) -> str:
    """The sample app and two backups; returns the sha256 of version 1 (what the restore brings back)."""
    async def ensure(res: k.Resource, body: dict, namespace: str | None = NS) -> None:
        try:
            await kube.create(res, body, namespace if res.namespaced else None)
        except k.AlreadyExists:
            pass

    await ensure(k.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}, None)
    while await kube.get_or_none(k.Resource("v1", "ServiceAccount", "serviceaccounts"), "default", NS) is None:
        await asyncio.sleep(0.2)
    await ensure(k.PVCS, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                          "metadata": {"name": PVC, "namespace": NS},
                          "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    await ensure(k.DEPLOYMENTS, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app", "namespace": NS},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "app"}}, "template": {
            "metadata": {"labels": {"app": "app"}},
            "spec": {"terminationGracePeriodSeconds": 1, "securityContext": {"runAsUser": APP_USER},
                     "containers": [{"name": "app", "image": "nginx", "volumeMounts": [
                         {"name": "data", "mountPath": "/usr/share/nginx/html"}]}],
                     "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": PVC}}]}}}})
    secret = {"RESTIC_REPOSITORY": volsync.repository("demo-app-data"), "RESTIC_PASSWORD": "demo-password"}
    await ensure(k.SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app-data-restic"},
                             "data": {key: base64.b64encode(value.encode()).decode()
                                      for key, value in secret.items()}})
    await ensure(k.REPLICATION_SOURCES, {
        "apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationSource",
        "metadata": {"name": SOURCE, "namespace": NS},
        "spec": {"sourcePVC": PVC, "trigger": {"manual": "demo-initial"},
                 "restic": {"repository": "app-data-restic", "copyMethod": "Direct", "retain": {"last": "10"},
                            "moverSecurityContext": {"runAsUser": APP_USER, "runAsGroup": APP_USER,
                                                     "fsGroup": APP_USER}}}})
    root = await volume_path(kube)
    say(f"sample app: Deployment app (2 replicas) mounting PVC {PVC} (volume at {root}), backed up by "
        f"ReplicationSource {SOURCE} into {secret['RESTIC_REPOSITORY']}")
    sums = {}
    for version in (1, 2):
        write_site(root, SITES[version])
        sums[version] = tree_sha256(root)
        snapshot = await backup(kube, version)
        say(f"wrote version {version} of the site (sha256 {sums[version][:16]}) and backed it up: snapshot {snapshot}")
    write_site(root, SITES[3])
    say(f"then changed it again, not backed up: sha256 {tree_sha256(root)[:16]} "
        f"({', '.join(sorted(SITES[3]))})")
    while True:
        pods = [p for p in await kube.list(k.PODS, NS) if (p.get("status") or {}).get("phase") == "Running"
                and p["metadata"]["name"].startswith("app-")]
        if len(pods) >= 2:
            break
        await asyncio.sleep(0.3)
    say(f"pods running: {', '.join(sorted(p['metadata']['name'] for p in pods))}")
    return sums[1]


async def restore(kube: k.Kube) -> int:
    await kube.patch(k.PVCS, PVC, NS, {"metadata": {"annotations": {RESTORE_ANNOTATION: "1"}}})
    say(f'annotated PVC {PVC} with {RESTORE_ANNOTATION}="1" (restore the snapshot before the latest)')
    seen: tuple | None = None
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        items = await kube.list(k.PVC_RESTORES, NS)
        for item in items:
            status = item.get("status") or {}
            replicas = (await kube.get(k.DEPLOYMENTS, "app", NS))["spec"]["replicas"]
            state = (item["metadata"]["name"], status.get("phase"), status.get("message"), replicas)
            if state != seen:
                seen = state
                print(f"    {state[0]}: phase={state[1]:<10} app replicas={replicas}  {state[2] or ''}", flush=True)
            if status.get("phase") == "Finished" and not item["metadata"].get("finalizers"):
                if status.get("error"):
                    say(f"restore failed: {status['error']}")
                    return 1
                say(f"restore Finished: snapshot {status.get('restoredSnapshot')} restored into PVC {PVC}; "
                    f"Deployment app back to {replicas} replicas")
                return 0
        await asyncio.sleep(0.2)
    say("the restore did not finish within 3 minutes")
    return 1


async def run(kubeconfig: str, volsync: RealVolsync, serve: bool) -> int:
    kube = await k.Kube.connect(kubeconfig=kubeconfig)
    expected = await create_sample(kube, volsync)
    root = await volume_path(kube)
    # With leader election, as the chart runs it: its Lease shows `kubectl pvc-restore doctor` a controller at work.
    settings = Settings(namespace=NS, poll_interval=0.5, leader_election=True)
    elector = LeaderElector(kube, NS, f"demo_{socket.gethostname()}", lease_duration=settings.lease_duration,
                            renew_deadline=settings.renew_deadline, retry_period=settings.retry_period)
    controller = Controller(kube, settings, elector=elector)
    stop, elector_stop = asyncio.Event(), asyncio.Event()
    elector_task = asyncio.create_task(elector.run(elector_stop, lambda: None))
    task = asyncio.create_task(controller.run(stop))
    say("pvc-restore controller running")
    code = await restore(kube)
    if code == 0:
        after = tree_sha256(root)
        say(f"files after the restore: sha256 {after[:16]} ({', '.join(sorted(p.name for p in root.iterdir()))}): "
            + ("version 1, byte for byte" if after == expected else f"NOT version 1 ({expected[:16]})"))
        code = 0 if after == expected else 1
    if serve and code == 0:
        say("serving: the controller keeps running in namespace demo; Ctrl-C to stop")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass
    stop.set()
    await task
    elector_stop.set()
    await elector_task
    await elector.release()
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", action="store_true", help="keep the controller running after the restore")
    parser.add_argument("--down", action="store_true", help="tear the control plane down at the end")
    args = parser.parse_args(argv)
    cp = ControlPlane("demo", nodes=0)
    volsync = RealVolsync(cp)
    say("starting the local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok)")
    started = time.monotonic()
    kubeconfig = cp.start()
    server = cp.kubectl("version", "-o", "json").stdout
    say(f"control plane ready in {time.monotonic() - started:.1f}s: Kubernetes "
        f"{json.loads(server)['serverVersion']['gitVersion']}")
    started = time.monotonic()
    volsync.start()
    say(f"volsync ready in {time.monotonic() - started:.1f}s: its manager, its restic mover on node agent-node, "
        f"a restic REST server on 127.0.0.1:{volsync.port}")
    try:
        code = asyncio.run(run(str(kubeconfig), volsync, args.serve))
    except KeyboardInterrupt:
        code = 130
    print(cp.kubectl("get", "pvcrestores", "-n", NS).stdout)
    if args.down:
        volsync.stop()
        cp.stop(quiet=True)
        say("control plane and volsync stopped")
    else:
        print(f"""
The control plane and volsync are still running. Point kubectl and the plugin at them:

    export KUBECONFIG={kubeconfig}
    export PATH={REPO}/.venv/bin:{cp.bin}:$PATH
    kubectl get pvcrestores -n {NS}
    kubectl pvc-restore list -n {NS}
    kubectl pvc-restore describe -n {NS} <name>

Run the controller again:  {REPO}/.venv/bin/python -m devtools.demo --serve
Tear it all down:          {REPO}/.venv/bin/python -m devtools.real_volsync down --name demo
""")
    return code


if __name__ == "__main__":
    sys.exit(main())
