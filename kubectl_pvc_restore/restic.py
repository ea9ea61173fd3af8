"""Reading the snapshot list of a ReplicationSource's restic repository, with the repository Secret as restic's
environment (its values are never printed): with ``restic`` on this machine when it reaches the repository (fast),
else with a short-lived pod in the PVC's namespace that runs ``restic snapshots --json`` on the cluster's network,
where homelab repositories (an in-cluster MinIO, a NAS address) usually are."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import time
from typing import Any

#: The image of the snapshot-listing pod: volsync's mover image, which has restic.
DEFAULT_IMAGE = "quay.io/backube/volsync:0.14.0"
#: What marks the snapshot-listing pods.
POD_LABEL = "pvc-restore.homelab-helper.benfiola.com/snapshot-list"
#: A user for the pod when the source's moverSecurityContext names none (restricted Pod Security wants non-root).
NOBODY = 65534


class ResticError(Exception):
    pass


def secret_env(secret: dict[str, Any]) -> dict[str, str]:
    env = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    env.update(secret.get("stringData") or {})
    return env


def redact(text: str, env: dict[str, str]) -> str:
    for value in env.values():
        if len(value) >= 4:
            text = text.replace(value, "<redacted>")
    return text


def parse_snapshots(out: str | bytes) -> list[dict[str, Any]]:
    """restic's ``snapshots --json`` -> the snapshots volsync's mover considers (a path with ``/data``), oldest
    first, as ``[{"id", "short_id", "time", "paths", "hostname", "size"}]`` (``size``: bytes restic processed for
    that snapshot, when it says)."""
    snapshots = []
    for s in json.loads(out or b"[]") or []:
        if any("/data" in p for p in s.get("paths") or []):
            summary = s.get("summary") or {}
            snapshots.append({"id": s["id"], "short_id": s.get("short_id") or s["id"][:8], "time": s["time"],
                              "paths": s.get("paths") or [], "hostname": s.get("hostname", ""),
                              "size": summary.get("total_bytes_processed")})
    snapshots.sort(key=lambda s: s["time"])
    return snapshots


def _clean_env(env: dict[str, str]) -> dict[str, str]:
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("RESTIC_", "AWS_", "B2_", "AZURE_",
                                                                          "GOOGLE_"))}
    full_env.update(env)
    return full_env


async def list_snapshots(env: dict[str, str], *, binary: str | None = None, timeout: float = 60.0
                         ) -> list[dict[str, Any]]:
    """The repository's snapshots through ``restic`` on this machine (see ``parse_snapshots``). Raises ResticError
    with a redacted message."""
    restic = binary or shutil.which("restic")
    if restic is None:
        raise ResticError("restic is not installed here")
    proc = await asyncio.create_subprocess_exec(restic, "snapshots", "--json", "--no-lock", "--no-cache",
                                                env=_clean_env(env), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        raise ResticError(f"restic did not answer within {timeout:g}s (is the repository reachable from here?)") \
            from None
    if proc.returncode != 0:
        raise ResticError("restic snapshots failed: " + redact(err.decode(errors="replace").strip(), env))
    return parse_snapshots(out)


def pod_manifest(source: dict[str, Any], *, image: str, timeout: float) -> dict[str, Any]:
    """A pod that prints the repository's snapshots as JSON and exits: the repository Secret as its environment
    (as volsync's mover has it), the source's moverSecurityContext, and restricted Pod Security (non-root, no
    privilege escalation, no capabilities, read-only root, the runtime's seccomp profile)."""
    from .model import MANAGED_BY, MANAGED_BY_LABEL

    meta, restic = source["metadata"], source["spec"]["restic"]
    security = dict(restic.get("moverSecurityContext") or {})
    if not security.get("runAsUser"):
        security["runAsUser"] = NOBODY
    security.update(runAsNonRoot=True, seccompProfile={"type": "RuntimeDefault"})
    name = f"pvc-restore-snapshots-{meta['name']}"[:56].rstrip("-.") + "-"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": name, "namespace": meta["namespace"],
                     "labels": {MANAGED_BY_LABEL: MANAGED_BY, POD_LABEL: meta["name"][:63].rstrip("-.")}},
        "spec": {
            "restartPolicy": "Never", "activeDeadlineSeconds": max(10, int(timeout)),
            "automountServiceAccountToken": False, "securityContext": security,
            "containers": [{
                "name": "restic", "image": image,
                "command": ["restic", "snapshots", "--json", "--no-lock", "--no-cache"],
                "envFrom": [{"secretRef": {"name": restic["repository"]}}],
                "env": [{"name": "HOME", "value": "/tmp"}],
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                    "readOnlyRootFilesystem": True, "runAsNonRoot": True},
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }],
            "volumes": [{"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}],
        },
    }


#: Container states that mean the pod will not run without someone changing something.
_STUCK = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
          "CreateContainerError")


async def list_in_cluster(kube: Any, source: dict[str, Any], *, image: str = DEFAULT_IMAGE, timeout: float = 120.0,
                          env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The repository's snapshots through a short-lived pod in the source's namespace (``pod_manifest``): created,
    waited for, its log read, deleted whatever happens. Raises ResticError with a redacted message; ``env`` (the
    Secret's values, when the caller could read them) is what is redacted."""
    from . import kube as k

    ns = source["metadata"]["namespace"]
    env = env or {}
    try:
        pod = await kube.create(k.PODS, pod_manifest(source, image=image, timeout=timeout), ns)
    except k.Forbidden:
        raise ResticError(f"you may not create pods in namespace {ns}: listing snapshots from inside the cluster "
                          "runs one (it needs create, get and delete on pods and get on pods/log there); or run "
                          "restic where the repository is reachable") from None
    name = pod["metadata"]["name"]
    try:
        deadline = time.monotonic() + timeout
        while True:
            pod = await kube.get(k.PODS, name, ns)
            status = pod.get("status") or {}
            phase = status.get("phase")
            if phase in ("Succeeded", "Failed"):
                break
            for container in status.get("containerStatuses") or []:
                waiting = (container.get("state") or {}).get("waiting") or {}
                if waiting.get("reason") in _STUCK:
                    raise ResticError(f"the snapshot-listing pod {ns}/{name} cannot start: {waiting['reason']}: "
                                      + redact(waiting.get("message") or "", env)
                                      + (f" (image {image}; choose another with --image)"
                                         if "Image" in waiting["reason"] else ""))
            if time.monotonic() > deadline:
                why = next((c.get("message") for c in status.get("conditions") or []
                            if c.get("type") == "PodScheduled" and c.get("status") == "False"), None)
                if phase == "Running":  # restic retries an unreachable repository for minutes: say what it said
                    try:
                        said = (await kube.pod_log(name, ns, container="restic", tail_lines=2)).strip()
                    except k.KubeError:
                        said = ""
                    why = f"restic says: {redact(said, env)}" if said else None
                raise ResticError(f"the snapshot-listing pod {ns}/{name} did not finish within {timeout:g}s "
                                  f"(phase {phase or 'Pending'}" + (f"; {why}" if why else "") + ")")
            await asyncio.sleep(0.5)
        try:
            log = await kube.pod_log(name, ns, container="restic")
        except k.Forbidden:
            raise ResticError(f"you may not read pod logs in namespace {ns} (get on pods/log): the snapshot-listing "
                              "pod ran, but its output cannot be read") from None
        if phase == "Failed":
            lines = [line for line in log.strip().splitlines() if line.strip()]
            raise ResticError("restic snapshots failed in the cluster: " + redact("\n".join(lines[-5:]), env))
        # restic prints the JSON on one line; anything else in the log is its stderr (warnings).
        out = next((line for line in log.splitlines() if line.startswith("[")), "[]")
        try:
            return parse_snapshots(out)
        except (ValueError, KeyError, TypeError) as exc:
            raise ResticError(f"could not read restic's snapshot list from pod {ns}/{name}: {exc}") from None
    finally:
        try:
            await kube.delete(k.PODS, name, ns)
        except k.KubeError:
            pass


#: What restic says when the repository cannot be reached from where it runs (then a pod in the cluster may reach it);
#: anything else (a wrong password, a damaged repository) would say the same from anywhere.
_UNREACHABLE = ("no such host", "dial tcp", "connection refused", "i/o timeout", "timeout", "did not answer",
                "network is unreachable", "no route to host", "Is there a repository at the following location",
                "repository does not exist", "unable to open config file", "not installed here")


def unreachable(message: str) -> bool:
    return any(marker.lower() in message.lower() for marker in _UNREACHABLE)


async def source_snapshots(kube: Any, source: dict[str, Any], *, binary: str | None = None, timeout: float = 60.0,
                           where: str = "auto", image: str = DEFAULT_IMAGE
                           ) -> tuple[list[dict[str, Any]] | None, str | None, str | None]:
    """The snapshots behind a ReplicationSource: (snapshots, None, how they were read) or (None, why not, None).
    ``where``: "local" (restic here), "cluster" (a pod), or "auto": restic here when it is installed and reaches the
    repository, else a pod (restic's own errors, such as a wrong password, are final: a pod would say the same)."""
    from . import kube as k
    from . import volsync

    mover = volsync.mover_of(source)
    if mover != "restic":
        return None, f"the {mover} mover keeps no snapshot history; only the latest can be restored", None
    namespace = source["metadata"]["namespace"]
    repository = source["spec"]["restic"].get("repository")
    if not repository:
        return None, f"ReplicationSource {source['metadata']['name']} names no repository Secret", None
    env: dict[str, str] = {}
    try:
        secret = await kube.get_or_none(k.SECRETS, repository, namespace)
    except k.Forbidden:
        secret = None  # the pod can still read it (the kubelet does, not you)
        if where == "local":
            return None, f"you may not read Secret {repository} in namespace {namespace}", None
    else:
        if secret is None:
            return None, f"repository Secret {repository} not found in namespace {namespace}", None
        env = secret_env(secret)
    local_error = None
    if where in ("auto", "local") and env:
        if shutil.which(binary or "restic") is None and where == "local":
            return None, "restic is not installed here", None
        if shutil.which(binary or "restic") is not None:
            try:
                return await list_snapshots(env, binary=binary, timeout=timeout if where == "local" else
                                            min(timeout, 15.0)), None, "restic on this machine"
            except ResticError as exc:
                if where == "local" or not unreachable(str(exc)):
                    return None, str(exc), None
                local_error = str(exc)
    try:
        snapshots = await list_in_cluster(kube, source, image=image, timeout=timeout, env=env)
    except ResticError as exc:
        return None, str(exc) + (f" (restic here: {local_error})" if local_error else ""), None
    except k.KubeError as exc:
        return None, redact(str(exc), env), None
    return snapshots, None, "a pod in the cluster"
