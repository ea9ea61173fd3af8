"""Session fixtures: one real control plane per test session (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok nodes) started lazily by the first test that needs it, the volsync mover simulator, and a fresh
namespace per test."""

from __future__ import annotations

import os
import re
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devtools.controlplane import ControlPlane  # noqa: E402
from devtools.mover_simulator import MoverSimulator  # noqa: E402
from kubectl_pvc_restore import kube as k  # noqa: E402
from tests.helpers import Cluster, SyncKube  # noqa: E402


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    cp = ControlPlane(f"test-{os.getpid()}")
    cp.start()
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
def mover_simulator(portal, kube) -> Iterator[MoverSimulator]:
    sim = MoverSimulator(kube.kube, interval=0.1)
    future = portal.start_task_soon(sim.run)
    yield sim
    future.cancel()


@pytest.fixture
def namespace(request, kube) -> Iterator[str]:
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{base}-{uuid.uuid4().hex[:6]}"
    kube.create(k.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    kube.delete(k.NAMESPACES, name)
    for pv in kube.list(k.PVS, label_selector=f"test-namespace={name}"):
        kube.delete(k.PVS, pv["metadata"]["name"])


@pytest.fixture
def cluster(kube, namespace, mover_simulator) -> Cluster:
    from tests.helpers import wait_for

    wait_for(lambda: kube.get_or_none(k.Resource("v1", "ServiceAccount", "serviceaccounts"), "default", namespace),
             message="the namespace's default ServiceAccount")
    return Cluster(kube, namespace)
