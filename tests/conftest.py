"""Session fixtures: one real control plane per test session (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok nodes) started lazily by the first test that needs it, the volsync mover simulator, and a fresh
namespace per test."""

from __future__ import annotations

import os
import re
import shutil
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devtools.controlplane import ControlPlane  # noqa: E402
from devtools.kubeapi import Api  # noqa: E402
from devtools.mover_simulator import MoverSimulator  # noqa: E402
from devtools.real_volsync import RealVolsync  # noqa: E402
from kubectl_pvc_restore import kube as k  # noqa: E402
from tests.helpers import Cluster, SyncKube, cli, in_process_controllers, stop_process  # noqa: E402

#: A ValidatingAdmissionPolicy binding with ConfigMap params that matches nothing, applied before any test: the API
#: server stops its ConfigMap param informer for good once no binding uses ConfigMap params (kubernetes/kubernetes
#: #130887, still in 1.36), so a chart admission guard installed by a later test would read a frozen copy.
CONFIGMAP_PARAMS_KEEPER = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: test-configmap-params-keeper}
spec:
  failurePolicy: Ignore
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}]
  validations: [{expression: "true"}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: test-configmap-params-keeper}
spec:
  policyName: test-configmap-params-keeper
  paramRef: {selector: {matchLabels: {no-such-label: "true"}}, parameterNotFoundAction: Allow}
  validationActions: [Audit]
  matchResources: {namespaceSelector: {matchLabels: {no-such-label: "true"}}}
"""


#: The real-volsync scenario's fixtures (data, chart_rbac_controller, run_cli).
pytest_plugins = ["tests.reliability", "tests.chaos", "tests.real_scenario"]

#: Fixtures that start a control plane (directly or through another fixture): a test that uses one is marked
#: ``cluster``, so ``pytest -m "not cluster"`` runs the unit tests alone, in seconds.
CONTROL_PLANE_FIXTURES = {"control_plane", "real_volsync", "eco", "short_tokens"}


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if CONTROL_PLANE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    cp = ControlPlane(f"test-{os.getpid()}")
    cp.start()
    cp.kubectl("apply", "-f", "-", input=CONFIGMAP_PARAMS_KEEPER)
    try:
        yield cp
    finally:
        cp.stop(quiet=True)


@pytest.fixture(scope="session")
def portal() -> Iterator[object]:
    import anyio.from_thread

    with anyio.from_thread.start_blocking_portal() as p:
        yield p


@pytest.fixture(scope="session")
def kubeconfig(control_plane: ControlPlane) -> str:
    return str(control_plane.kubeconfig)


@pytest.fixture(scope="session")
def kube(portal, kubeconfig) -> SyncKube:
    return SyncKube(portal, portal.call(lambda: k.Kube.connect(kubeconfig=kubeconfig)))


@pytest.fixture(scope="session")
def mover_simulator(kubeconfig) -> Iterator[MoverSimulator]:
    sim = MoverSimulator(Api(kubeconfig), interval=0.1).start()
    yield sim
    sim.stop()


def _namespace_for(request, kube) -> Iterator[str]:
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{base}-{uuid.uuid4().hex[:6]}"
    kube.create(k.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    kube.delete(k.NAMESPACES, name)
    for pv in kube.list(k.PVS, label_selector=f"test-namespace={name}"):
        kube.delete(k.PVS, pv["metadata"]["name"])


@pytest.fixture
def namespace(request, kube) -> Iterator[str]:
    yield from _namespace_for(request, kube)


@pytest.fixture(scope="session")
def real_volsync() -> Iterator[RealVolsync]:
    """A control plane of its own with real volsync: its manager, its restic mover run by the node agent, a restic
    REST server (devtools.real_volsync)."""
    cp = ControlPlane(f"volsync-{os.getpid()}", nodes=0)
    cp.start()
    volsync = RealVolsync(cp)
    try:
        volsync.start()
        yield volsync
    finally:
        volsync.stop()
        cp.stop(quiet=True)
        shutil.rmtree(volsync.workdir, ignore_errors=True)  # its repositories and volumes: this session's only


@pytest.fixture(scope="session")
def real_kube(portal, real_volsync) -> SyncKube:
    config = str(real_volsync.cp.kubeconfig)
    return SyncKube(portal, portal.call(lambda: k.Kube.connect(kubeconfig=config)))


@pytest.fixture
def real_namespace(request, real_kube) -> Iterator[str]:
    """A fresh namespace on the real-volsync control plane."""
    yield from _namespace_for(request, real_kube)


@pytest.fixture
def real_controller(portal, real_kube, real_namespace):
    """An in-process controller on the real-volsync control plane, scoped to the test's namespace."""
    with in_process_controllers(portal, real_kube.kube, real_namespace, restore_timeout=120.0) as start:
        yield start


@pytest.fixture
def cluster(kube, namespace, mover_simulator) -> Cluster:
    from tests.helpers import wait_for

    wait_for(lambda: kube.get_or_none(k.Resource("v1", "ServiceAccount", "serviceaccounts"), "default", namespace),
             message="the namespace's default ServiceAccount")
    return Cluster(kube, namespace)


@pytest.fixture
def controller(portal, kube, namespace):
    """Start an in-process controller scoped to the test's namespace: ``controller(restore_timeout=2)``."""
    with in_process_controllers(portal, kube.kube, namespace) as start:
        yield start


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def controller_process(kubeconfig, namespace, tmp_path):
    """Start the real ``pvc-restore-controller`` as a subprocess (for crash tests)."""
    import subprocess

    procs = []

    def start(*, crash_at: str | None = None, extra: tuple[str, ...] = (), env_extra: dict | None = None,
              args: tuple[str, ...] | None = None):
        env = dict(os.environ)
        for var in ("PVC_RESTORE_CRASH_AT", "KUBECONFIG", "WATCH_NAMESPACE", "POLL_INTERVAL", "RESTORE_TIMEOUT",
                    "LOCK_TTL", "LOG_LEVEL"):
            env.pop(var, None)
        if crash_at:
            env["PVC_RESTORE_CRASH_AT"] = crash_at
        env.update(env_extra or {})
        path = tmp_path / f"controller-{len(procs)}.log"
        if args is None:
            args = ("--kubeconfig", kubeconfig, "--namespace", namespace, "--poll-interval", "0.2",
                    "--health-address", f"127.0.0.1:{free_port()}", "--metrics-address", f"127.0.0.1:{free_port()}")
        with open(path, "w") as log:  # the child has its own copy of the descriptor
            proc = subprocess.Popen([sys.executable, "-m", "controller", *args, *extra],
                                    env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO))
        proc.log_path = path
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        stop_process(proc)


@pytest.fixture
def run(kubeconfig, namespace):
    """The CLI against the test's namespace as the admin: ``run("start", "data")`` -> click's Result. ``ns=False``
    leaves ``-n`` out; ``kubeconfig_path`` runs it as another user."""
    def invoke(*args: str, ns: bool = True, kubeconfig_path: str | None = None):
        return cli(*args, kubeconfig=kubeconfig_path or kubeconfig, namespace=namespace if ns else None)
    return invoke
