"""Fixtures of the chaos tests (issue 13): the fault-injecting proxy (devtools/fault_proxy.py, its own process) in
front of the session's API server, and the real controller process talking through it with exactly the chart's RBAC
and a real ServiceAccount token, which the tests search for in everything the product prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from kubectl_pvc_restore import kube as k
from tests.helpers import bind_role, identity_kubeconfig, render_chart_for_namespace, stop_process, wait_for

REPO = Path(__file__).resolve().parents[1]
CONTROLLER_AGENT = "pvc-restore-controller/"


class FaultProxy:
    """The proxy process; ``configure(rate=..., kinds=[...])``, ``stats()``, ``reset()`` through its control API."""

    def __init__(self, admin_kubeconfig: str, workdir: Path, *, seed: int = 13, stall: float = 2.5) -> None:
        with open(admin_kubeconfig) as f:
            cluster = yaml.safe_load(f)["clusters"][0]["cluster"]
        port_file = workdir / "fault-proxy.port"
        port_file.unlink(missing_ok=True)
        self.log_path = workdir / "fault-proxy.log"
        with open(self.log_path, "w") as log:  # the child has its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "devtools.fault_proxy", "--upstream", cluster["server"],
                 "--ca", cluster["certificate-authority"], "--port-file", str(port_file), "--seed", str(seed),
                 "--stall", str(stall), "--only-agent", CONTROLLER_AGENT, "--lifetime", "5400"],
                cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=log)
        wait_for(lambda: port_file.exists() or self.proc.poll() is not None, timeout=30, message="the fault proxy")
        assert self.proc.poll() is None, self.log_path.read_text()
        self.url = f"http://127.0.0.1:{port_file.read_text().strip()}"

    def _call(self, what: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}/__fault_proxy/{what}", data=data,
                                         method="POST" if data is not None else "GET")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def configure(self, **change: Any) -> dict[str, Any]:
        return self._call("config", change)

    def stats(self) -> dict[str, Any]:
        return self._call("stats")

    def reset(self) -> dict[str, Any]:
        return self._call("reset", {})

    def stop(self) -> None:
        stop_process(self.proc)


@pytest.fixture(scope="session")
def fault_proxy(control_plane, tmp_path_factory) -> Iterator[FaultProxy]:
    proxy = FaultProxy(str(control_plane.kubeconfig), tmp_path_factory.mktemp("fault-proxy"))
    try:
        yield proxy
    finally:
        proxy.stop()


def grant_controller(kube: Any, control_plane: Any, namespace: str, account_namespace: str) -> None:
    """The chart's controller rules in ``namespace``, for ServiceAccount
    ``account_namespace/pvc-restore-controller``."""
    role = next(d for d in render_chart_for_namespace(control_plane, "chaos", namespace)
                if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "chaos-pvc-restore")
    if kube.get_or_none(k.Resource("rbac.authorization.k8s.io/v1", "Role", "roles"), "controller-role",
                        namespace) is None:
        bind_role(kube, namespace, "pvc-restore-controller", role["rules"], name="controller-role",
                  account_namespace=account_namespace)


def controller_kubeconfig(kube: Any, control_plane: Any, admin_kubeconfig: str, namespace: str, server: str,
                          path: Path) -> tuple[str, str]:
    """A kubeconfig for ServiceAccount ``namespace/pvc-restore-controller`` holding the chart's controller rules in
    ``namespace``, with its server set to ``server`` (the proxy). Returns (path, token)."""
    grant_controller(kube, control_plane, namespace, namespace)
    identity_kubeconfig(kube, admin_kubeconfig, namespace, "pvc-restore-controller", path)
    config = yaml.safe_load(path.read_text())
    config["clusters"][0]["cluster"] = {"server": server}
    path.write_text(yaml.safe_dump(config))
    return str(path), config["users"][0]["user"]["token"]


@pytest.fixture
def proxied_controller(kube, control_plane, kubeconfig, namespace, fault_proxy, tmp_path):
    """``start(*extra, identity="a", namespaces=None)`` runs the real controller process through the fault proxy
    (``--api-timeout 1s``, poll 0.2 s); returns the Popen with ``log_path``. ``token`` holds its API token."""
    from tests.conftest import free_port

    path, token = controller_kubeconfig(kube, control_plane, kubeconfig, namespace, fault_proxy.url,
                                        tmp_path / "controller.kubeconfig")
    procs: list[subprocess.Popen] = []

    def start(*extra: str, identity: str | None = None, crash_at: str | None = None,
              namespaces: tuple[str, ...] | None = None) -> subprocess.Popen:
        env = {key: value for key, value in os.environ.items() if key not in (
            "PVC_RESTORE_CRASH_AT", "KUBECONFIG", "WATCH_NAMESPACE", "POLL_INTERVAL", "LOG_LEVEL")}
        if crash_at:
            env["PVC_RESTORE_CRASH_AT"] = crash_at
        log_path = tmp_path / f"controller-{len(procs)}.log"
        scope = [a for ns in (namespaces or (namespace,)) for a in ("--namespace", ns)]
        args = ["--kubeconfig", path, *scope, "--poll-interval", "0.2", "--api-timeout", "1s",
                "--health-address", f"127.0.0.1:{free_port()}", "--metrics-address", f"127.0.0.1:{free_port()}"]
        if identity:
            args += ["--leader-election-id", identity]
        with open(log_path, "w") as log_file:  # the child has its own copy of the descriptor
            proc = subprocess.Popen([sys.executable, "-m", "controller", *args, *extra], env=env, cwd=str(REPO),
                                    stdout=log_file, stderr=subprocess.STDOUT)
        proc.log_path = log_path  # type: ignore[attr-defined]
        procs.append(proc)
        return proc

    start.token = token  # type: ignore[attr-defined]
    start.kubeconfig = path  # type: ignore[attr-defined]
    try:
        yield start
    finally:
        for proc in procs:
            stop_process(proc)


def secrets_absent(ledger: Any, secrets: dict[str, str], texts: dict[str, str]) -> None:
    """Each secret value appears in none of the texts (logs, events, statuses, CLI output): one search per pair."""
    for secret_name, value in secrets.items():
        assert len(value) >= 16, f"{secret_name} is too short to search for"
        for where, text in texts.items():
            ledger.count("secret searches")
            ledger.check(value not in text, f"{secret_name} appears in {where}")


# -- leader election (tests/test_chaos_leader.py) ----------------------------------------------------------------

def bind_chart_leader_election(kube: Any, control_plane: Any, namespace: str) -> list[dict[str, Any]]:
    """The chart's leader-election Role (the Lease in the release namespace) bound in ``namespace`` to the
    controller's ServiceAccount: ``controller_kubeconfig`` binds only the chart's ClusterRole. Returns its rules."""
    role = next(d for d in render_chart_for_namespace(control_plane, "chaos", namespace)
                if d["kind"] == "Role" and d["metadata"]["name"] == "chaos-pvc-restore-leader-election")
    if kube.get_or_none(k.Resource("rbac.authorization.k8s.io/v1", "Role", "roles"), "controller-leader-election",
                        namespace) is None:
        bind_role(kube, namespace, "pvc-restore-controller", role["rules"], name="controller-leader-election")
    return role["rules"]


def lease_holder(kube: Any, namespace: str) -> str | None:
    from controller.leader import LEASE_NAME

    lease = kube.get_or_none(k.LEASES, LEASE_NAME, namespace)
    return ((lease or {}).get("spec") or {}).get("holderIdentity") or None


def writes_of(stats: dict[str, Any], identity: str, *, lease: bool = False) -> list[dict[str, Any]]:
    """The proxy's logged writes by the controller replica ``identity`` (its User-Agent ends in ``(identity)``),
    in time order: those to the Lease with ``lease=True``, all others by default."""
    return sorted((w for w in stats["writes"] if w["agent"].startswith(CONTROLLER_AGENT)
                   and w["agent"].endswith(f"({identity})") and ("leases" in w["path"].split("/")) is lease),
                  key=lambda w: w["time"])
