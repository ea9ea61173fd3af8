"""Least privilege at scale: the controller limited to a list of namespaces lists per namespace and never
cluster-wide; the chart with ``rbac.namespaces`` grants a Role per namespace and nothing cluster-wide; and the real
controller, authenticated as the chart's ServiceAccount with a real token and holding only those rights, restores
PVCs in two namespaces (the list form of WATCH_NAMESPACE), with leader election in the release namespace."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from controller.loop import Controller
from controller.settings import Settings
from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import model
from tests import scenario as sc
from tests.helpers import (
    ROLE_BINDINGS,
    ROLES,
    SERVICE_ACCOUNTS,
    Cluster,
    SyncKube,
    identity_kubeconfig,
    wait_for,
    wait_for_rbac,
)

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "pvc-restore"
RBAC_KINDS = {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
GITOPS_RULES = [
    {"apiGroups": ["kustomize.toolkit.fluxcd.io"], "resources": ["kustomizations"], "verbs": ["get", "patch"]},
    {"apiGroups": ["helm.toolkit.fluxcd.io"], "resources": ["helmreleases"], "verbs": ["get", "patch"]},
    {"apiGroups": ["argoproj.io"], "resources": ["applications"], "verbs": ["get", "patch"]},
]


def helm(control_plane, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(control_plane.bin / "helm"), *args], capture_output=True, text=True)


def render(control_plane, release: str, namespace: str, *sets: str) -> list[dict]:
    args = ["template", release, str(CHART), "-n", namespace]
    for s in sets:
        args += ["--set", s]
    proc = helm(control_plane, *args)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def new_namespace(kube: SyncKube, name: str) -> str:
    kube.create(k.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def allowed(kube: SyncKube, verb: str, group: str, resource: str, namespace: str | None) -> bool:
    """What the API server's authorizer says about the caller (SelfSubjectAccessReview; open to every user)."""
    attributes = {"verb": verb, "group": group, "resource": resource}
    if namespace:
        attributes["namespace"] = namespace
    review = kube.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", what="access review",
                          body={"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                                "spec": {"resourceAttributes": attributes}})
    return bool(review["status"].get("allowed"))


def test_settings_namespaces_and_the_single_namespace_convenience():
    assert Settings().namespaces == () and Settings().scopes == (None,)
    assert Settings(namespace="a").namespaces == ("a",)
    assert Settings(namespaces=("a", "b", "a")).namespaces == ("a", "b")
    assert Settings(namespace="b", namespaces=("a", "b")).namespaces == ("a", "b")
    for bad in ({"namespaces": ("a", "B")}, {"namespace": "../x"}, {"namespace": "c", "namespaces": ("a",)}):
        with pytest.raises(ValueError):
            Settings(**bad)


class ListingKube:
    """Records the LIST calls of a poll; namespaces in ``forbidden`` answer 403."""

    def __init__(self, forbidden=()):
        self.calls, self.forbidden = [], set(forbidden)

    async def list(self, res, namespace=None, **_):
        self.calls.append((res.plural, namespace))
        if namespace in self.forbidden:
            raise k.Forbidden(f"list {res.plural} in namespace {namespace}: permission denied")
        return []

    async def list_versioned(self, res, namespace=None, **kwargs):  # the PVCs' list, the point to follow from
        return await self.list(res, namespace, **kwargs), "1"

    async def list_metadata(self, res, namespace=None, **kwargs):  # the PVCs' list, metadata kept as the poll needs
        return await self.list_versioned(res, namespace, **kwargs)


def test_poll_lists_per_namespace_and_skips_one_that_fails(caplog):
    kube = ListingKube(forbidden={"b"})
    ctl = Controller(kube, Settings(namespaces=("a", "b", "c")))
    asyncio.run(ctl.poll())
    assert sorted(kube.calls) == sorted([(plural, ns) for ns in ("a", "c") for plural in
                                         ("persistentvolumeclaims", "configmaps", "pvcrestores")]
                                        + [("persistentvolumeclaims", "b")])
    assert None not in {ns for _, ns in kube.calls}, "never a cluster-wide list when limited"
    assert "namespace b is skipped until it can be listed" in caplog.text
    everything = ListingKube()
    asyncio.run(Controller(everything, Settings()).poll())
    assert sorted(everything.calls) == sorted([("persistentvolumeclaims", None), ("configmaps", None),
                                               ("pvcrestores", None)])
    with pytest.raises(k.Forbidden):  # nothing answered: the poll fails as a whole
        asyncio.run(Controller(ListingKube(forbidden={"a", "b"}), Settings(namespaces=("a", "b"))).poll())


@pytest.mark.parametrize("args,env", [(("--namespace", "ok", "--namespace", "Bad_NS"), {}),
                                      ((), {"WATCH_NAMESPACE": "ok,../etc"})])
def test_a_bad_namespace_exits_2_with_a_message(controller_process, args, env):
    proc = controller_process(args=("--health-address", "", "--metrics-address", "", *args), env_extra=env)
    assert proc.wait(timeout=30) == 2
    text = proc.log_path.read_text()
    assert "Invalid value for --namespace / WATCH_NAMESPACE" in text and "is not a valid Kubernetes namespace" in text
    assert "Traceback" not in text


def test_chart_namespaced_rbac_renders_roles_only(control_plane):
    cluster_wide = render(control_plane, "pr", "ops")
    [cluster_role] = [d for d in cluster_wide if d["kind"] == "ClusterRole"]
    assert {d["kind"] for d in cluster_wide if not d["metadata"]["name"].endswith("-leader-election")} \
        & RBAC_KINDS == {"ClusterRole", "ClusterRoleBinding"}

    docs = render(control_plane, "pr", "ops", "rbac.namespaces={apps,media}", "rbac.gitopsNamespaces={flux,apps}",
                  "config.leaderElection=true")
    rbac = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs if d["kind"] in RBAC_KINDS}
    assert rbac == {
        ("Role", "apps", "pr-pvc-restore"), ("RoleBinding", "apps", "pr-pvc-restore"),
        ("Role", "media", "pr-pvc-restore"), ("RoleBinding", "media", "pr-pvc-restore"),
        # gitops: only where rbac.namespaces does not already grant it
        ("Role", "flux", "pr-pvc-restore-gitops"), ("RoleBinding", "flux", "pr-pvc-restore-gitops"),
        ("Role", "ops", "pr-pvc-restore-leader-election"), ("RoleBinding", "ops", "pr-pvc-restore-leader-election"),
    }
    roles = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in docs if d["kind"] == "Role"}
    # One rule list: each namespace's Role has exactly the ClusterRole's rules.
    assert roles[("apps", "pr-pvc-restore")]["rules"] == cluster_role["rules"]
    assert roles[("media", "pr-pvc-restore")]["rules"] == cluster_role["rules"]
    assert roles[("flux", "pr-pvc-restore-gitops")]["rules"] == GITOPS_RULES
    for binding in (d for d in docs if d["kind"] == "RoleBinding"):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "pr-pvc-restore", "namespace": "ops"}]
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["WATCH_NAMESPACE"] == "apps,media"

    # config.watchNamespace may repeat rbac.namespaces (any order), never disagree with it.
    same = render(control_plane, "pr", "ops", "rbac.namespaces={apps,media}", "config.watchNamespace=media\\,apps")
    assert {e["name"]: e.get("value") for d in same if d["kind"] == "Deployment"
            for e in d["spec"]["template"]["spec"]["containers"][0]["env"]}["WATCH_NAMESPACE"] == "apps,media"
    proc = helm(control_plane, "template", "pr", str(CHART), "--set", "rbac.namespaces={apps}",
                "--set", "config.watchNamespace=other")
    assert proc.returncode != 0 and "config.watchNamespace (other) disagrees with rbac.namespaces (apps)" in proc.stderr
    for bad in ("rbac.namespaces={Apps}", "rbac.namespaces=apps", "rbac.gitopsNamespaces={a_b}"):
        proc = helm(control_plane, "template", "pr", str(CHART), "--set", bad)
        assert proc.returncode != 0 and "values don't meet the specifications of the schema" in proc.stderr, bad


@pytest.mark.timeout(300)
def test_restore_with_only_namespaced_roles(cluster, control_plane, kubeconfig, kube, portal, controller_process,
                                            tmp_path):
    suffix = uuid.uuid4().hex[:6]
    release = f"nsrbac-{suffix}"  # unique: cluster-scoped names of the chart never collide with other tests
    ops = new_namespace(kube, f"nsrbac-ops-{suffix}")  # release namespace: the ServiceAccount and the Lease
    second = new_namespace(kube, f"nsrbac-two-{suffix}")  # a second watched namespace
    gitops = new_namespace(kube, f"nsrbac-gitops-{suffix}")  # where GitOps owners would live
    outside = new_namespace(kube, f"nsrbac-out-{suffix}")  # not granted
    try:
        docs = render(control_plane, release, ops, f"rbac.namespaces={{{cluster.ns},{second}}}",
                      f"rbac.gitopsNamespaces={{{gitops}}}", "config.leaderElection=true")
        assert not {d["kind"] for d in docs} & {"ClusterRole", "ClusterRoleBinding"}
        [sa] = [d for d in docs if d["kind"] == "ServiceAccount"]
        account = sa["metadata"]["name"]
        # Apply only the ServiceAccount and the Roles/RoleBindings: nothing else of the chart reaches the cluster.
        kube.create(SERVICE_ACCOUNTS, {**sa, "metadata": {**sa["metadata"], "namespace": ops}}, ops)
        applied = []
        for doc in docs:
            if doc["kind"] in ("Role", "RoleBinding"):
                ns = doc["metadata"]["namespace"]
                kube.create(ROLES if doc["kind"] == "Role" else ROLE_BINDINGS, doc, ns)
                applied.append((doc["kind"], ns))
        assert sorted(applied) == sorted([("Role", cluster.ns), ("RoleBinding", cluster.ns), ("Role", second),
                                          ("RoleBinding", second), ("Role", gitops), ("RoleBinding", gitops),
                                          ("Role", ops), ("RoleBinding", ops)])
        config = identity_kubeconfig(kube, kubeconfig, ops, account, tmp_path / "controller.kubeconfig")
        for doc in docs:
            if doc["kind"] == "Role":
                wait_for_rbac(kube, doc["metadata"]["namespace"], ops, account, doc["rules"][0], allowed=True,
                              message=f"the Role {doc['metadata']['name']} to take effect")
        me = SyncKube(portal, portal.call(lambda: k.Kube.connect(kubeconfig=config)))

        # The identity really is limited: its namespaces yes; another namespace, all namespaces and cluster-scoped
        # objects no (real requests, Forbidden).
        assert me.list(k.PVCS, cluster.ns) == []
        assert me.list(k.PVC_RESTORES, second) == []
        for res, ns in ((k.PVCS, outside), (k.PVCS, None), (k.PVC_RESTORES, None), (k.CONFIGMAPS, ops),
                        (k.NAMESPACES, None), (k.PVS, None)):
            with pytest.raises(k.Forbidden):
                me.list(res, ns)
        # GitOps owners: get and patch in the gitops namespace, nothing more, nowhere else.
        assert allowed(me, "patch", "kustomize.toolkit.fluxcd.io", "kustomizations", gitops)
        assert allowed(me, "get", "argoproj.io", "applications", gitops)
        assert not allowed(me, "list", "argoproj.io", "applications", gitops)
        assert not allowed(me, "get", "", "pods", gitops)
        assert not allowed(me, "patch", "kustomize.toolkit.fluxcd.io", "kustomizations", outside)
        assert not allowed(me, "get", "coordination.k8s.io", "leases", cluster.ns)
        assert allowed(me, "update", "coordination.k8s.io", "leases", ops)

        # Workloads in both namespaces.
        sc.setup(cluster)
        wait_for(lambda: kube.get_or_none(SERVICE_ACCOUNTS, "default", second), message="default ServiceAccount")
        two = Cluster(kube, second)
        sc.setup(two, deployment=1, statefulset=0)

        # The real controller, configured as the Deployment configures it (WATCH_NAMESPACE "a,b", leader election,
        # Lease in the pod's namespace), with only that identity.
        [deployment] = [d for d in docs if d["kind"] == "Deployment"]
        env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
               if "value" in e}
        assert env["WATCH_NAMESPACE"] == f"{cluster.ns},{second}" and env["LEADER_ELECTION"] == "true"
        env.update(POD_NAMESPACE=ops, POLL_INTERVAL="0.2s", HEALTH_ADDRESS="", METRICS_ADDRESS="", LOG_LEVEL="debug")
        proc = controller_process(args=("--kubeconfig", config), env_extra=env)

        sc.annotate(cluster, "1")
        two.kube.create(k.PVC_RESTORES, model.manifest("r2", second, model.Spec(pvc=sc.PVC)), second)
        done = sc.wait_finished(cluster)
        assert done["status"].get("error") is None, done["status"]
        assert done["status"]["restoredSnapshot"] == "bbbb2222"
        owners = {(o["kind"], o["name"]): o["replicas"] for o in done["status"]["pvcOwners"]}
        assert owners == {("Deployment", "web"): 3, ("StatefulSet", "db"): 2}
        assert cluster.simulator_record(done["status"]["replicationDestination"])["podsMountingPVC"] == []
        sc.assert_cleaned_up(cluster)
        done_two = sc.wait_finished(two, "r2")
        assert done_two["status"].get("error") is None, done_two["status"]
        sc.assert_cleaned_up(two, deployment=1, statefulset=0)

        lease = kube.get(k.LEASES, "pvc-restore-controller", ops)
        assert lease["spec"]["holderIdentity"]
        assert proc.poll() is None, proc.log_path.read_text()
        text = proc.log_path.read_text()
        assert f"namespaces {cluster.ns}, {second}" in text, text
        # Not one request was refused: the Roles are enough, and nothing cluster-wide was asked for.
        assert "permission denied" not in text and "forbidden" not in text.lower(), text
    finally:
        for ns in (ops, second, gitops, outside):
            kube.delete(k.NAMESPACES, ns)
        for pv in kube.list(k.PVS, label_selector=f"test-namespace={second}"):
            kube.delete(k.PVS, pv["metadata"]["name"])
