"""A Finalize the API server refuses (401/403) leaves the workloads at 0 until someone fixes the permission: it must
be loud. The real controller, as a ServiceAccount holding the chart's rules as a Role, loses ``patch`` on
``deployments/scale`` while a restore is in Restore; in Finalize it records a Warning Event ``FinalizeBlocked`` on
the PVCRestore (repeated at the configured interval), ``pvc_restore_finalize_blocked`` is 1 and ``/readyz`` is 503.
With the permission back the restore finishes, the workloads come back and the signal clears."""

from __future__ import annotations

import copy
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from controller import loop, phases
from controller.health import Health
from controller.settings import Settings
from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import model
from tests import scenario as sc
from tests.conftest import free_port
from tests.helpers import ROLES, bind_role, http_get, identity_kubeconfig, wait_for, wait_for_rbac

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "pvc-restore"
ACCOUNT = "pvc-restore"
ROLE = f"{ACCOUNT}-role"


get = http_get


def metric(text: str, name: str) -> float | None:
    """The value of an unlabelled sample in a /metrics page (None when absent)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def chart_rules(control_plane) -> list[dict]:
    """The rules of the chart's ClusterRole (``pvc-restore.rules``), as rendered by helm."""
    proc = subprocess.run([str(control_plane.bin / "helm"), "template", "pr", str(CHART), "-n", "ops"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    [role] = [d for d in yaml.safe_load_all(proc.stdout) if d and d["kind"] == "ClusterRole"]
    return role["rules"]


def without_scale_patch(rules: list[dict]) -> list[dict]:
    """The same rules, except that deployments/scale may only be read."""
    out = []
    for rule in copy.deepcopy(rules):
        if "apps" in rule.get("apiGroups", []) and "deployments/scale" in rule.get("resources", []):
            rest = [r for r in rule["resources"] if r != "deployments/scale"]
            if rest:
                out.append({**rule, "resources": rest})
            out.append({"apiGroups": ["apps"], "resources": ["deployments/scale"],
                        "verbs": [v for v in rule["verbs"] if v != "patch"]})
        else:
            out.append(rule)
    assert out != rules
    return out


def blocked_events(cluster, name: str) -> list[dict]:
    return cluster.kube.list(k.EVENTS, cluster.ns,
                             field_selector=f"involvedObject.name={name},reason=FinalizeBlocked")


def test_finalize_refused_is_loud_and_clears_once_fixed(cluster, control_plane, kubeconfig, controller_process,
                                                         tmp_path):
    rules = chart_rules(control_plane)
    config = identity_kubeconfig(cluster.kube, kubeconfig, cluster.ns, ACCOUNT, tmp_path / "controller.kubeconfig")
    bind_role(cluster.kube, cluster.ns, ACCOUNT, rules, name=ROLE)
    sc.setup(cluster, statefulset=0, deployment=2, delay=5.0)
    health, metrics_port = free_port(), free_port()
    proc = controller_process(args=(
        "--kubeconfig", config, "--namespace", cluster.ns, "--poll-interval", "0.2",
        "--health-address", f"127.0.0.1:{health}", "--metrics-address", f"127.0.0.1:{metrics_port}",
        "--finalize-blocked-event-interval", "1s"))
    wait_for(lambda: get(f"http://127.0.0.1:{health}/readyz")[0] == 200, message="/readyz 200")

    cluster.kube.create(k.PVC_RESTORES, model.manifest("r1", cluster.ns, model.Spec(pvc=sc.PVC)), cluster.ns)
    sc.wait_phase(cluster, "r1", "Restore")
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 0
    role = cluster.kube.get(ROLES, ROLE, cluster.ns)
    cluster.kube.replace(ROLES, {**role, "rules": without_scale_patch(rules)})
    scale_patch = {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch"]}
    wait_for_rbac(cluster.kube, cluster.ns, cluster.ns, ACCOUNT, scale_patch, allowed=False,
                  message="RBAC to apply the narrowed Role")

    # The mover finishes (5s), Finalize cannot scale the Deployment back.
    first = wait_for(lambda: blocked_events(cluster, "r1"), timeout=60, message="a FinalizeBlocked event")[0]
    assert first["type"] == "Warning"
    message = first["message"]
    assert "may not patch deployments/scale (API group apps)" in message, message
    assert "stay scaled down until this is fixed" in message, message
    assert f"kubectl pvc-restore describe -n {cluster.ns} r1" in message, message
    assert first["involvedObject"]["kind"] == "PVCRestore"
    assert cluster.kube.get(k.PVC_RESTORES, "r1", cluster.ns)["status"]["phase"] == "Finalize"
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 0

    status, text = get(f"http://127.0.0.1:{health}/readyz")
    assert status == 503 and "Finalize blocked" in text and f"{cluster.ns}/r1" in text, (status, text)
    assert "patch deployments/scale" in text, text
    assert metric(get(f"http://127.0.0.1:{metrics_port}/metrics")[1], "pvc_restore_finalize_blocked") == 1
    # Repeated while it lasts (at most once per interval: 1s here).
    wait_for(lambda: len(blocked_events(cluster, "r1")) >= 2, timeout=30, message="a second FinalizeBlocked event")

    # The permission back: the next attempt (after the back-off) finishes, the workloads come back.
    cluster.kube.replace(ROLES, {**cluster.kube.get(ROLES, ROLE, cluster.ns), "rules": rules})
    done = sc.wait_finished(cluster, "r1", timeout=120)
    assert done["status"].get("error") is None, done["status"]
    sc.assert_cleaned_up(cluster, deployment=2, statefulset=0)
    wait_for(lambda: get(f"http://127.0.0.1:{health}/readyz")[0] == 200, message="/readyz 200 again")
    assert metric(get(f"http://127.0.0.1:{metrics_port}/metrics")[1], "pvc_restore_finalize_blocked") == 0
    events = len(blocked_events(cluster, "r1"))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert len(blocked_events(cluster, "r1")) == events
    log = proc.log_path.read_text()
    assert "Finalize of" in log and "is no longer refused" in log, log[-3000:]


class RefusingKube:
    """Enough of Kube for one Finalize step that the API server refuses, and records events."""

    def __init__(self, error: k.Forbidden) -> None:
        self.error = error
        self.events: list[tuple[str, str]] = []

    async def event(self, obj, reason, message, *, type_="Normal", component=None) -> None:
        self.events.append((reason, message))


def finalizing(name: str = "r1") -> dict:
    obj = model.manifest(name, "apps", model.Spec(pvc="data"))
    obj["metadata"].update(uid=f"uid-{name}", resourceVersion="1")
    obj["status"] = {"phase": "Finalize"}
    return obj


@pytest.mark.parametrize("code,expected", [
    (403, "the controller may not patch deployments/scale (API group apps) in namespace apps (HTTP 403)"),
    (401, "the API server rejects the controller's credentials (HTTP 401"),
])
def test_blocked_signal_without_a_cluster(monkeypatch, code, expected):
    """The event's rate limit, the gauge, /readyz and their clearing, with a Finalize that raises."""
    import asyncio
    import time

    from prometheus_client import REGISTRY

    text = ('deployments.apps "web" is forbidden: User "system:serviceaccount:apps:pvc-restore" cannot patch resource '
            '"deployments/scale" in API group "apps" in the namespace "apps"') if code == 403 else "Unauthorized"
    error = k.Forbidden(f"scale Deployment web to 2: permission denied: {text}", code=code)
    kube = RefusingKube(error)
    health = Health(stale_after=30)
    ctl = loop.Controller(kube, Settings(namespace="apps", finalize_blocked_event_interval=3600), health=health)
    outcome = {"raise": True}

    async def reconcile(run):
        if outcome["raise"]:
            raise error
    monkeypatch.setattr(phases, "reconcile", reconcile)

    async def attempts(n: int) -> None:
        for _ in range(n):
            await ctl._reconcile(finalizing(), [])

    asyncio.run(attempts(3))
    assert [reason for reason, _ in kube.events] == ["FinalizeBlocked"], "once per interval"
    assert expected in kube.events[0][1], kube.events[0][1]
    assert "kubectl pvc-restore describe -n apps r1" in kube.events[0][1]
    assert REGISTRY.get_sample_value("pvc_restore_finalize_blocked") == 1
    health.last_api_ok = time.monotonic()
    ready, why = health.ready()
    assert not ready and "apps/r1" in why, why

    outcome["raise"] = False
    asyncio.run(attempts(1))
    assert REGISTRY.get_sample_value("pvc_restore_finalize_blocked") == 0
    assert health.ready() == (True, "ok")
