"""The demo: a restore from annotation to Finished on a local control plane.

1. starts the local control plane (``devtools.controlplane``; built and cached on first use);
2. creates namespace ``demo`` with a PVC ``app-data``, a Deployment ``app`` (2 replicas) that mounts it, and a restic
   ReplicationSource that backs it up, with three snapshots in the (simulated) repository;
3. runs the pvc-restore controller and the volsync mover simulator;
4. annotates the PVC with ``pvc-restore.homelab-helper.benfiola.com/restore: "1"`` (the snapshot before the latest)
   and prints each phase until the PVCRestore is Finished;
5. leaves the control plane running and prints how to use ``kubectl pvc-restore`` against it.

    python -m devtools.demo            # the above
    python -m devtools.demo --serve    # then keep the controller and simulator running until Ctrl-C
    python -m devtools.demo --down     # tear the demo's control plane down at the end
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import sys
import time

from controller.loop import Controller
from controller.settings import Settings
from devtools.controlplane import REPO, ControlPlane
from devtools.mover_simulator import CONFIG, MoverSimulator
from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore.model import RESTORE_ANNOTATION

NS = "demo"
PVC = "app-data"


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


async def create_sample(kube: k.Kube) -> None:
    async def ensure(res: k.Resource, body: dict, namespace: str | None = NS) -> None:
        try:
            await kube.create(res, body, namespace if res.namespaced else None)
        except k.AlreadyExists:
            pass

    await ensure(k.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}, None)
    while await kube.get_or_none(k.Resource("v1", "ServiceAccount", "serviceaccounts"), "default", NS) is None:
        await asyncio.sleep(0.2)
    await ensure(k.PVS, {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"{NS}-{PVC}"},
                         "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                  "storageClassName": "", "hostPath": {"path": f"/tmp/{NS}-{PVC}"},
                                  "claimRef": {"namespace": NS, "name": PVC}}})
    await ensure(k.PVCS, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                          "metadata": {"name": PVC, "namespace": NS},
                          "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                                   "volumeName": f"{NS}-{PVC}", "resources": {"requests": {"storage": "1Gi"}}}})
    await ensure(k.DEPLOYMENTS, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app", "namespace": NS},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "app"}}, "template": {
            "metadata": {"labels": {"app": "app"}},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "app", "image": "nginx", "volumeMounts": [
                         {"name": "data", "mountPath": "/usr/share/nginx/html"}]}],
                     "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": PVC}}]}}}})
    await ensure(k.SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app-data-restic"},
                             "stringData": {"RESTIC_REPOSITORY": "s3:http://minio.example/app-data",
                                            "RESTIC_PASSWORD": "demo-password"}})
    await ensure(k.REPLICATION_SOURCES, {
        "apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationSource",
        "metadata": {"name": "app-data-backup", "namespace": NS},
        "spec": {"sourcePVC": PVC, "trigger": {"schedule": "0 * * * *"},
                 "restic": {"repository": "app-data-restic", "copyMethod": "Direct", "retain": {"daily": 7},
                            "moverSecurityContext": {"runAsUser": 1000, "fsGroup": 1000}}}})
    today = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    times = [today - dt.timedelta(days=3 - i) for i in range(3)]
    snapshots = [{"id": hashlib.sha256(t.isoformat().encode()).hexdigest()[:16], "time": t.isoformat()}
                 for t in times]
    await ensure(k.CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CONFIG},
                                "data": {"snapshots": json.dumps({"app-data-restic": snapshots}),
                                         "behaviour": json.dumps({"result": "Successful", "delaySeconds": 2})}})
    say("sample app: Deployment app (2 replicas) mounting PVC app-data, backed up by ReplicationSource "
        "app-data-backup; snapshots in the repository: " + ", ".join(f"{s['id']} ({s['time']})" for s in snapshots))
    while True:
        pods = [p for p in await kube.list(k.PODS, NS) if (p.get("status") or {}).get("phase") == "Running"]
        if len(pods) >= 2:
            break
        await asyncio.sleep(0.3)
    say(f"pods running: {', '.join(sorted(p['metadata']['name'] for p in pods))}")


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


async def run(kubeconfig: str, serve: bool) -> int:
    kube = await k.Kube.connect(kubeconfig=kubeconfig)
    await create_sample(kube)
    controller = Controller(kube, Settings(namespace=NS, poll_interval=0.5))
    simulator = MoverSimulator(kube, interval=0.2, namespace=NS)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(controller.run(stop)), asyncio.create_task(simulator.run())]
    say("controller and volsync mover simulator running")
    code = await restore(kube)
    if serve and code == 0:
        say("serving: the controller and mover simulator keep running in namespace demo; Ctrl-C to stop")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass
    stop.set()
    await tasks[0]
    tasks[1].cancel()
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", action="store_true", help="keep the controller running after the restore")
    parser.add_argument("--down", action="store_true", help="tear the control plane down at the end")
    args = parser.parse_args(argv)
    cp = ControlPlane("demo")
    say("starting the local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok)")
    started = time.monotonic()
    kubeconfig = cp.start()
    server = cp.kubectl("version", "-o", "json").stdout
    say(f"control plane ready in {time.monotonic() - started:.1f}s: Kubernetes "
        f"{json.loads(server)['serverVersion']['gitVersion']} with {cp.nodes} kwok nodes")
    try:
        code = asyncio.run(run(str(kubeconfig), args.serve))
    except KeyboardInterrupt:
        code = 130
    print(cp.kubectl("get", "pvcrestores", "-n", NS).stdout)
    if args.down:
        cp.stop(quiet=True)
        say("control plane stopped")
    else:
        print(f"""
The control plane is still running. Point kubectl and the plugin at it:

    export KUBECONFIG={kubeconfig}
    export PATH={REPO}/.venv/bin:{cp.bin}:$PATH
    kubectl get pvcrestores -n {NS}
    kubectl pvc-restore list -n {NS}
    kubectl pvc-restore describe -n {NS} <name>

Run the controller and mover simulator again:  {REPO}/.venv/bin/python -m devtools.demo --serve
Tear it down:                                  {REPO}/.venv/bin/python -m devtools.controlplane down --name demo
""")
    return code


if __name__ == "__main__":
    sys.exit(main())
