"""Test helpers: a synchronous facade over the async Kube layer, and builders for PVCs, workloads and volsync
objects in a test's namespace."""

from __future__ import annotations

import contextlib
import json
import re
import time
from typing import Any, Callable, Iterator

from devtools import mover_simulator
from kubectl_pvc_restore import kube as k


class SyncKube:
    """Runs ``Kube`` coroutines on the session's event loop thread (an anyio blocking portal)."""

    def __init__(self, portal: Any, kube: k.Kube) -> None:
        self.portal = portal
        self.kube = kube

    def __getattr__(self, name: str) -> Callable[..., Any]:
        attr = getattr(self.kube, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return self.portal.call(lambda: attr(*args, **kwargs))

        return call


@contextlib.contextmanager
def in_process_controllers(portal: Any, kube: k.Kube, namespace: str, **defaults: Any) -> Iterator[Callable[..., Any]]:
    """``start(**overrides)`` runs a controller in the session's event loop, scoped to ``namespace``, with short poll
    intervals (``defaults`` and then ``overrides`` change its Settings); all of them are stopped on exit."""
    import asyncio

    from controller.loop import Controller
    from controller.settings import Settings

    running = []

    def start(**overrides: Any) -> Controller:
        options = dict(namespace=namespace, poll_interval=0.2, restore_timeout=30.0, scale_down_timeout=60.0,
                       lock_stale_after=300.0)
        options.update(defaults)
        options.update(overrides)
        ctl = Controller(kube, Settings(**options))
        stop = asyncio.Event()
        running.append((stop, portal.start_task_soon(ctl.run, stop)))
        return ctl

    try:
        yield start
    finally:
        for stop, future in running:
            portal.call(stop.set)
            future.result(timeout=60)


def wait_for(predicate: Callable[[], Any], *, timeout: float = 60.0, interval: float = 0.2,
             message: str = "condition") -> Any:
    """Poll until ``predicate()`` is truthy and return it; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}; last value: {last!r}")


class Cluster:
    """Builders bound to one test's namespace."""

    def __init__(self, kube: SyncKube, namespace: str) -> None:
        self.kube = kube
        self.ns = namespace

    # -- storage --------------------------------------------------------------------------------------------

    def pvc(self, name: str, *, size: str = "1Gi") -> dict[str, Any]:
        """A PVC bound (by kube-controller-manager's binder) to a static hostPath PV made for it."""
        pv_name = f"{self.ns}-{name}"[:253]
        self.kube.create(k.PVS, {
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": pv_name, "labels": {"test-namespace": self.ns}},
            "spec": {
                "capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                "hostPath": {"path": f"/tmp/pv/{pv_name}"},
                "claimRef": {"namespace": self.ns, "name": name},
            },
        })
        return self.kube.create(k.PVCS, {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": self.ns},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "", "volumeName": pv_name,
                     "resources": {"requests": {"storage": size}}},
        }, self.ns)

    def wait_bound(self, name: str) -> None:
        wait_for(lambda: self.kube.get(k.PVCS, name, self.ns).get("status", {}).get("phase") == "Bound",
                 message=f"PVC {name} to be Bound")

    # -- workloads -------------------------------------------------------------------------------------------

    @staticmethod
    def pod_template(app: str, pvc: str | None) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "containers": [{"name": "app", "image": "registry.example/app:1"}],
            "terminationGracePeriodSeconds": 1,
        }
        if pvc:
            spec["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": pvc}}]
            spec["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
        return {"metadata": {"labels": {"app": app}}, "spec": spec}

    def deployment(self, name: str, *, replicas: int, pvc: str | None) -> dict[str, Any]:
        return self.kube.create(k.DEPLOYMENTS, {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": self.ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": self.pod_template(name, pvc)},
        }, self.ns)

    def statefulset(self, name: str, *, replicas: int, pvc: str | None) -> dict[str, Any]:
        return self.kube.create(k.STATEFULSETS, {
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": self.ns},
            "spec": {"replicas": replicas, "serviceName": name, "podManagementPolicy": "Parallel",
                     "selector": {"matchLabels": {"app": name}}, "template": self.pod_template(name, pvc)},
        }, self.ns)

    def pods(self, *, pvc: str | None = None, running_only: bool = False) -> list[dict[str, Any]]:
        pods = self.kube.list(k.PODS, self.ns)
        if pvc is not None:
            pods = [p for p in pods if any((v.get("persistentVolumeClaim") or {}).get("claimName") == pvc
                                           for v in p["spec"].get("volumes") or [])]
        if running_only:
            pods = [p for p in pods if p.get("status", {}).get("phase") == "Running"
                    and not p["metadata"].get("deletionTimestamp")]
        return pods

    def wait_running(self, count: int, *, pvc: str | None = None, timeout: float = 90.0) -> list[dict[str, Any]]:
        return wait_for(lambda: (lambda ps: ps if len(ps) == count else None)(self.pods(pvc=pvc, running_only=True)),
                        timeout=timeout, message=f"{count} running pods")

    def replicas(self, res: k.Resource, name: str) -> int:
        return int(self.kube.get(res, name, self.ns)["spec"].get("replicas", 0))

    # -- volsync ---------------------------------------------------------------------------------------------

    def replication_source(self, name: str, pvc: str, *, mover: str = "restic",
                           extra: dict[str, Any] | None = None) -> dict[str, Any]:
        section: dict[str, Any]
        if mover == "restic":
            section = {"repository": f"{name}-restic", "copyMethod": "Direct", "retain": {"daily": 7},
                       "moverSecurityContext": {"runAsUser": 1000, "fsGroup": 1000},
                       "cacheCapacity": "1Gi"}
        elif mover == "rclone":
            section = {"rcloneConfig": f"{name}-rclone", "rcloneConfigSection": "remote",
                       "rcloneDestPath": f"bucket/{name}", "copyMethod": "Direct"}
        else:
            section = {"copyMethod": "Direct"}
        section.update(extra or {})
        return self.kube.create(k.REPLICATION_SOURCES, {
            "apiVersion": "volsync.backube/v1alpha1", "kind": "ReplicationSource",
            "metadata": {"name": name, "namespace": self.ns},
            "spec": {"sourcePVC": pvc, "trigger": {"schedule": "0 * * * *"}, mover: section},
        }, self.ns)

    def simulate(self, *, snapshots: dict[str, list[dict[str, str]]] | None = None,
                 result: str = "Successful", delay: float = 0.5, pvcs: dict[str, dict] | None = None) -> None:
        """Configure the mover simulator for this namespace."""
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": mover_simulator.CONFIG, "namespace": self.ns},
                "data": {"snapshots": json.dumps(snapshots or {}),
                         "behaviour": json.dumps({"result": result, "delaySeconds": delay, "pvcs": pvcs or {}})}}
        if self.kube.get_or_none(k.CONFIGMAPS, mover_simulator.CONFIG, self.ns):
            self.kube.replace(k.CONFIGMAPS, body)
        else:
            self.kube.create(k.CONFIGMAPS, body, self.ns)

    def simulator_record(self, destination: str) -> dict[str, Any] | None:
        cm = self.kube.get_or_none(k.CONFIGMAPS, mover_simulator.RECORD, self.ns)
        raw = ((cm or {}).get("data") or {}).get(destination)
        return json.loads(raw) if raw else None


SERVICE_ACCOUNTS = k.Resource("v1", "ServiceAccount", "serviceaccounts")
ROLES = k.Resource("rbac.authorization.k8s.io/v1", "Role", "roles")
ROLE_BINDINGS = k.Resource("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings")
CLUSTER_ROLES = k.Resource("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", namespaced=False)
CLUSTER_ROLE_BINDINGS = k.Resource("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings",
                                   namespaced=False)


def identity_kubeconfig(kube: SyncKube, admin_kubeconfig: str, namespace: str, account: str, path: Any,
                        *, expiration: int = 3600) -> str:
    """A kubeconfig that authenticates as ServiceAccount ``namespace/account`` (created if missing) with a real
    bound token from the TokenRequest API: what a user or the controller's pod has, with only its RBAC rights."""
    import yaml

    if kube.get_or_none(SERVICE_ACCOUNTS, account, namespace) is None:
        kube.create(SERVICE_ACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount",
                                       "metadata": {"name": account, "namespace": namespace}}, namespace)
    token = kube.request("POST", SERVICE_ACCOUNTS.url(namespace, account, "token"), what="token request", body={
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"expirationSeconds": expiration}})["status"]["token"]
    with open(admin_kubeconfig) as f:
        admin = yaml.safe_load(f)
    cluster = dict(admin["clusters"][0]["cluster"])
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": account,
        "clusters": [{"name": "test", "cluster": cluster}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {"cluster": "test", "user": account, "namespace": namespace}}],
    }
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return str(path)


def bind_role(kube: SyncKube, namespace: str, account: str, rules: list[dict[str, Any]], *,
              name: str | None = None, account_namespace: str | None = None) -> None:
    """A Role with ``rules`` in ``namespace`` bound to ServiceAccount ``account``."""
    name = name or f"{account}-role"
    kube.create(ROLES, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                        "metadata": {"name": name, "namespace": namespace}, "rules": rules}, namespace)
    kube.create(ROLE_BINDINGS, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": account_namespace or namespace}]},
        namespace)
    wait_for_rbac(kube, namespace, account_namespace or namespace, account, rules[0], allowed=True,
                  message=f"the Role {name} to take effect for {account}")


SUBJECT_ACCESS_REVIEWS = k.Resource("authorization.k8s.io/v1", "SubjectAccessReview", "subjectaccessreviews",
                                    namespaced=False)


def granted(kube: SyncKube, namespace: str, account_namespace: str, account: str, rule: dict[str, Any]) -> bool:
    """Whether the API server's authorizer lets ServiceAccount ``account_namespace/account`` do the first of what
    ``rule`` allows in ``namespace``."""
    resource, _, subresource = rule["resources"][0].partition("/")
    group = rule["apiGroups"][0]
    attributes = {"namespace": namespace, "verb": rule["verbs"][0], "group": "" if group == "*" else group,
                  "resource": resource, "subresource": subresource}
    if rule.get("resourceNames"):
        attributes["name"] = rule["resourceNames"][0]
    review = kube.create(SUBJECT_ACCESS_REVIEWS, {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": f"system:serviceaccount:{account_namespace}:{account}",
                 "groups": ["system:serviceaccounts", f"system:serviceaccounts:{account_namespace}",
                            "system:authenticated"],
                 "resourceAttributes": attributes}}, None)
    return bool(review.get("status", {}).get("allowed"))


def wait_for_rbac(kube: SyncKube, namespace: str, account_namespace: str, account: str, rule: dict[str, Any], *,
                  allowed: bool, message: str) -> None:
    """The API server's RBAC authorizer works from an informer cache: a request sent just after a Role or binding
    changed may still get the old answer. Wait until a SubjectAccessReview (the same authorizer) answers ``allowed``
    for ``rule`` (as ``granted``)."""
    wait_for(lambda: granted(kube, namespace, account_namespace, account, rule) is allowed, timeout=30,
             message=message)


def stop_process(proc: Any) -> None:
    """Terminate a subprocess (SIGTERM, then SIGKILL after 30 s) unless it already ended."""
    import subprocess

    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def http_get(url: str) -> tuple[int, str]:
    """(status, body) of a GET on the controller's health or metrics endpoint; (0, "") when nothing answers."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def render_chart_for_namespace(control_plane: Any, release: str, namespace: str, *sets: str) -> list[dict[str, Any]]:
    """The chart rendered by helm into ``namespace`` with its admission policies scoped to that namespace only (the
    rest of the suite writes status as the admin), minus the controller's Deployment and Service."""
    import subprocess
    from pathlib import Path

    import yaml

    chart = Path(__file__).resolve().parents[1] / "charts" / "pvc-restore"
    selector = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    args = [a for s in sets for a in ("--set", s)]
    rendered = subprocess.run(
        [str(control_plane.bin / "helm"), "template", release, str(chart), "-n", namespace, *args,
         "--set-json", f"admissionPolicies.namespaceSelector={json.dumps(selector)}"],
        capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(rendered) if d and d["kind"] not in ("Deployment", "Service")]


def cli(*args: str, kubeconfig: Any = None, namespace: str | None = None, env: dict[str, str] | None = None) -> Any:
    """``kubectl pvc-restore ARGS`` through click, as a user runs it, with ``--kubeconfig``/``-n`` added when given.
    Exceptions are not caught (a traceback fails the test), and the output must not show one either."""
    from click.testing import CliRunner

    from kubectl_pvc_restore.cli import cli as command

    extra = (["--kubeconfig", str(kubeconfig)] if kubeconfig is not None else []) + (
        ["-n", namespace] if namespace is not None else [])
    result = CliRunner().invoke(command, [*args, *extra], prog_name="kubectl pvc-restore", env=env,
                                catch_exceptions=False)
    OUTPUTS.append(result.output)
    assert "Traceback" not in result.output, result.output
    return result


#: Every CLI output and recorded TUI screen of the session, in order: searched for secrets (tests/real_scenario.py).
OUTPUTS: list[str] = []


def screen_text(app: Any) -> str:
    """The TUI's current screen as plain text (its SVG export without markup), recorded in OUTPUTS."""
    import html

    svg = app.export_screenshot()
    text = html.unescape(re.sub(r"<[^>]+>", "", svg.split("</style>", 1)[-1])).replace("\xa0", " ")
    OUTPUTS.append(text)
    return text
