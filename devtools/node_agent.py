"""A node agent: one Kubernetes node run by this process instead of by kwok, on which volsync's restic mover pods
run for real. A kubelet and a storage provisioner stand-in for the tests and the demo (no container runtime exists
here); the product knows nothing about it.

What it does, as a kubelet and a local-path provisioner would:

* registers the Node ``--node`` (Ready, with capacity, ``kubernetes.io/hostname``, an InternalIP of 127.0.0.1 and
  its kubelet port) and keeps it Ready (node status heartbeat and its Lease in ``kube-node-lease``). kwok must not
  manage it: the control plane runs kwok with ``--manage-all-nodes=false`` and an annotation selector that only
  kwok's own nodes match;
* provisions host-path PersistentVolumes for PVCs of its StorageClass (``--storage-class``, the default class
  unless ``--no-default-class``), with node affinity to its node, so every pod that mounts one (workloads and
  volsync's movers alike) is scheduled here; deletes the directory and the PV when the claim goes;
* runs every pod on its node whose container command is volsync's ``/mover-restic/entry.sh``, or whose image is
  volsync's mover image (``quay.io/backube/volsync``, any tag: e.g. a pod that lists a repository's snapshots):
  environment resolved as a kubelet does (values, Secret and ConfigMap keys, field refs, ``$(VAR)``), each volume
  mounted at its mount path (a PVC at its PV's host path, emptyDir, Secret and ConfigMap files) inside a private mount
  namespace (``unshare --mount``) with a fresh root that holds the host's /usr, /etc, /lib and the "image" (volsync's
  ``mover-restic/`` directory from its Go module and the built restic at /usr/local/bin), then ``chroot`` and
  ``setpriv`` with the pod's user, groups, capabilities and no-new-privileges; reports the pod Running, then Succeeded
  or Failed with the container's exit code;
* serves container logs on its kubelet port (``/containerLogs/<ns>/<pod>/<container>`` with ``tailLines``,
  ``limitBytes``, ``timestamps`` and ``follow``), which is where the API server reads ``pods/log`` from: volsync's
  manager reads its mover's log there;
* any other pod on the node is reported Running (as kwok would), and every pod being deleted is stopped and removed.

It records every mover run in ``<workdir>/movers.jsonl``: the pod, its claims, start and end, exit code, and which
other pods on the node mounted one of its claims while it ran (a workload left running beside the mover).

    python -m devtools.node_agent --kubeconfig F --image DIR --workdir DIR [--node agent-node]
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.server
import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from base64 import b64decode
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.kubeapi import Api, ApiError

log = logging.getLogger("node-agent")
PROVISIONER = "devtools.pvc-restore/hostpath"
MOVER_COMMAND = "/mover-restic/entry.sh"
#: The container runtime's default capabilities (containerd's and Docker's), before a container's drop/add.
DEFAULT_CAPS = {"chown", "dac_override", "fsetid", "fowner", "mknod", "net_raw", "setgid", "setuid", "setfcap",
                "setpcap", "net_bind_service", "sys_chroot", "kill", "audit_write"}
IMAGE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
             "version": "node-agent"}
HOST_DIRS = ("usr", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32")

#: Runs inside ``unshare --mount``: builds the container's root and execs its process there.
#: Arguments: the root directory, a file of mounts (``kind source target ro`` per line), then the command.
MOUNT_SCRIPT = r"""
set -euo pipefail
root=$1; mounts=$2; shift 2
mount -t tmpfs -o mode=0755 container-root "$root"
for d in %(host_dirs)s; do
  if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$root/$d"
  elif [ -d "/$d" ]; then mkdir "$root/$d"; mount --bind "/$d" "$root/$d"; mount -o remount,bind,ro "$root/$d"; fi
done
mkdir -p "$root/dev" "$root/proc" "$root/tmp" "$root/root"
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
while read -r kind source target ro; do
  mkdir -p "$root$target"
  if [ "$kind" = tmpfs ]; then mount -t tmpfs -o mode=1777 tmpfs "$root$target"
  else
    if [ -f "$source" ]; then rmdir "$root$target"; touch "$root$target"; fi
    mount --bind "$source" "$root$target"
  fi
  if [ "$ro" = ro ]; then mount -o remount,bind,ro "$root$target"; fi
done < "$mounts"
exec chroot "$root" "$@"
""" % {"host_dirs": " ".join(HOST_DIRS)}


def utcnow() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class NotReady(Exception):
    """A pod cannot start yet (a missing Secret, an unbound claim): its container waits, with this reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Container:
    """One pod's running (or finished) container."""

    namespace: str
    pod: str
    uid: str
    name: str
    log_path: Path
    process: subprocess.Popen | None = None
    started: str = field(default_factory=utcnow)
    finished: str | None = None
    exit_code: int | None = None
    record: dict[str, Any] = field(default_factory=dict)
    reader: threading.Thread | None = None


class NodeAgent:
    def __init__(self, api: Api, *, node: str, image: Path, workdir: Path, storage_class: str = "agent-hostpath",
                 default_class: bool = True, interval: float = 0.2, port: int = 0) -> None:
        self.api = api
        self.node = node
        self.image = Path(image)
        self.workdir = Path(workdir)
        self.storage_class = storage_class
        self.default_class = default_class
        self.interval = interval
        self.port = port
        self.containers: dict[str, Container] = {}  # by pod uid (one container per pod is all movers have)
        self.faked: set[str] = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.last_heartbeat = 0.0

    # -- the node ---------------------------------------------------------------------------------------------------

    def register(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "volumes").mkdir(exist_ok=True)
        (self.workdir / "pods").mkdir(exist_ok=True)
        self.start_log_server()
        annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if self.default_class else {}
        self.api.create("/apis/storage.k8s.io/v1/storageclasses", {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": self.storage_class, "annotations": annotations},
            "provisioner": PROVISIONER, "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"})
        self.api.create("/api/v1/nodes", {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.node, "labels": {"kubernetes.io/hostname": self.node,
                                                        "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                                                        "type": "node-agent"}}})
        self.heartbeat(force=True)
        log.info("node %s registered; kubelet port %d; storage class %s", self.node, self.port, self.storage_class)

    def heartbeat(self, *, force: bool = False) -> None:
        if not force and time.monotonic() - self.last_heartbeat < 10:
            return
        now = utcnow()
        ready = {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "node agent is posting ready",
                 "lastHeartbeatTime": now, "lastTransitionTime": now}
        self.api.patch(f"/api/v1/nodes/{self.node}/status", {"status": {
            "capacity": {"cpu": "32", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "allocatable": {"cpu": "32", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            "nodeInfo": {"kubeletVersion": "node-agent", "operatingSystem": "linux", "architecture": "amd64",
                         "containerRuntimeVersion": "node-agent://1", "kubeProxyVersion": "", "machineID": "",
                         "systemUUID": "", "bootID": "", "kernelVersion": os.uname().release, "osImage": "linux"},
            "conditions": [ready] + [
                {"type": kind, "status": "False", "reason": f"KubeletHasNo{kind}", "lastHeartbeatTime": now,
                 "lastTransitionTime": now, "message": "ok"}
                for kind in ("MemoryPressure", "DiskPressure", "PIDPressure")]}})
        lease_path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.node}"
        renew = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if self.api.get(lease_path) is None:
            self.api.create("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.node, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": self.node, "leaseDurationSeconds": 40, "renewTime": renew}})
        else:
            self.api.patch(lease_path, {"spec": {"renewTime": renew}})
        self.last_heartbeat = time.monotonic()

    # -- storage ----------------------------------------------------------------------------------------------------

    def provision(self) -> None:
        for pvc in self.api.list("/api/v1/persistentvolumeclaims"):
            spec, meta = pvc.get("spec") or {}, pvc["metadata"]
            if spec.get("storageClassName") != self.storage_class or spec.get("volumeName"):
                continue
            if (pvc.get("status") or {}).get("phase") != "Pending" or meta.get("deletionTimestamp"):
                continue
            path = self.workdir / "volumes" / f"{meta['namespace']}_{meta['name']}_{meta['uid']}"
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o777)  # as local-path provisioners do: any pod user may write
            size = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
            created = self.api.create("/api/v1/persistentvolumes", {
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": f"pvc-{meta['uid']}", "annotations": {"pv.kubernetes.io/provisioned-by":
                                                                           PROVISIONER}},
                "spec": {"capacity": {"storage": size}, "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                         "persistentVolumeReclaimPolicy": "Delete", "storageClassName": self.storage_class,
                         "volumeMode": spec.get("volumeMode") or "Filesystem",
                         "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                      "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]},
                         "hostPath": {"path": str(path), "type": "Directory"},
                         "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                             {"key": "kubernetes.io/hostname", "operator": "In", "values": [self.node]}]}]}}}})
            if created:
                log.info("provisioned %s for %s/%s at %s", created["metadata"]["name"], meta["namespace"],
                         meta["name"], path)

    def reclaim(self) -> None:
        for pv in self.api.list("/api/v1/persistentvolumes"):
            meta, spec = pv["metadata"], pv.get("spec") or {}
            if (meta.get("annotations") or {}).get("pv.kubernetes.io/provisioned-by") != PROVISIONER:
                continue
            if (pv.get("status") or {}).get("phase") not in ("Released", "Failed"):
                continue
            if spec.get("persistentVolumeReclaimPolicy") != "Delete":
                continue
            path = Path((spec.get("hostPath") or {}).get("path", ""))
            if path.is_relative_to(self.workdir / "volumes"):
                shutil.rmtree(path, ignore_errors=True)
            self.api.delete(f"/api/v1/persistentvolumes/{meta['name']}")
            log.info("deleted %s (its claim is gone)", meta["name"])

    # -- pods -------------------------------------------------------------------------------------------------------

    def sync_pods(self) -> None:
        pods = self.api.list("/api/v1/pods", fieldSelector=f"spec.nodeName={self.node}")
        seen = set()
        for pod in pods:
            meta = pod["metadata"]
            seen.add(meta["uid"])
            try:
                if meta.get("deletionTimestamp"):
                    self.remove(pod)
                elif is_mover(pod):
                    self.run_mover(pod)
                elif meta["uid"] not in self.faked:
                    self.fake_running(pod)
            except ApiError as exc:
                log.debug("pod %s/%s: %s", meta["namespace"], meta["name"], exc)
        with self.lock:
            gone = [uid for uid in self.containers if uid not in seen]
        for uid in gone:
            self.stop_container(uid)
        self.faked &= seen

    def status_path(self, pod: dict[str, Any]) -> str:
        meta = pod["metadata"]
        return f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status"

    def fake_running(self, pod: dict[str, Any]) -> None:
        if (pod.get("status") or {}).get("phase") in ("Running", "Succeeded", "Failed"):
            self.faked.add(pod["metadata"]["uid"])
            return
        now = utcnow()
        self.api.patch(self.status_path(pod), {"status": {
            "phase": "Running", "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": now, "conditions": conditions(True, now),
            "containerStatuses": [{"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": True,
                                   "started": True, "restartCount": 0,
                                   "containerID": f"node-agent://{pod['metadata']['uid']}-{c['name']}",
                                   "state": {"running": {"startedAt": now}}}
                                  for c in pod["spec"].get("containers") or []]}})
        self.faked.add(pod["metadata"]["uid"])

    def remove(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        self.stop_container(meta["uid"])
        self.api.delete(f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                        {"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}})

    def stop_container(self, uid: str) -> None:
        with self.lock:
            container = self.containers.pop(uid, None)
        if container is None:
            return
        if container.process and container.process.poll() is None:
            try:
                os.killpg(container.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            container.process.wait()
        if container.reader:
            container.reader.join(timeout=5)
        self.finish_record(container, killed=True)
        shutil.rmtree(self.workdir / "pods" / uid, ignore_errors=True)

    def run_mover(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        with self.lock:
            container = self.containers.get(uid)
        if container is None:
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return  # finished before this agent started
            try:
                container = self.start(pod)
            except NotReady as exc:
                self.report_waiting(pod, exc)
                return
            self.report_running(pod, container)
            return
        if container.process and container.exit_code is None and container.process.poll() is not None:
            if container.reader:
                container.reader.join(timeout=5)
            container.exit_code = container.process.returncode
            container.finished = utcnow()
            self.finish_record(container)
        if container.exit_code is not None and (pod.get("status") or {}).get("phase") == "Running":
            self.report_terminated(pod, container)

    def report_waiting(self, pod: dict[str, Any], exc: NotReady) -> None:
        spec_container = pod["spec"]["containers"][0]
        log.info("pod %s/%s waits: %s", pod["metadata"]["namespace"], pod["metadata"]["name"], exc)
        self.api.patch(self.status_path(pod), {"status": {
            "phase": "Pending", "hostIP": "127.0.0.1", "conditions": conditions(False, utcnow()),
            "containerStatuses": [{"name": spec_container["name"], "image": spec_container.get("image", ""),
                                   "imageID": "", "ready": False, "restartCount": 0, "started": False,
                                   "state": {"waiting": {"reason": exc.reason, "message": str(exc)}}}]}})

    def report_running(self, pod: dict[str, Any], container: Container) -> None:
        spec_container = pod["spec"]["containers"][0]
        self.api.patch(self.status_path(pod), {"status": {
            "phase": "Running", "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": container.started, "conditions": conditions(True, container.started),
            "containerStatuses": [{"name": container.name, "image": spec_container.get("image", ""), "imageID": "",
                                   "ready": True, "started": True, "restartCount": 0,
                                   "containerID": f"node-agent://{container.uid}",
                                   "state": {"running": {"startedAt": container.started}}}]}})

    def report_terminated(self, pod: dict[str, Any], container: Container) -> None:
        spec_container = pod["spec"]["containers"][0]
        ok = container.exit_code == 0
        self.api.patch(self.status_path(pod), {"status": {
            "phase": "Succeeded" if ok else "Failed",
            "conditions": conditions(False, container.finished or utcnow(), reason="PodCompleted"),
            "containerStatuses": [{"name": container.name, "image": spec_container.get("image", ""), "imageID": "",
                                   "ready": False, "started": False, "restartCount": 0,
                                   "containerID": f"node-agent://{container.uid}",
                                   "state": {"terminated": {"exitCode": container.exit_code,
                                                            "reason": "Completed" if ok else "Error",
                                                            "startedAt": container.started,
                                                            "finishedAt": container.finished,
                                                            "containerID": f"node-agent://{container.uid}"}}}]}})
        log.info("mover %s/%s exited %d", container.namespace, container.pod, container.exit_code)

    # -- running a mover --------------------------------------------------------------------------------------------

    def start(self, pod: dict[str, Any]) -> Container:
        meta, spec = pod["metadata"], pod["spec"]
        ns, uid = meta["namespace"], meta["uid"]
        spec_container = spec["containers"][0]
        env = self.environment(pod, spec_container)
        mounts, claims = self.mounts(pod, spec_container)
        user, groups, caps, no_new_privs = security(spec, spec_container)
        poddir = self.workdir / "pods" / uid
        (poddir / "root").mkdir(parents=True, exist_ok=True)
        (poddir / "mounts").write_text("".join(f"{kind} {source} {target} {'ro' if ro else 'rw'}\n"
                                               for kind, source, target, ro in mounts))
        (poddir / "mount.sh").write_text(MOUNT_SCRIPT)
        command = [expand(arg, env) for arg in (spec_container.get("command") or [])
                   + (spec_container.get("args") or [])]
        uid_, gid = user
        setpriv = ["/usr/bin/setpriv", f"--reuid={uid_}", f"--regid={gid}",
                   f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups",
                   "--bounding-set=-all" + "".join(f",+{c}" for c in sorted(caps)), "--inh-caps=-all"]
        if no_new_privs:
            setpriv.append("--no-new-privs")
        argv = ["unshare", "--mount", "--propagation", "private", "bash", str(poddir / "mount.sh"),
                str(poddir / "root"), str(poddir / "mounts"), *setpriv, "--", *command]
        log_path = poddir / f"{spec_container['name']}.log"
        container = Container(ns, meta["name"], uid, spec_container["name"], log_path)
        container.record = {"namespace": ns, "pod": meta["name"], "job": (meta.get("labels") or {}).get("job-name"),
                            "args": spec_container.get("args") or [], "claims": claims, "user": uid_,
                            "started": container.started,
                            "podsMountingClaims": self.pods_mounting(ns, claims, exclude=uid)}
        workdir = spec_container.get("workingDir") or "/"
        env_cmd = ["env", "-i", *[f"{k}={v}" for k, v in env.items()], "sh", "-c",
                   f"cd {shlex.quote(workdir)} && exec \"$@\"", "container"]
        argv = argv[:argv.index("--") + 1] + env_cmd + argv[argv.index("--") + 1:]
        container.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, start_new_session=True,
                                             env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        container.reader = threading.Thread(target=copy_log, args=(container.process.stdout, log_path), daemon=True)
        container.reader.start()
        with self.lock:
            self.containers[uid] = container
        log.info("started mover %s/%s (%s) as uid %s, claims %s", ns, meta["name"], " ".join(command), uid_, claims)
        return container

    def environment(self, pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
        ns = pod["metadata"]["namespace"]
        env = dict(IMAGE_ENV)
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for kind in ("secretRef", "configMapRef"):
                ref = source.get(kind)
                if ref:
                    data = self.key_data(ns, kind, ref["name"], optional=bool(ref.get("optional")))
                    env.update({prefix + k: v for k, v in (data or {}).items()})
        for var in container.get("env") or []:
            name, value_from = var["name"], var.get("valueFrom")
            if value_from is None:
                env[name] = expand(var.get("value", ""), env)
                continue
            for kind in ("secretKeyRef", "configMapKeyRef"):
                ref = value_from.get(kind)
                if ref:
                    data = self.key_data(ns, kind, ref["name"], optional=bool(ref.get("optional")))
                    if data is not None and ref["key"] in data:
                        env[name] = data[ref["key"]]
                    elif not ref.get("optional"):
                        raise NotReady("CreateContainerConfigError",
                                       f"couldn't find key {ref['key']} in {kind[:-6]} {ns}/{ref['name']}")
            if "fieldRef" in value_from:
                env[name] = field_value(pod, value_from["fieldRef"]["fieldPath"])
        return env

    def key_data(self, ns: str, kind: str, name: str, *, optional: bool) -> dict[str, str] | None:
        if kind.startswith("secret"):
            obj = self.api.get(f"/api/v1/namespaces/{ns}/secrets/{name}")
            data = {k: b64decode(v).decode() for k, v in ((obj or {}).get("data") or {}).items()}
        else:
            obj = self.api.get(f"/api/v1/namespaces/{ns}/configmaps/{name}")
            data = dict((obj or {}).get("data") or {})
        if obj is None:
            if optional:
                return None
            raise NotReady("CreateContainerConfigError", f"{kind[:-3].lower()} \"{name}\" not found")
        return data

    def mounts(self, pod: dict[str, Any], container: dict[str, Any]) -> tuple[list[tuple], list[str]]:
        """(kind, host source, mount path, read-only) for the image and each volume mount; and the claims mounted."""
        ns, uid = pod["metadata"]["namespace"], pod["metadata"]["uid"]
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        result: list[tuple] = [("bind", str(self.image / "mover-restic"), "/mover-restic", True),
                               ("bind", str(self.image / "bin"), "/usr/local/bin", True)]
        claims = []
        poddir = self.workdir / "pods" / uid / "volumes"
        for mount in container.get("volumeMounts") or []:
            volume = volumes.get(mount["name"])
            if volume is None:
                raise NotReady("CreateContainerConfigError", f"volume {mount['name']} not found")
            target, ro = mount["mountPath"], bool(mount.get("readOnly"))
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                pvc = self.api.get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{claim}")
                pv_name = ((pvc or {}).get("spec") or {}).get("volumeName")
                pv = self.api.get(f"/api/v1/persistentvolumes/{pv_name}") if pv_name else None
                path = ((pv or {}).get("spec") or {}).get("hostPath", {}).get("path") \
                    or ((pv or {}).get("spec") or {}).get("local", {}).get("path")
                if not path:
                    raise NotReady("ContainerCreating", f"claim {claim} is not bound to a host-path volume")
                claims.append(claim)
                result.append(("bind", path, target, ro or bool(volume["persistentVolumeClaim"].get("readOnly"))))
            elif "emptyDir" in volume:
                if (volume["emptyDir"] or {}).get("medium") == "Memory":
                    result.append(("tmpfs", "-", target, ro))
                else:
                    path = poddir / mount["name"]
                    path.mkdir(parents=True, exist_ok=True)
                    path.chmod(0o777)
                    result.append(("bind", str(path), target, ro))
            elif "secret" in volume or "configMap" in volume:
                kind = "secretRef" if "secret" in volume else "configMapRef"
                source = volume.get("secret") or volume.get("configMap")
                name = source.get("secretName") or source.get("name")
                data = self.key_data(ns, kind, name, optional=bool(source.get("optional"))) or {}
                path = poddir / mount["name"]
                path.mkdir(parents=True, exist_ok=True)
                items = source.get("items") or [{"key": key, "path": key} for key in data]
                for item in items:
                    if item["key"] in data:
                        (path / item["path"]).parent.mkdir(parents=True, exist_ok=True)
                        (path / item["path"]).write_text(data[item["key"]])
                result.append(("bind", str(path), target, True))
            else:  # projected service account tokens and the like: an empty directory
                path = poddir / mount["name"]
                path.mkdir(parents=True, exist_ok=True)
                result.append(("bind", str(path), target, True))
        # Parents before children, so a nested mount is not hidden by its parent's.
        result.sort(key=lambda m: m[2].rstrip("/").count("/"))
        for _, _, target, _ in result:
            if ".." in Path(target).parts or not target.startswith("/") or any(c.isspace() for c in target):
                raise NotReady("CreateContainerConfigError", f"unsupported mount path {target!r}")
        return result, claims

    def pods_mounting(self, ns: str, claims: list[str], *, exclude: str) -> list[str]:
        pods = self.api.list(f"/api/v1/namespaces/{ns}/pods")
        return sorted(p["metadata"]["name"] for p in pods
                      if p["metadata"]["uid"] != exclude and not is_mover(p)
                      and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
                      and any((v.get("persistentVolumeClaim") or {}).get("claimName") in claims
                              for v in p["spec"].get("volumes") or []))

    def finish_record(self, container: Container, *, killed: bool = False) -> None:
        if not container.record or container.record.get("finished"):
            return
        container.record.update({"finished": container.finished or utcnow(), "exitCode": container.exit_code,
                                 "killed": killed and container.exit_code is None})
        with self.lock, open(self.workdir / "movers.jsonl", "a") as f:
            f.write(json.dumps(container.record) + "\n")

    # -- the kubelet's log endpoint ---------------------------------------------------------------------------------

    def start_log_server(self) -> None:
        certdir = self.workdir / "pki"
        certdir.mkdir(exist_ok=True)
        cert, key = certdir / "kubelet.crt", certdir / "kubelet.key"
        if not cert.exists():
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
                            "-subj", f"/CN={self.node}", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
        agent = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("kubelet endpoint: " + fmt, *args)

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                url = urllib.parse.urlsplit(self.path)
                parts = url.path.strip("/").split("/")
                if len(parts) != 4 or parts[0] != "containerLogs":
                    self.send_error(404, "not found")
                    return
                query = urllib.parse.parse_qs(url.query)
                agent.serve_log(self, parts[1], parts[2], parts[3], query)

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True, name="kubelet-endpoint").start()

    def serve_log(self, handler: http.server.BaseHTTPRequestHandler, ns: str, pod: str, name: str,
                  query: dict[str, list[str]]) -> None:
        with self.lock:
            container = next((c for c in self.containers.values()
                              if (c.namespace, c.pod, c.name) == (ns, pod, name)), None)
        timestamps = query.get("timestamps", ["false"])[0] == "true"
        follow = query.get("follow", ["false"])[0] == "true"
        tail = int(query["tailLines"][0]) if "tailLines" in query else None
        limit = int(query["limitBytes"][0]) if "limitBytes" in query else None
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()

        def send(data: bytes) -> None:
            if data:
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                handler.wfile.flush()

        lines = read_log(container.log_path, timestamps) if container else []
        index = max(0, len(lines) - tail) if tail is not None else 0
        sent = 0
        while True:
            for line in lines[index:]:
                data = line.encode()
                if limit is not None:
                    data = data[:max(0, limit - sent)]
                send(data)
                sent += len(data)
            index = len(lines)
            if not follow or container is None or (limit is not None and sent >= limit):
                break
            if container.process and container.process.poll() is not None and container.reader \
                    and not container.reader.is_alive():
                break
            time.sleep(0.2)
            lines = read_log(container.log_path, timestamps)
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()

    # -- the loop ---------------------------------------------------------------------------------------------------

    def run_once(self) -> None:
        self.heartbeat()
        self.provision()
        self.reclaim()
        self.sync_pods()

    def run(self) -> None:
        self.register()
        while not self.stopping.is_set():
            try:
                self.run_once()
            except (ApiError, OSError) as exc:  # the API server restarting, a timeout: try again next time
                log.warning("poll failed: %s", exc)
            self.stopping.wait(self.interval)
        for uid in list(self.containers):
            self.stop_container(uid)


#: Pods of this image run for real (volsync's mover image: its movers, and anything else that runs restic from it).
RUN_IMAGE = "quay.io/backube/volsync"


def is_mover(pod: dict[str, Any]) -> bool:
    """Run for real: a one-container pod of volsync's mover image (any tag), or whose command is volsync's restic
    mover script."""
    containers = pod["spec"].get("containers") or []
    if len(containers) != 1:
        return False
    image = containers[0].get("image") or ""
    return (containers[0].get("command") or [""])[0] == MOVER_COMMAND or image.split(":")[0].split("@")[0] == RUN_IMAGE


def conditions(ready: bool, when: str, *, reason: str | None = None) -> list[dict[str, Any]]:
    value = "True" if ready else "False"
    result = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": when},
              {"type": "Initialized", "status": "True", "lastTransitionTime": when}]
    for kind in ("ContainersReady", "Ready"):
        entry = {"type": kind, "status": value, "lastTransitionTime": when}
        if reason:
            entry["reason"] = reason
        result.append(entry)
    return result


def security(spec: dict[str, Any], container: dict[str, Any]) -> tuple[tuple[int, int], list[int], set[str], bool]:
    """(uid, gid), supplementary groups, capabilities and no-new-privileges, as a container runtime applies them."""
    pod_sc, sc = spec.get("securityContext") or {}, container.get("securityContext") or {}
    uid = sc.get("runAsUser", pod_sc.get("runAsUser", 0))
    gid = sc.get("runAsGroup", pod_sc.get("runAsGroup", 0))
    groups = list(pod_sc.get("supplementalGroups") or [])
    if pod_sc.get("fsGroup") is not None:
        groups.append(pod_sc["fsGroup"])
    if sc.get("privileged"):
        return (int(uid), int(gid)), sorted(set(groups)), {"all"}, False
    caps = set(DEFAULT_CAPS)
    drop = {c.lower() for c in (sc.get("capabilities") or {}).get("drop") or []}
    add = {c.lower() for c in (sc.get("capabilities") or {}).get("add") or []}
    caps = set() if "all" in drop else caps - drop
    caps |= add
    caps = {c.removeprefix("cap_") for c in caps}
    return (int(uid), int(gid)), sorted(set(groups)), caps, sc.get("allowPrivilegeEscalation") is False


def field_value(pod: dict[str, Any], path: str) -> str:
    meta, spec = pod["metadata"], pod["spec"]
    values = {"metadata.name": meta["name"], "metadata.namespace": meta["namespace"], "metadata.uid": meta["uid"],
              "spec.nodeName": spec.get("nodeName", ""), "spec.serviceAccountName": spec.get("serviceAccountName", ""),
              "status.hostIP": "127.0.0.1", "status.podIP": "127.0.0.1"}
    return values.get(path, "")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion (``$$`` escapes)."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


def copy_log(stream: Any, path: Path) -> None:
    with open(path, "a", buffering=1) as out:
        for raw in iter(stream.readline, b""):
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            out.write(f"{stamp} {raw.decode(errors='replace').rstrip(chr(10))}\n")
    stream.close()


def read_log(path: Path, timestamps: bool) -> list[str]:
    try:
        lines = path.read_text().splitlines(keepends=True)
    except FileNotFoundError:
        return []
    return lines if timestamps else [line.split(" ", 1)[1] if " " in line else line for line in lines]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.node_agent", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    parser.add_argument("--node", default="agent-node")
    parser.add_argument("--image", required=True, type=Path,
                        help="the mover 'image': a directory with mover-restic/ and bin/restic "
                             "(scripts/build-volsync.sh's cache)")
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--storage-class", default="agent-hostpath")
    parser.add_argument("--no-default-class", action="store_true")
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--port", type=int, default=0, help="the kubelet port (default: any free one)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s node-agent %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if os.geteuid() != 0:
        parser.error("the node agent runs movers in mount namespaces and chroots: run it as root")
    agent = NodeAgent(Api(args.kubeconfig), node=args.node, image=args.image, workdir=args.workdir,
                      storage_class=args.storage_class, default_class=not args.no_default_class,
                      interval=args.interval, port=args.port)
    signal.signal(signal.SIGTERM, lambda *_: agent.stopping.set())
    try:
        agent.run()
    except KeyboardInterrupt:
        agent.stopping.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
