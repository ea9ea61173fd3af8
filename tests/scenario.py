"""A restore scenario on the real control plane: a PVC mounted by a Deployment and a StatefulSet, backed up by a
restic ReplicationSource with three snapshots in the (simulated) repository."""

from __future__ import annotations

from typing import Any

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import locks, model
from kubectl_pvc_restore.model import RESTORE_ANNOTATION
from tests.helpers import Cluster, wait_for

SNAPSHOTS = [
    {"id": "aaaa1111", "time": "2024-05-01T10:00:00Z"},
    {"id": "bbbb2222", "time": "2024-05-02T10:00:00Z"},
    {"id": "cccc3333", "time": "2024-05-03T10:00:00Z"},
]
PVC = "data"
SOURCE = "data-backup"
REPOSITORY = f"{SOURCE}-restic"


def setup(cluster: Cluster, *, deployment: int = 3, statefulset: int = 2, source: bool = True,
          snapshots: list[dict[str, str]] | None = None, result: str = "Successful", delay: float = 0.5,
          pvcs: dict | None = None) -> None:
    cluster.pvc(PVC)
    if deployment:
        cluster.deployment("web", replicas=deployment, pvc=PVC)
    if statefulset:
        cluster.statefulset("db", replicas=statefulset, pvc=PVC)
    if source:
        cluster.replication_source(SOURCE, PVC)
    cluster.simulate(snapshots={REPOSITORY: SNAPSHOTS if snapshots is None else snapshots}, result=result,
                     delay=delay, pvcs=pvcs)
    if deployment or statefulset:
        cluster.wait_running(deployment + statefulset, pvc=PVC)


def create_restore(cluster: Cluster, name: str = "r1", pvc: str = PVC, **spec: Any) -> dict[str, Any]:
    """Create a PVCRestore directly (as a user with kubectl would); ``spec`` in the CRD's camelCase keys."""
    return cluster.kube.create(k.PVC_RESTORES, model.manifest(name, cluster.ns, model.Spec.from_dict(
        {"pvc": pvc, **spec})), cluster.ns)


def annotate(cluster: Cluster, value: str, pvc: str = PVC) -> None:
    cluster.kube.patch(k.PVCS, pvc, cluster.ns, {"metadata": {"annotations": {RESTORE_ANNOTATION: value}}})


def restores(cluster: Cluster) -> list[dict[str, Any]]:
    return cluster.kube.list(k.PVC_RESTORES, cluster.ns)


def wait_finished(cluster: Cluster, name: str | None = None, timeout: float = 90.0) -> dict[str, Any]:
    def finished():
        items = restores(cluster) if name is None else [cluster.kube.get(k.PVC_RESTORES, name, cluster.ns)]
        done = [r for r in items if (r.get("status") or {}).get("phase") == "Finished"
                and not r["metadata"].get("finalizers")]
        return done[0] if done and (name is not None or len(items) == 1) else None
    return wait_for(finished, timeout=timeout, message=f"PVCRestore {name or '(the only one)'} to finish")


def wait_holding(cluster: Cluster, name: str, timeout: float = 90.0) -> dict[str, Any]:
    """Finished on partial data, workloads kept stopped: it keeps its finalizer (it holds the PVC)."""
    from kubectl_pvc_restore.model import is_holding

    return wait_for(lambda: (lambda r: r if is_holding(r.get("status") or {}, r["spec"].get("partialData")) else None)(
        cluster.kube.get(k.PVC_RESTORES, name, cluster.ns)), timeout=timeout, message=f"{name} to hold the PVC")


def wait_phase(cluster: Cluster, name: str, phase: str, timeout: float = 60.0) -> dict[str, Any]:
    return wait_for(lambda: (lambda r: r if (r.get("status") or {}).get("phase") == phase else None)(
        cluster.kube.get(k.PVC_RESTORES, name, cluster.ns)), timeout=timeout, message=f"{name} to reach {phase}")


def assert_cleaned_up(cluster: Cluster, *, deployment: int = 3, statefulset: int = 2, paused: bool = False,
                      other_pods: int = 0) -> None:
    """Everything back as before: replicas, pods running, source not paused, no destination, no lock."""
    if deployment:
        assert cluster.replicas(k.DEPLOYMENTS, "web") == deployment
    if statefulset:
        assert cluster.replicas(k.STATEFULSETS, "db") == statefulset
    assert cluster.kube.list(k.REPLICATION_DESTINATIONS, cluster.ns) == []
    assert cluster.kube.get_or_none(k.CONFIGMAPS, locks.lock_name(PVC), cluster.ns) is None
    for source in cluster.kube.list(k.REPLICATION_SOURCES, cluster.ns):
        assert bool(source["spec"].get("paused", False)) is paused
    if deployment or statefulset:
        cluster.wait_running(deployment + statefulset + other_pods, pvc=PVC)
