"""Shipping, exercised for real: the Helm chart (lint, template, schema, install under the restricted Pod Security
Standard, its RBAC running a restore), the Dockerfile's install steps, and the krew archive and manifest."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import yaml

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import model
from tests import scenario as sc
from tests.helpers import wait_for, wait_for_rbac

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "pvc-restore"


def run(cmd, **kwargs):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_chart_lints_renders_and_validates_values(control_plane):
    helm = control_plane.bin / "helm"
    run([helm, "lint", CHART, "--strict"])
    docs = list(yaml.safe_load_all(run([helm, "template", "pr", CHART, "-n", "ops"])))
    kinds = sorted(d["kind"] for d in docs if d)
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "Deployment", "Role", "RoleBinding", "Service",
                     "ServiceAccount", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicy",
                     "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
                     "ValidatingAdmissionPolicyBinding", "ValidatingAdmissionPolicyBinding"]
    # The MutatingAdmissionPolicy that records who asked comes with API servers that serve it (1.36+).
    served = list(yaml.safe_load_all(run([helm, "template", "pr", CHART, "-n", "ops", "--api-versions",
                                          "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy"])))
    assert {"MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"} <= {d["kind"] for d in served if d}
    off = list(yaml.safe_load_all(run([helm, "template", "pr", CHART, "--set", "admissionPolicies.enabled=false"])))
    assert not any("AdmissionPolicy" in d["kind"] for d in off if d)
    role = next(d for d in docs if d and d["kind"] == "ClusterRole")
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
    deployment = next(d for d in docs if d and d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/benfiola/pvc-restore:0.1.0"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["RESTORE_TIMEOUT"] == "24h" and env["MOVER_START_TIMEOUT"] == "10m" and "EXTRA_SCALE_KINDS" not in env
    rollouts = list(yaml.safe_load_all(run([helm, "template", "pr", CHART, "--set-json", 'rbac.extraScaleTargets=[{'
                                            '"apiGroup": "argoproj.io", "version": "v1alpha1", "resource": "rollouts", '
                                            '"kind": "Rollout"}]'])))
    assert {"name": "EXTRA_SCALE_KINDS", "value": "argoproj.io/v1alpha1/Rollout"} in next(
        d for d in rollouts if d and d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env["LOCK_TTL"] == "5m"
    # Never two controllers acting at once: leader election is on by default, on the Lease in the release namespace
    # (POD_NAMESPACE), which a Role there lets the ServiceAccount take; one replica also recreates rather than rolls.
    assert env["LEADER_ELECTION"] == "true" and "LEADER_ELECTION_NAMESPACE" not in env
    assert next(e for e in container["env"] if e["name"] == "POD_NAMESPACE")["valueFrom"]["fieldRef"] == {
        "fieldPath": "metadata.namespace"}
    assert deployment["metadata"]["namespace"] == "ops" and deployment["spec"]["strategy"] == {"type": "Recreate"}
    [lease_role] = [d for d in docs if d and d["kind"] == "Role"]
    [lease_binding] = [d for d in docs if d and d["kind"] == "RoleBinding"]
    assert lease_role["metadata"]["namespace"] == "ops" and lease_role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}]
    assert lease_binding["metadata"]["namespace"] == "ops" and lease_binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "pr-pvc-restore", "namespace": "ops"}]
    ha = list(yaml.safe_load_all(run([helm, "template", "pr", CHART, "--set", "deployment.replicas=3",
                                      "--set", "config.cacheStorageClass=fast"])))
    assert "Role" in {d["kind"] for d in ha if d}
    [ha_deployment] = [d for d in ha if d and d["kind"] == "Deployment"]
    env = {e["name"]: e.get("value") for e in ha_deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["LEADER_ELECTION"] == "true" and env["CACHE_STORAGE_CLASS"] == "fast"
    assert "strategy" not in ha_deployment["spec"]  # several replicas roll; only the Lease holder acts
    # Leader election off: only with one replica (then Recreate); with more the render fails and says why.
    off = list(yaml.safe_load_all(run([helm, "template", "pr", CHART, "--set", "config.leaderElection=false"])))
    [off_deployment] = [d for d in off if d and d["kind"] == "Deployment"]
    env = {e["name"]: e.get("value") for e in off_deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["LEADER_ELECTION"] == "false" and off_deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert "Role" not in {d["kind"] for d in off if d}
    for replicas in ("2", "3"):
        proc = subprocess.run([helm, "template", "pr", CHART, "--set", "config.leaderElection=false", "--set",
                               f"deployment.replicas={replicas}"], capture_output=True, text=True)
        assert proc.returncode != 0, proc.stdout
        assert (f"config.leaderElection: false with deployment.replicas: {replicas} would let {replicas} controllers "
                "act on the same restores at once") in proc.stderr, proc.stderr
    for bad in ("deployment.replicas=two", "config.pollInterval=soon", "config.logFormat=xml"):
        proc = subprocess.run([helm, "template", "pr", CHART, "--set", bad], capture_output=True, text=True)
        assert proc.returncode != 0 and "values don't meet the specifications of the schema" in proc.stderr, bad


WORKFLOW = REPO / ".github" / "workflows" / "release.yaml"


def expand(text: str, context: dict[str, str]) -> str:
    """GitHub Actions' ``${{ name }}`` substitution (a name missing from ``context`` fails the test)."""
    return re.sub(r"\$\{\{\s*([^}]+?)\s*\}\}", lambda m: context[m[1]], text)


def run_job(job: dict, context: dict[str, str], env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The job's ``run`` steps as the runner runs them (bash -e -o pipefail, in the checkout, with GITHUB_OUTPUT);
    returns the job's outputs. Action steps are skipped: the only ones such a job may use is the checkout."""
    steps: dict[str, str] = {}
    for i, step in enumerate(job["steps"]):
        if "uses" in step:
            assert step["uses"].startswith("actions/checkout@"), step
            continue
        output = tmp_path / f"output-{i}"
        output.write_text("")
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", expand(step["run"], context)],
                              cwd=REPO, env={**os.environ, **env, "GITHUB_OUTPUT": str(output)}, capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, step.get("name"), proc.stdout, proc.stderr)
        for line in output.read_text().splitlines():
            key, _, value = line.partition("=")
            steps[f"steps.{step.get('id')}.outputs.{key}"] = value
    return {name: expand(value, steps) for name, value in (job.get("outputs") or {}).items()}


def test_default_image_is_the_one_the_release_workflow_pushes(tmp_path):
    """A default install pulls exactly the image the release of the chart's appVersion pushes (the workflow once
    pushed :v0.1.0 while the chart pulled :0.1.0), and the image installs the package of that version."""
    from devtools.controlplane import build

    helm = build() / "bin" / "helm"
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    workflow = yaml.safe_load(WORKFLOW.read_text())
    trigger = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as true
    assert trigger["push"]["tags"] == ["v*"]
    tag = f"v{chart['appVersion']}"  # the release of this chart's appVersion
    owner = chart["home"].removeprefix("https://github.com/").split("/")[0]
    context = {"github.ref_name": tag, "github.repository_owner": owner}
    env = {"GITHUB_REF_NAME": tag, "GITHUB_REPOSITORY_OWNER": owner}
    jobs = workflow["jobs"]
    [(name, job)] = [(n, j) for n, j in jobs.items()
                     if any(s.get("uses", "").startswith("docker/build-push-action@") for s in j["steps"])]
    needs = job.get("needs") or []
    for need in [needs] if isinstance(needs, str) else needs:
        for output, value in run_job(jobs[need], context, env, tmp_path).items():
            context[f"needs.{need}.outputs.{output}"] = value
    step = next(s for s in job["steps"] if s.get("uses", "").startswith("docker/build-push-action@"))
    assert step["with"]["push"] is True
    pushed = [expand(t.strip(), context) for t in re.split(r"[,\n]", step["with"]["tags"]) if t.strip()]
    build_args = dict(line.strip().split("=", 1) for line in expand(step["with"]["build-args"], context).splitlines()
                      if line.strip())

    def image(*args: str) -> str:
        docs = yaml.safe_load_all(run([helm, "template", "pr", CHART, *args]))
        [deployment] = [d for d in docs if d and d["kind"] == "Deployment"]
        return deployment["spec"]["template"]["spec"]["containers"][0]["image"]

    assert image() in pushed, f"the chart pulls {image()}; the release of {tag} pushes {pushed}"
    # The image's VERSION build argument is the package version the Dockerfile installs (pvc-restore==VERSION).
    from kubectl_pvc_restore import __version__
    assert build_args["VERSION"] == __version__ == chart["appVersion"]
    # deployment.image.tag still overrides the default.
    assert image("--set", "deployment.image.tag=v9-custom").endswith(":v9-custom")
    # A tag that is not v + the chart's appVersion publishes nothing: the jobs that publish need the version check.
    for publisher in (name, "chart", "pypi"):
        publisher_needs = jobs[publisher].get("needs") or []
        assert set(needs) <= set([publisher_needs] if isinstance(publisher_needs, str) else publisher_needs)
    for bad in ("v9.9.9", chart["appVersion"]):
        try:
            run_job(jobs[needs[0]], {**context, "github.ref_name": bad}, {**env, "GITHUB_REF_NAME": bad}, tmp_path)
        except subprocess.CalledProcessError as exc:
            assert "appVersion" in exc.stdout, exc.stdout
        else:
            raise AssertionError(f"the release of tag {bad} would publish")


def sa_kubeconfig(cluster, admin_kubeconfig: str, namespace: str, sa: str, path: Path) -> Path:
    token = cluster.kube.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{sa}/token",
                                 what="token", body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                                     "spec": {"expirationSeconds": 3600}})["status"]["token"]
    admin = yaml.safe_load(open(admin_kubeconfig))
    cluster_entry = admin["clusters"][0]["cluster"]
    config = {"apiVersion": "v1", "kind": "Config", "clusters": [{"name": "c", "cluster": cluster_entry}],
              "users": [{"name": sa, "user": {"token": token}}],
              "contexts": [{"name": "sa", "context": {"cluster": "c", "user": sa}}], "current-context": "sa"}
    path.write_text(yaml.safe_dump(config))
    return path


def test_chart_installs_under_restricted_pss_and_its_rbac_is_enough(cluster, control_plane, kubeconfig,
                                                                     controller_process, tmp_path):
    helm = control_plane.bin / "helm"
    ops = f"ops-{uuid.uuid4().hex[:6]}"
    release = f"pr-{ops}"
    cluster.kube.create(k.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": ops, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    env = dict(os.environ, KUBECONFIG=kubeconfig)
    try:
        # The admission policies only for this test's namespace: the rest of the suite writes status as the admin.
        run([helm, "install", release, CHART, "-n", ops, "--wait=false", "--set-json",
             'admissionPolicies.namespaceSelector={"matchLabels":{"kubernetes.io/metadata.name":"%s"}}' % cluster.ns],
            env=env)
        pods = wait_for(lambda: cluster.kube.list(k.PODS, ops), timeout=60,
                        message="the restricted namespace to admit the controller pod")
        assert pods[0]["spec"]["serviceAccountName"] == f"{release}-pvc-restore"
        sc.setup(cluster, statefulset=0, deployment=2)
        sa = pods[0]["spec"]["serviceAccountName"]
        sa_config = sa_kubeconfig(cluster, kubeconfig, ops, sa, tmp_path / "sa.kubeconfig")
        proc = controller_process(args=("--kubeconfig", str(sa_config), "--namespace", cluster.ns,
                                        "--poll-interval", "0.2", "--health-address", "", "--metrics-address", "",
                                        "--forbidden-grace", "2s"))
        cluster.kube.create(k.PVC_RESTORES, model.manifest("r1", cluster.ns, model.Spec(pvc="data", previous=1)),
                            cluster.ns)
        done = sc.wait_finished(cluster, "r1")
        assert done["status"].get("error") is None, done["status"]
        sc.assert_cleaned_up(cluster, statefulset=0, deployment=2)

        # Take one needed verb away: the restore fails with a message naming it, and nothing is left scaled down.
        role_name = sa  # the ClusterRole shares the fullname
        role = cluster.kube.get(k.Resource("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles",
                                           namespaced=False), role_name)
        for rule in role["rules"]:
            if rule["resources"] == ["replicationsources"]:
                rule["verbs"] = [v for v in rule["verbs"] if v != "patch"]
        cluster.kube.replace(k.Resource("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles",
                                        namespaced=False), role)
        patch_sources = {"apiGroups": ["volsync.backube"], "resources": ["replicationsources"], "verbs": ["patch"]}
        wait_for_rbac(cluster.kube, cluster.ns, ops, sa, patch_sources, allowed=False,
                      message="RBAC to apply the narrowed ClusterRole")
        cluster.kube.create(k.PVC_RESTORES, model.manifest("r2", cluster.ns, model.Spec(pvc="data")), cluster.ns)
        failed = sc.wait_finished(cluster, "r2")
        error = failed["status"]["error"]
        assert "permission denied" in error and 'cannot patch resource "replicationsources"' in error, error
        sc.assert_cleaned_up(cluster, statefulset=0, deployment=2)
        proc.terminate()
    finally:
        subprocess.run([helm, "uninstall", release, "-n", ops], env=env, capture_output=True)
        cluster.kube.delete(k.NAMESPACES, ops)


def test_dockerfile_lints_and_its_install_steps_work(tmp_path):
    lint = subprocess.run([Path(sys.executable).parent / "hadolint", REPO / "Dockerfile"], capture_output=True,
                          text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^USER 65532", text, re.M) and 'ENTRYPOINT ["pvc-restore-controller"]' in text
    version = re.search(r"ARG VERSION=(\S+)", text)[1]
    from kubectl_pvc_restore import __version__
    assert version == __version__
    # The build stage: copy what the Dockerfile copies, then `pip wheel`.
    src = tmp_path / "src"
    for line in re.findall(r"^COPY (?!--)(.+) \S+$", text, re.M):
        for item in line.split():
            target = src / item
            target.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["cp", "-r", REPO / item, target], check=True)
    wheels = tmp_path / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-cache-dir", "--wheel-dir", wheels, src])
    # The runtime stage: a clean environment, offline install from those wheels only.
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv])
    run([venv / "bin" / "pip", "install", "--quiet", "--no-cache-dir", "--no-index", "--find-links", wheels,
         f"pvc-restore=={version}"])
    help_text = run([venv / "bin" / "pvc-restore-controller", "--help"])
    assert "--poll-interval" in help_text
    installed = run([venv / "bin" / "pip", "list", "--format", "json"])
    assert not {"pytest", "hypothesis", "pyinstaller"} & {p["name"] for p in json.loads(installed)}


def test_krew_archive_installs_and_runs(cluster, control_plane, kubeconfig, tmp_path):
    out = run(["bash", REPO / "scripts" / "build-krew-archive.sh", tmp_path / "dist"]).split()
    archive, manifest = out[-2], out[-1]
    run([control_plane.bin / "validate-krew-manifest", "-manifest", manifest, "-skip-install"])
    krew_root = tmp_path / "krew"
    env = dict(os.environ, KREW_ROOT=str(krew_root), KUBECONFIG=kubeconfig,
               PATH=f"{krew_root / 'bin'}{os.pathsep}{control_plane.bin}{os.pathsep}/usr/bin:/bin")
    run(["kubectl", "krew", "install", f"--manifest={manifest}", f"--archive={archive}"], env=env)
    version = run(["kubectl", "pvc-restore", "version"], env=env)
    assert "kubectl-pvc_restore 0.1.0" in version and "Kubernetes v1.36" in version
    sc.setup(cluster, statefulset=0, deployment=0)
    cluster.kube.create(k.PVC_RESTORES, model.manifest("r1", cluster.ns, model.Spec(pvc="data")), cluster.ns)
    listed = run(["kubectl", "pvc-restore", "list", "-n", cluster.ns], env=env)
    assert "r1" in listed and "data" in listed
