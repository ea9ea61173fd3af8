"""The API server and etcd stopped and started in the middle of a restore, once in each phase (issue 13).

A control plane of this module's own (the session's shared one is never disturbed). ``ControlPlane.stop_apiserver``
kills (SIGKILL: a crashed control-plane node) kube-controller-manager, kube-scheduler, kube-apiserver and etcd, and
``start_apiserver()`` starts them again on the same etcd data; kwok, the nodes' kubelets, keeps running. The two
controllers go down with the API server because, left running, client-go's back-off after the outage made them
create a Deployment's pods 5 to 70 s late (see devtools/controlplane.py). The real controller process runs
throughout with ``--api-timeout 2s`` as the chart's ServiceAccount with exactly the chart's RBAC rules and a real
token, and is never restarted: it must ride out the outage on its own. The mover simulator and this test's own client
see the outage too and carry on once the API server answers again.

The outage hits each phase deterministically: the restore is *held* in the phase by something a cluster really has,
which the test lets go only after the API server is back, and the phase is asserted from the PVCRestore read right
before the API server is stopped (``ledger`` rows "API server restarts" by case):

* Initialize: a lock ConfigMap left by a restore that no longer exists (younger than ``--lock-ttl``, so the
  controller waits for it: "PVC data is locked by ..."); released afterwards as ``kubectl pvc-restore unlock`` would.
* ScaleDown: a pod of the Deployment that carries a finalizer, so it stays Terminating after the scale to 0 (a pod
  slow to stop): the controller waits for it; the finalizer is removed afterwards.
* Restore: the mover simulator's sync takes ``RESTORE_DELAY`` s and has started; it ends while the API server is down
  (its status is written once it is back).
* Finalize: a volsync mover pod (a pod of Job ``volsync-dst-<destination>``) that mounts the PVC, stays Pending and
  carries a finalizer: Finalize deletes the destination, then waits for the mover pod to go before it scales anything
  back; the pod is let go afterwards.
* Finalize-in-flight: nothing held. The API server stops as soon as the restore is seen in Finalize (about 0.5 s
  here), so the outage meets Finalize's own requests (in trials: the scale of the StatefulSet back up). Seen too
  late (already Finished), the case is skipped, not passed; in trials it was hit every time.

In the held phases, too, the controller is mid-poll or mid-reconcile when the API server goes (it polls every 0.2 s
and a waiting phase repeats its reads). Requests fail as connection refused, then, right after the start, meet an API
server still starting (503, 429, and 403 until its RBAC caches are filled). The outage lasts ``OUTAGE`` s plus the
start (about 3.5 s), well past ``--api-timeout``.

Then, as tests/test_crash_recovery.py checks after a SIGKILL: Finished without error, the requested snapshot
restored, every workload back at its recorded replicas and running, nothing left stopped, the source un-paused, no
ReplicationDestination and no lock left, exactly one PVCRestore for the one annotation, the mover started exactly
once (counted by the simulator) with no workload pod mounting the PVC, and the controller process still running with
no unexpected error in its log.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from controller.triggers import CLAIM_ANNOTATION
from devtools.controlplane import CONTROL_PLANE_NODE, ControlPlane
from devtools.kubeapi import Api
from devtools.mover_simulator import MoverSimulator
from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import locks
from kubectl_pvc_restore.model import RESTORE_ANNOTATION, now
from tests import scenario as sc
from tests.helpers import (
    Cluster,
    SyncKube,
    bind_role,
    identity_kubeconfig,
    render_chart_for_namespace,
    stop_process,
    wait_for,
)

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[1]
#: How long the API server and etcd stay stopped (their start adds about 3 s).
OUTAGE = 3.0
#: The mover simulator's sync in the Restore case: it ends while the API server is down.
RESTORE_DELAY = 4.0
HOLD_FINALIZER = "chaos.pvc-restore.test/hold"
PHASES = ["Initialize", "ScaleDown", "Restore", "Finalize", "Finalize-in-flight"]


class CountingSimulator(MoverSimulator):
    """The mover simulator, counting the syncs it starts per (namespace, destination). The base class remembers a
    sync as started before it writes that to the API server; when the outage makes that write fail, the start is
    forgotten here so that it is made again, and counted once, when the API server is back."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.starts: Counter[tuple[str, str]] = Counter()

    def step(self, rd: dict[str, Any]) -> None:
        before = set(self.started)
        try:
            super().step(rd)
        except Exception:
            for key in set(self.started) - before:
                del self.started[key]
            raise

    def record(self, namespace: str, name: str, entry: dict[str, Any]) -> None:
        super().record(namespace, name, entry)
        if name.endswith(".started"):
            self.starts[(namespace, name.removesuffix(".started"))] += 1


# -- this module's control plane, client, simulator, namespaces and controller -----------------------------------

@pytest.fixture(scope="module")
def chaos_plane() -> Iterator[ControlPlane]:
    cp = ControlPlane(f"chaos-api-{os.getpid()}", nodes=1, restartable=True)
    cp.start()
    try:
        yield cp
    finally:
        cp.stop(quiet=True)


@pytest.fixture(scope="module")
def chaos_kube(portal, chaos_plane) -> SyncKube:
    config = str(chaos_plane.kubeconfig)
    return SyncKube(portal, portal.call(lambda: k.Kube.connect(kubeconfig=config)))


@pytest.fixture(scope="module")
def chaos_simulator(chaos_plane) -> Iterator[CountingSimulator]:
    sim = CountingSimulator(Api(chaos_plane.kubeconfig), interval=0.1)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def chaos_cluster(request, chaos_kube, chaos_simulator) -> Iterator[Cluster]:
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{base}-{uuid.uuid4().hex[:6]}"
    chaos_kube.create(k.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    wait_for(lambda: chaos_kube.get_or_none(k.Resource("v1", "ServiceAccount", "serviceaccounts"), "default", name),
             message="the namespace's default ServiceAccount")
    yield Cluster(chaos_kube, name)
    chaos_kube.delete(k.NAMESPACES, name)
    for pv in chaos_kube.list(k.PVS, label_selector=f"test-namespace={name}"):
        chaos_kube.delete(k.PVS, pv["metadata"]["name"])


@pytest.fixture
def chaos_controller(chaos_plane, chaos_kube, chaos_cluster, tmp_path) -> Iterator[Callable[[], subprocess.Popen]]:
    """``start()`` runs the real controller process as ServiceAccount ``pvc-restore-controller`` holding the chart's
    controller rules in the test's namespace (a real bound token), ``--api-timeout 2s``, polling every 0.2 s."""
    from tests.conftest import free_port

    ns = chaos_cluster.ns
    role = next(d for d in render_chart_for_namespace(chaos_plane, "chaos", ns)
                if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "chaos-pvc-restore")
    bind_role(chaos_kube, ns, "pvc-restore-controller", role["rules"], name="controller-role")
    config = identity_kubeconfig(chaos_kube, str(chaos_plane.kubeconfig), ns, "pvc-restore-controller",
                                 tmp_path / "controller.kubeconfig")
    procs: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        env = {key: value for key, value in os.environ.items() if key not in (
            "PVC_RESTORE_CRASH_AT", "KUBECONFIG", "WATCH_NAMESPACE", "POLL_INTERVAL", "LOG_LEVEL", "API_TIMEOUT")}
        log_path = tmp_path / "controller.log"
        with open(log_path, "w") as log_file:  # the child has its own copy of the descriptor
            proc = subprocess.Popen(
                [sys.executable, "-m", "controller", "--kubeconfig", config, "--namespace", ns, "--poll-interval",
                 "0.2", "--api-timeout", "2s", "--health-address", f"127.0.0.1:{free_port()}",
                 "--metrics-address", f"127.0.0.1:{free_port()}"],
                env=env, cwd=str(REPO), stdout=log_file, stderr=subprocess.STDOUT)
        proc.log_path = log_path  # type: ignore[attr-defined]
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        stop_process(proc)


# -- holding a restore in a phase --------------------------------------------------------------------------------

def the_restore(cluster: Cluster) -> dict[str, Any] | None:
    items = sc.restores(cluster)
    return items[0] if len(items) == 1 else None


def phase_of(restore: dict[str, Any] | None) -> str | None:
    return ((restore or {}).get("status") or {}).get("phase")


def remove_hold(cluster: Cluster, res: k.Resource, name: str) -> None:
    obj = cluster.kube.get_or_none(res, name, cluster.ns)
    if obj is not None and HOLD_FINALIZER in (obj["metadata"].get("finalizers") or []):
        finalizers = [f for f in obj["metadata"]["finalizers"] if f != HOLD_FINALIZER]
        cluster.kube.patch(res, name, cluster.ns, {"metadata": {
            "finalizers": finalizers, "resourceVersion": obj["metadata"]["resourceVersion"]}})


class Hold:
    """Keeps the restore in ``phase`` until ``release()``; ``reached(restore)`` says it is held there now."""

    phase = ""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def before(self) -> None:
        """Set up before the restore is asked for."""

    def reached(self, restore: dict[str, Any] | None) -> bool:
        return phase_of(restore) == self.phase

    def release(self) -> None:
        """Let the restore go on (the API server is back)."""


class StaleLock(Hold):
    phase = "Initialize"

    def before(self) -> None:
        self.cluster.kube.create(k.CONFIGMAPS, locks.lock_manifest(
            self.cluster.ns, sc.PVC, "data-gone", str(uuid.uuid4()), now()), self.cluster.ns)

    def reached(self, restore: dict[str, Any] | None) -> bool:
        return super().reached(restore) and "is locked by PVCRestore data-gone" in restore["status"].get("message", "")

    def release(self) -> None:
        self.cluster.kube.delete(k.CONFIGMAPS, locks.lock_name(sc.PVC), self.cluster.ns)


class SlowPod(Hold):
    phase = "ScaleDown"

    def before(self) -> None:
        pod = next(p for p in self.cluster.pods(pvc=sc.PVC) if p["metadata"]["name"].startswith("web-"))
        self.pod = pod["metadata"]["name"]
        self.cluster.kube.patch(k.PODS, self.pod, self.cluster.ns, {"metadata": {"finalizers": [HOLD_FINALIZER]}})

    def reached(self, restore: dict[str, Any] | None) -> bool:
        return super().reached(restore) and self.pod in restore["status"].get("message", "")

    def release(self) -> None:
        remove_hold(self.cluster, k.PODS, self.pod)


class SlowMover(Hold):
    phase = "Restore"

    def reached(self, restore: dict[str, Any] | None) -> bool:
        return super().reached(restore) and bool(restore["status"].get("moverStarted"))


class MoverPod(Hold):
    """A pod of the destination's mover Job, as volsync makes it, created once the sync started (so the simulator's
    record of pods mounting the PVC at the start is not about it). No scheduler picks it, so it stays Pending: kwok
    completes a Job's running pod at once, and a completed pod no longer holds the PVC. Its Job does not exist, so
    the garbage collector deletes it at once; the finalizer keeps it Terminating."""

    phase = "Finalize"
    pod = ""

    def reached(self, restore: dict[str, Any] | None) -> bool:
        status = (restore or {}).get("status") or {}
        if not self.pod and status.get("phase") == "Restore" and status.get("moverStarted"):
            destination = status["replicationDestination"]
            self.pod = f"volsync-dst-{destination}-chaos"
            self.cluster.kube.create(k.PODS, {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": self.pod, "namespace": self.cluster.ns, "finalizers": [HOLD_FINALIZER],
                             "labels": {"app.kubernetes.io/created-by": "volsync"},
                             "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
                                                  "name": f"volsync-dst-{destination}", "uid": str(uuid.uuid4()),
                                                  "controller": True}]},
                "spec": {**Cluster.pod_template("mover", sc.PVC)["spec"], "schedulerName": "chaos-none"}},
                self.cluster.ns)
        return super().reached(restore) and "waiting for the volsync mover pod" in status.get("message", "")

    def release(self) -> None:
        remove_hold(self.cluster, k.PODS, self.pod)
        if self.cluster.kube.get_or_none(k.PODS, self.pod, self.cluster.ns) is not None:
            self.cluster.kube.delete(k.PODS, self.pod, self.cluster.ns)


class InFlight(Hold):
    """Nothing held: the API server stops as soon as the restore is seen in Finalize, while Finalize deletes the
    destination, scales the workloads back and releases the lock (about 0.5 s here)."""

    phase = "Finalize"

    def reached(self, restore: dict[str, Any] | None) -> bool:
        return phase_of(restore) in ("Finalize", "Finished")


HOLDS: dict[str, type[Hold]] = {"Initialize": StaleLock, "ScaleDown": SlowPod, "Restore": SlowMover,
                                "Finalize": MoverPod, "Finalize-in-flight": InFlight}


def answers(kube: SyncKube) -> bool:
    try:
        kube.list(k.NAMESPACES)
        return True
    except k.KubeError:
        return False


# -- the test ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("phase", PHASES)
def test_apiserver_and_etcd_restarted_mid_restore(phase, chaos_plane, chaos_cluster, chaos_controller,
                                                  chaos_simulator, ledger):
    cluster = chaos_cluster
    sc.setup(cluster, delay=RESTORE_DELAY if phase in ("Restore", "Finalize") else 0.5)
    hold = HOLDS[phase](cluster)
    hold.before()
    controller = chaos_controller()
    sc.annotate(cluster, "1")

    seen = wait_for(lambda: (lambda r: r if hold.reached(r) else None)(the_restore(cluster)), timeout=60,
                    interval=0.05, message=f"the restore to be held in {phase}")
    name = seen["metadata"]["name"]
    before = cluster.kube.get(k.PVC_RESTORES, name, cluster.ns)  # the last read before the API server goes
    hit = phase_of(before)
    if hit != hold.phase and isinstance(hold, InFlight):
        pytest.skip(f"the restore was {hit} when seen: too late to stop the API server in Finalize")
    started = time.monotonic()
    chaos_plane.stop_apiserver(components=CONTROL_PLANE_NODE)
    try:
        ledger.count("API server restarts", kind=phase)
        time.sleep(OUTAGE)
    finally:
        chaos_plane.start_apiserver()
    down = time.monotonic() - started
    ledger.check(hit == hold.phase, f"the outage meant for {phase} hit {hit}")
    wait_for(lambda: answers(cluster.kube), timeout=30, message="the API server to answer this test's client")
    ledger.check(controller.poll() is None, f"the controller process died during the outage ({phase}): "
                 f"{controller.log_path.read_text()[-3000:]}")
    hold.release()

    restore = sc.wait_finished(cluster, name, timeout=90)
    ledger.count("restores run")
    status = restore["status"]
    log = controller.log_path.read_text()
    where = f"outage of {down:.1f}s in {phase}"
    ledger.check(controller.poll() is None, f"the controller process died after the {where}: {log[-3000:]}")
    ledger.check(status.get("error") is None, f"the restore failed after the {where}: {status.get('error')}")
    ledger.check(status.get("restoredSnapshot") == "bbbb2222",
                 f"after the {where} the restore restored {status.get('restoredSnapshot')}, not bbbb2222")
    owners = {(o["kind"], o["name"]): o["replicas"] for o in status.get("pvcOwners") or []}
    ledger.check(owners == {("Deployment", "web"): 3, ("StatefulSet", "db"): 2},
                 f"after the {where} the recorded replicas are {owners}")
    ledger.check(not status.get("stopped"), f"after the {where} status.stopped holds {status.get('stopped')}")
    ledger.check(len(sc.restores(cluster)) == 1,
                 f"after the {where} the one annotation made {len(sc.restores(cluster))} PVCRestores")
    annotations = cluster.kube.get(k.PVCS, sc.PVC, cluster.ns)["metadata"].get("annotations") or {}
    ledger.check(RESTORE_ANNOTATION not in annotations and CLAIM_ANNOTATION not in annotations,
                 f"after the {where} the PVC still carries the trigger: {annotations}")
    destination = status.get("replicationDestination")
    record = cluster.simulator_record(destination) if destination else None
    ledger.check(record is not None and record["snapshot"] == "bbbb2222",
                 f"after the {where} the mover's record is {record}")
    ledger.check(record is not None and record["podsMountingPVC"] == [],
                 f"after the {where} the mover started while pods mounted the PVC: {record}")
    starts = {d: n for (ns, d), n in chaos_simulator.starts.items() if ns == cluster.ns}
    ledger.check(starts == {destination: 1}, f"after the {where} the mover started {starts} (once, for "
                 f"{destination}, expected)")
    ledger.check(cluster.kube.list(k.REPLICATION_DESTINATIONS, cluster.ns) == [],
                 f"after the {where} a ReplicationDestination is left")
    ledger.check(cluster.kube.get_or_none(k.CONFIGMAPS, locks.lock_name(sc.PVC), cluster.ns) is None,
                 f"after the {where} the lock is left")
    ledger.check(cluster.replicas(k.DEPLOYMENTS, "web") == 3 and cluster.replicas(k.STATEFULSETS, "db") == 2,
                 f"after the {where} the workloads are not back at their replicas")
    ledger.check(all(not (s["spec"].get("paused") or False)
                     for s in cluster.kube.list(k.REPLICATION_SOURCES, cluster.ns)),
                 f"after the {where} the ReplicationSource is left paused")
    cluster.wait_running(5, pvc=sc.PVC)  # kube-controller-manager, restarted with the API server, takes 20 s or so
    ledger.check("Traceback" not in log and "unexpected error" not in log,
                 f"the controller met the {where} with an unexpected error: {log[-3000:]}")
