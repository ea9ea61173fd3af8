"""GitOps owners and autoscalers on a control plane of their own with the real Flux Kustomization, Argo CD
Application and KEDA ScaledObject CRDs (from their Go modules). A small simulated reconciler plays Flux, Argo CD and
KEDA: it scales the workload back up unless its owner is suspended or paused, as they would."""

from __future__ import annotations

import asyncio
import json
import os
import uuid

import pytest

from controller.loop import Controller
from controller.settings import Settings
from devtools.controlplane import ControlPlane
from devtools.kubeapi import Api
from devtools.mover_simulator import MoverSimulator
from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import model
from tests import scenario as sc
from tests.helpers import Cluster, SyncKube, wait_for

KUSTOMIZATIONS = k.Resource("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "kustomizations")
APPLICATIONS = k.Resource("argoproj.io/v1alpha1", "Application", "applications")
SCALED_OBJECTS = k.Resource("keda.sh/v1alpha1", "ScaledObject", "scaledobjects")
WANT = "gitops.example.com/replicas"


@pytest.fixture(scope="module")
def eco(portal):
    cp = ControlPlane(f"eco-{os.getpid()}", nodes=1, ecosystem_crds=True)
    cp.start()
    kube = SyncKube(portal, portal.call(lambda: k.Kube.connect(kubeconfig=str(cp.kubeconfig))))
    sim = MoverSimulator(Api(str(cp.kubeconfig)), interval=0.1).start()
    reconciler = portal.start_task_soon(reconcile_forever, kube.kube)
    yield cp, kube
    sim.stop()
    reconciler.cancel()
    cp.stop(quiet=True)


async def reconcile_forever(kube: k.Kube) -> None:
    """Flux/Argo CD/KEDA as the workload sees them: put replicas back to the wanted count unless suspended."""
    while True:
        try:
            for dep in await kube.list(k.DEPLOYMENTS, None):
                meta = dep["metadata"]
                want = (meta.get("annotations") or {}).get(WANT)
                if want is None or dep["spec"].get("replicas") == int(want):
                    continue
                if await holds(kube, dep):
                    await kube.set_scale(k.DEPLOYMENTS, meta["name"], meta["namespace"], int(want))
        except k.KubeError:
            pass
        await asyncio.sleep(0.1)


async def holds(kube: k.Kube, dep: dict) -> bool:
    """True when some owner would scale the Deployment back up now."""
    meta = dep["metadata"]
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    if labels.get("kustomize.toolkit.fluxcd.io/name"):
        ks = await kube.get_or_none(KUSTOMIZATIONS, labels["kustomize.toolkit.fluxcd.io/name"],
                                    labels["kustomize.toolkit.fluxcd.io/namespace"])
        return bool(ks) and not ks["spec"].get("suspend")
    if annotations.get("argocd.argoproj.io/tracking-id"):
        app_name = annotations["argocd.argoproj.io/tracking-id"].split(":")[0]
        app = await kube.get_or_none(APPLICATIONS, app_name, meta["namespace"])
        return bool(app) and ((app["spec"].get("syncPolicy") or {}).get("automated") or {}).get("selfHeal", False)
    for so in await kube.list(SCALED_OBJECTS, meta["namespace"]):
        if so["spec"]["scaleTargetRef"]["name"] == meta["name"]:
            return "autoscaling.keda.sh/paused-replicas" not in (so["metadata"].get("annotations") or {})
    return False


def new_namespace(kube: SyncKube, prefix: str) -> str:
    ns = f"{prefix}-{uuid.uuid4().hex[:8]}"
    kube.create(k.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    wait_for(lambda: kube.get_or_none(k.Resource("v1", "ServiceAccount", "serviceaccounts"), "default", ns),
             message="default ServiceAccount")
    return ns


@pytest.fixture
def eco_cluster(eco, portal):
    cp, kube = eco
    ns = new_namespace(kube, "eco")
    cluster = Cluster(kube, ns)
    stop = asyncio.Event()
    ctl = Controller(kube.kube, Settings(namespace=ns, poll_interval=0.2, restore_timeout=30,
                                         scale_down_timeout=20, argocd_namespace=ns))
    future = portal.start_task_soon(ctl.run, stop)
    yield cluster
    portal.call(stop.set)
    future.result(timeout=60)
    kube.delete(k.NAMESPACES, ns)
    for pv in kube.list(k.PVS, label_selector=f"test-namespace={ns}"):
        kube.delete(k.PVS, pv["metadata"]["name"])


def managed_deployment(cluster, labels=None, annotations=None, replicas=2):
    cluster.pvc(sc.PVC)
    cluster.replication_source(sc.SOURCE, sc.PVC)
    cluster.simulate(snapshots={sc.REPOSITORY: sc.SNAPSHOTS}, delay=1.0)
    template = cluster.pod_template("web", sc.PVC)
    cluster.kube.create(k.DEPLOYMENTS, {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": cluster.ns, "labels": labels or {},
                     "annotations": {WANT: str(replicas), **(annotations or {})}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": template}},
        cluster.ns)
    cluster.wait_running(replicas, pvc=sc.PVC)


def restore(cluster, name="r1"):
    cluster.kube.create(k.PVC_RESTORES, model.manifest(name, cluster.ns, model.Spec(pvc=sc.PVC)), cluster.ns)
    return sc.wait_finished(cluster, name)


def test_flux_kustomization_is_suspended_and_resumed(eco_cluster):
    cluster = eco_cluster
    cluster.kube.create(KUSTOMIZATIONS, {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": cluster.ns},
        "spec": {"interval": "10m", "path": "./apps", "prune": True,
                 "sourceRef": {"kind": "GitRepository", "name": "flux-system"}}}, cluster.ns)
    managed_deployment(cluster, labels={"kustomize.toolkit.fluxcd.io/name": "apps",
                                        "kustomize.toolkit.fluxcd.io/namespace": cluster.ns})
    done = restore(cluster)
    assert done["status"].get("error") is None, done["status"]
    assert [(s["kind"], s["method"]) for s in done["status"]["stopped"]] == [("Kustomization", "suspend")]
    assert cluster.simulator_record(done["status"]["replicationDestination"])["podsMountingPVC"] == []
    assert "suspend" not in cluster.kube.get(KUSTOMIZATIONS, "apps", cluster.ns)["spec"]
    cluster.wait_running(2, pvc=sc.PVC)


def test_argo_application_automated_sync_is_turned_off_and_back(eco_cluster):
    cluster = eco_cluster
    automated = {"prune": True, "selfHeal": True}
    cluster.kube.create(APPLICATIONS, {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "shop", "namespace": cluster.ns},
        "spec": {"project": "default",
                 "destination": {"server": "https://kubernetes.default.svc", "namespace": cluster.ns},
                 "source": {"repoURL": "https://git.example/apps.git", "path": "shop"},
                 "syncPolicy": {"automated": automated}}}, cluster.ns)
    managed_deployment(cluster, annotations={"argocd.argoproj.io/tracking-id":
                                             f"shop:apps/Deployment:{cluster.ns}/web"})
    done = restore(cluster)
    assert done["status"].get("error") is None, done["status"]
    [stop] = done["status"]["stopped"]
    assert stop["method"] == "argoAutomated" and json.loads(stop["original"]) == automated
    assert cluster.simulator_record(done["status"]["replicationDestination"])["podsMountingPVC"] == []
    assert cluster.kube.get(APPLICATIONS, "shop", cluster.ns)["spec"]["syncPolicy"]["automated"] == automated


def test_keda_scaled_object_is_paused_and_hpa_reported(eco_cluster):
    cluster = eco_cluster
    managed_deployment(cluster)
    cluster.kube.create(SCALED_OBJECTS, {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": "web", "namespace": cluster.ns, "annotations": {"example.com/keep": "yes"}},
        "spec": {"scaleTargetRef": {"name": "web"}, "minReplicaCount": 2,
                 "triggers": [{"type": "cron", "metadata": {"timezone": "UTC", "start": "0 8 * * *",
                                                             "end": "0 18 * * *", "desiredReplicas": "2"}}]}},
        cluster.ns)
    cluster.kube.create(k.HPAS, {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web-hpa"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 4}}, cluster.ns)
    done = restore(cluster)
    assert done["status"].get("error") is None, done["status"]
    assert [(s["kind"], s["method"], s["original"]) for s in done["status"]["stopped"]] == \
        [("ScaledObject", "kedaPause", None)]
    assert any("HorizontalPodAutoscaler web-hpa" in n for n in done["status"]["notes"])
    events = [e for e in cluster.kube.list(k.EVENTS, cluster.ns) if e["reason"] == "Autoscaler"]
    assert events and "web-hpa" in events[0]["message"]
    annotations = cluster.kube.get(SCALED_OBJECTS, "web", cluster.ns)["metadata"]["annotations"]
    assert annotations == {"example.com/keep": "yes"}
    assert cluster.simulator_record(done["status"]["replicationDestination"])["podsMountingPVC"] == []


@pytest.mark.parametrize("point", ["stopped:apps", "stopped:web", "unstopped:web", "unstopped:apps"])
def test_crash_at_each_gitops_and_autoscaler_step(eco, portal, point, tmp_path):
    """A second namespace with its own controller process, killed at the step and restarted."""
    import subprocess
    import sys

    cp, kube = eco
    ns = new_namespace(kube, "eco-crash")
    cluster = Cluster(kube, ns)
    cluster.kube.create(KUSTOMIZATIONS, {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "apps", "namespace": ns},
        "spec": {"interval": "10m", "path": "./apps", "prune": True, "suspend": False,
                 "sourceRef": {"kind": "GitRepository", "name": "flux-system"}}}, ns)
    managed_deployment(cluster, labels={"kustomize.toolkit.fluxcd.io/name": "apps",
                                        "kustomize.toolkit.fluxcd.io/namespace": ns})
    cluster.kube.create(SCALED_OBJECTS, {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "web", "namespace": ns},
        "spec": {"scaleTargetRef": {"name": "web"}, "triggers": [{"type": "cron", "metadata": {
            "timezone": "UTC", "start": "0 8 * * *", "end": "0 18 * * *", "desiredReplicas": "2"}}]}}, ns)
    cluster.kube.create(k.PVC_RESTORES, model.manifest("r1", ns, model.Spec(pvc=sc.PVC)), ns)
    args = [sys.executable, "-m", "controller", "--kubeconfig", str(cp.kubeconfig), "--namespace", ns,
            "--poll-interval", "0.2", "--health-address", "", "--metrics-address", ""]
    env = {k_: v for k_, v in os.environ.items() if k_ != "PVC_RESTORE_CRASH_AT"}
    crashed = subprocess.Popen(args, env={**env, "PVC_RESTORE_CRASH_AT": point}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    assert crashed.wait(timeout=90) == -9, f"did not reach {point}"
    again = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        done = sc.wait_finished(cluster, "r1")
        assert done["status"].get("error") is None, done["status"]
        assert cluster.kube.get(KUSTOMIZATIONS, "apps", ns)["spec"]["suspend"] is False
        assert "autoscaling.keda.sh/paused-replicas" not in \
            (cluster.kube.get(SCALED_OBJECTS, "web", ns)["metadata"].get("annotations") or {})
        assert cluster.simulator_record(done["status"]["replicationDestination"])["podsMountingPVC"] == []
        cluster.wait_running(2, pvc=sc.PVC)
    finally:
        again.terminate()
        again.wait(timeout=30)
        kube.delete(k.NAMESPACES, ns)
