"""Read-only users, as real ServiceAccount identities (bound tokens from the TokenRequest API, RBAC Roles) on the real
control plane: `describe` shows what they may read and marks the rest, `doctor` runs every check and says which ones
it could not do and what permission they need."""

from __future__ import annotations

import json

import pytest

from kubectl_pvc_restore import kube as k
from tests import scenario as sc
from tests.helpers import bind_role, cli, identity_kubeconfig

GROUP = k.PVC_RESTORES.group
#: get/list on PVCRestores only: what `describe` strictly needs.
RESTORES_ONLY = [{"apiGroups": [GROUP], "resources": ["pvcrestores"], "verbs": ["get", "list"]}]
#: ... plus events and pods, and PVCs: still no deployments/scale, statefulsets/scale, ReplicationDestinations.
READER = RESTORES_ONLY + [{"apiGroups": [""], "resources": ["events", "pods", "persistentvolumeclaims"],
                           "verbs": ["get", "list"]}]

SELF_SUBJECT_REVIEWS = k.Resource("authentication.k8s.io/v1", "SelfSubjectReview", "selfsubjectreviews",
                                  namespaced=False)
SELF_SUBJECT_ACCESS_REVIEWS = k.Resource("authorization.k8s.io/v1", "SelfSubjectAccessReview",
                                         "selfsubjectaccessreviews", namespaced=False)


def cli_as(config: str, namespace: str, *args: str):
    return cli(*args, kubeconfig=config, namespace=namespace)


def user(cluster, kubeconfig, tmp_path, account: str, rules: list | None) -> str:
    """A kubeconfig for ServiceAccount ``account`` with ``rules`` (None: no Role at all), once RBAC applies them."""
    config = identity_kubeconfig(cluster.kube, kubeconfig, cluster.ns, account, tmp_path / f"{account}.kubeconfig")
    if rules:
        bind_role(cluster.kube, cluster.ns, account, rules)  # (returns once RBAC applies them)
    return config


def finished_restore(cluster, controller, kubeconfig) -> str:
    sc.setup(cluster)
    controller()
    result = cli_as(kubeconfig, cluster.ns, "start", "data", "--previous", "1", "--wait", "--timeout", "120")
    assert result.exit_code == 0, result.output
    name = result.output.splitlines()[0]
    restore = sc.wait_finished(cluster, name)
    assert restore["status"].get("error") is None and restore["status"]["replicationDestination"]
    return name


def test_identity_helpers_authenticate_as_the_service_account_with_only_its_role(cluster, portal, kubeconfig,
                                                                                  tmp_path):
    config = user(cluster, kubeconfig, tmp_path, "helper-check", RESTORES_ONLY)
    me = portal.call(lambda: k.Kube.connect(kubeconfig=config))

    async def review(res, spec=None):
        body = {"apiVersion": res.api_version, "kind": res.kind}
        if spec:
            body["spec"] = spec
        return await me.create(res, body)

    who = portal.call(lambda: review(SELF_SUBJECT_REVIEWS))["status"]["userInfo"]
    assert who["username"] == f"system:serviceaccount:{cluster.ns}:helper-check"
    assert me.namespace == cluster.ns  # the kubeconfig's context carries the namespace

    def allowed(verb, group, resource, subresource=""):
        attrs = {"namespace": cluster.ns, "verb": verb, "group": group, "resource": resource}
        if subresource:
            attrs["subresource"] = subresource
        return portal.call(lambda: review(SELF_SUBJECT_ACCESS_REVIEWS, {"resourceAttributes": attrs}))[
            "status"]["allowed"]

    assert allowed("get", GROUP, "pvcrestores") and allowed("list", GROUP, "pvcrestores")
    assert not allowed("delete", GROUP, "pvcrestores")
    assert not allowed("get", "apps", "deployments", "scale")
    with pytest.raises(k.Forbidden):
        portal.call(lambda: me.list(k.DEPLOYMENTS, cluster.ns))


def test_describe_shows_a_read_only_user_what_they_may_read(cluster, controller, kubeconfig, tmp_path):
    name = finished_restore(cluster, controller, kubeconfig)
    ns = cluster.ns

    admin = cli_as(kubeconfig, ns, "describe", name)
    assert admin.exit_code == 0, admin.output
    assert "forbidden" not in admin.output.lower(), admin.output
    assert "Deployment web: 3 replica(s) before the restore, now 3" in admin.output
    assert "StatefulSet db: 2 replica(s) before the restore, now 2" in admin.output
    assert "  Finished    20" in admin.output and "(deleted when the restore finished)" in admin.output

    # Only PVCRestores: every secondary part is marked, the restore itself is shown in full.
    config = user(cluster, kubeconfig, tmp_path, "restores-only", RESTORES_ONLY)
    result = cli_as(config, ns, "describe", name)
    out = result.output
    assert result.exit_code == 0, out
    for text in (f"Name:          {name}", "Phase:         Finished", "PVC:           data",
                 "ReplicationSource:       data-backup", "Restored snapshot:       bbbb2222",
                 "Deployment web: 3 replica(s) before the restore, now (forbidden: you may not get "
                 f"deployments/scale in namespace {ns})",
                 "StatefulSet db: 2 replica(s) before the restore, now (forbidden: you may not get "
                 f"statefulsets/scale in namespace {ns})",
                 f"  (forbidden: you may not get replicationdestinations.volsync.backube in namespace {ns})",
                 "Timeline:\n  Initialize  20",  # from status.timeline: readable with the restore itself
                 f"Events:\n  (forbidden: you may not list events in namespace {ns})"):
        assert text in out, out
    assert "(deleted)" not in out  # not known to this user

    # With events (and pods): the timeline and events are back, the workloads' current replicas still are not.
    config = user(cluster, kubeconfig, tmp_path, "reader", READER)
    result = cli_as(config, ns, "describe", name)
    out = result.output
    assert result.exit_code == 0, out
    assert "  Finished    20" in out and "Events:\n  <none>" not in out
    assert "list events" not in out
    assert f"now (forbidden: you may not get deployments/scale in namespace {ns})" in out
    assert f"(forbidden: you may not get replicationdestinations.volsync.backube in namespace {ns})" in out

    # -o json|yaml: the object as before, nothing else read.
    as_json = cli_as(config, ns, "describe", name, "-o", "json")
    assert as_json.exit_code == 0 and json.loads(as_json.output)["metadata"]["name"] == name
    as_yaml = cli_as(config, ns, "describe", name, "-o", "yaml")
    assert as_yaml.exit_code == 0 and f"name: {name}" in as_yaml.output and "forbidden" not in as_yaml.output

    # Not even the restore: one clear message, exit 1.
    config = user(cluster, kubeconfig, tmp_path, "nobody", None)
    result = cli_as(config, ns, "describe", name)
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [
        f"Error: cannot show PVCRestore {name}: you may not get pvcrestores.{GROUP} in namespace {ns}",
        f"(check with: kubectl auth can-i get pvcrestores.{GROUP} -n {ns})"]


def test_doctor_runs_every_check_and_names_what_it_could_not_check(cluster, controller, kubeconfig, tmp_path):
    finished_restore(cluster, controller, kubeconfig)
    ns = cluster.ns

    admin = cli_as(kubeconfig, ns, "doctor", "data")
    assert "[????]" not in admin.output and "could not check" not in admin.output, admin.output
    assert "[ok  ] no restore is running for it" in admin.output
    # No controller pod runs in the test cluster, but the in-process controller just reconciled a restore here.
    assert admin.exit_code == 0 and "[ok  ] a controller is at work" in admin.output, admin.output

    # Allowed nothing at all: every check is reported as not done, with the permission it needs; none failed.
    config = user(cluster, kubeconfig, tmp_path, "nobody", None)
    result = cli_as(config, ns, "doctor", "data")
    out = result.output
    assert result.exit_code == 3, out
    # Only the server's version is readable by anyone (GET /version): everything else is not checked.
    assert "[FAIL]" not in out, out
    assert [line for line in out.splitlines() if line.startswith("[ok  ]")] == [
        line for line in out.splitlines() if line.startswith("[ok  ] Kubernetes v")], out
    expected = [
        "could not check whether the PVCRestore and volsync CRDs are installed: you may not get "
        "customresourcedefinitions.apiextensions.k8s.io cluster-wide",
        "could not check whether the pvc-restore controller runs (its pods, label app.kubernetes.io/name=pvc-restore)"
        ": you may not list pods cluster-wide",
        "could not check which StorageClass serves the restic cache volume: you may not list "
        "storageclasses.storage.k8s.io cluster-wide",
        f"could not check which restores hold workloads, sources or locks in namespace {ns}: you may not list "
        f"pvcrestores.{GROUP} in namespace {ns}",
        f"could not check whether PVCs in namespace {ns} carry an annotation this controller does not read (the "
        f"seed's Go controller's): you may not list persistentvolumeclaims in namespace {ns}",
        f"could not check PVC {ns}/data: you may not get persistentvolumeclaims in namespace {ns}",
        "could not check PVC data's ReplicationSource, its mover and its last backup: you may not list "
        f"replicationsources.volsync.backube in namespace {ns}",
        "could not check which workloads mount the PVC and can be scaled down: you may not list pods in "
        f"namespace {ns}",
        "could not check PVC data's restore lock (ConfigMap pvc-restore-lock-data): you may not get configmaps in "
        f"namespace {ns}",
        f"could not check whether a restore of data is running or stuck: you may not list pvcrestores.{GROUP} in "
        f"namespace {ns}",
    ]
    unknown = [line[len("[????] "):] for line in out.splitlines() if line.startswith("[????] ")]
    assert unknown == expected, out
    assert "       check: kubectl auth can-i list pods --all-namespaces" in out
    assert f"       check: kubectl auth can-i get configmaps -n {ns}" in out
    assert "10 check(s) could not be done for lack of permission" in out

    # A reader: what it may read is checked, the rest reported as not done (exit 3); a real problem still wins
    # over "could not check" (exit 1).
    config = user(cluster, kubeconfig, tmp_path, "reader", READER)
    result = cli_as(config, ns, "doctor", "data")
    out = result.output
    assert result.exit_code == 3, out
    assert f"[ok  ] PVC {ns}/data is Bound" in out
    # pods may be listed; the walk up from them stops at the first owner it may not read
    assert "[????] could not check which workloads mount the PVC and can be scaled down: you may not get " \
           f"replicasets in namespace {ns}" in out, out
    assert "no restore is running for it" not in out  # the lock could not be read
    assert f"[????] could not check which ReplicationSources are paused in namespace {ns}: you may not list " \
           f"replicationsources.volsync.backube in namespace {ns}" in out, out
    assert f"[????] could not check whether the seed's Go controller left locks in namespace {ns}: you may not list " \
           f"configmaps in namespace {ns}" in out, out  # PVCs it may list: only the locks are not checked
    assert sum(line.startswith("[????]") for line in out.splitlines()) == 8 and "[FAIL]" not in out, out
    missing = cli_as(config, ns, "doctor", "nope")
    assert missing.exit_code == 1, missing.output
    assert f"[FAIL] PVC {ns}/nope does not exist" in missing.output and "[????]" in missing.output


def test_the_permission_named_is_the_one_the_api_server_refused():
    from kubectl_pvc_restore.cli.describe import forbidden, permission

    def denied(message, code=403):
        return k.Forbidden(f"scale of Deployment web: permission denied: {message}", code=code)

    scale = denied('deployments.apps "web" is forbidden: User "system:serviceaccount:a:b" cannot get resource '
                   '"deployments/scale" in API group "apps" in the namespace "apps"')
    assert str(permission(scale, "list", "pods", "other")) == "get deployments/scale in namespace apps"
    assert permission(scale, "list", "pods", None).can_i() == \
        "kubectl auth can-i get deployments --subresource=scale -n apps"
    everywhere = denied('pods is forbidden: User "u" cannot list resource "pods" in API group "" at the cluster scope')
    assert str(permission(everywhere, "list", "pods", "apps")) == "list pods cluster-wide"
    assert permission(everywhere, "list", "pods", "apps").can_i() == "kubectl auth can-i list pods --all-namespaces"
    crd = denied('cannot get resource "replicationdestinations" in API group "volsync.backube" in the namespace "x"')
    assert str(permission(crd, "list", "pods", None)) == "get replicationdestinations.volsync.backube in namespace x"
    discovery = denied('forbidden: User "u" cannot get path "/apis/apps/v1"')
    assert str(permission(discovery, "get", "deployments/scale", "x")) == "get /apis/apps/v1"
    # A message that names no permission: the one the caller needed.
    assert forbidden(denied("no reason given"), "list", "events", "x") == \
        "(forbidden: you may not list events in namespace x)"
    assert forbidden(denied("Unauthorized", code=401), "list", "events", "x") == \
        "(forbidden: the API server did not accept your credentials)"
