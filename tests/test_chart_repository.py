"""The chart as users install it from a chart repository: the release workflow's own step builds the repository
(this release's chart merged into the published index.yaml, Artifact Hub's metadata and the icon beside it), a local
HTTP server serves it, and `helm repo add` + `helm install` install from it on a real control plane. Also the chart's
Artifact Hub metadata: its annotations parse and agree with the CRD and the image, its CRD example passes the real
API server's validation, the icon is an SVG, and artifacthub-repo.yml is one Artifact Hub accepts."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import os
import re
import subprocess
import tarfile
import threading
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterator

import yaml

from tests.helpers import wait_for

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "pvc-restore"
CRD = CHART / "crds" / "pvcrestores.yaml"
ICON = CHART / "icon.svg"
ARTIFACTHUB_REPO = REPO / "charts" / "artifacthub-repo.yml"
WORKFLOW = REPO / ".github" / "workflows" / "release.yaml"
#: The name the install instructions give the chart repository (`helm repo add homelab-helper <url>`).
REPOSITORY_NAME = "homelab-helper"
#: Artifact Hub's categories (artifacthub.io/category must be one of them, or the annotation is rejected).
ARTIFACTHUB_CATEGORIES = {"ai-machine-learning", "database", "integration-delivery", "monitoring-logging",
                          "networking", "security", "storage", "streaming-messaging"}


def run(cmd, **kwargs) -> str:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def chart_metadata() -> dict:
    return yaml.safe_load((CHART / "Chart.yaml").read_text())


def annotation(name: str) -> object:
    """An Artifact Hub annotation of Chart.yaml, parsed as Artifact Hub parses it (YAML in a string)."""
    value = chart_metadata()["annotations"][f"artifacthub.io/{name}"]
    assert isinstance(value, str), (name, value)
    return yaml.safe_load(value)


def pages_url() -> str:
    """The GitHub Pages URL of the repository Chart.yaml's home names (https://<owner>.github.io/<repository>)."""
    owner, repository = chart_metadata()["home"].removeprefix("https://github.com/").split("/")
    return f"https://{owner.lower()}.github.io/{repository}"


def expand(text: str, context: dict[str, str]) -> str:
    """GitHub Actions' ``${{ name }}`` substitution (a name missing from ``context`` fails the test)."""
    return re.sub(r"\$\{\{\s*([^}]+?)\s*\}\}", lambda m: context[m[1]], text)


def default_image(helm: Path) -> str:
    docs = yaml.safe_load_all(run([helm, "template", "pr", CHART]))
    [deployment] = [d for d in docs if d and d["kind"] == "Deployment"]
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1 (a free port) from a thread; yields the base URL."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Handler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def helm_env(tmp_path: Path, kubeconfig: Path) -> dict[str, str]:
    """helm's environment with its configuration, cache and data in ``tmp_path`` (nothing read from or left in the
    user's), the test cluster's kubeconfig, and no proxy for the local server."""
    home = tmp_path / "helm"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELM_")}
    env.update(HELM_CONFIG_HOME=str(home / "config"), HELM_CACHE_HOME=str(home / "cache"),
               HELM_DATA_HOME=str(home / "data"), KUBECONFIG=str(kubeconfig))
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ",".join(filter(None, [env.get(name), "127.0.0.1"]))
    return env


def test_release_workflow_publishes_a_chart_repository_that_installs(control_plane, namespace, tmp_path):
    helm = control_plane.bin / "helm"
    kubectl = [control_plane.bin / "kubectl", "--kubeconfig", control_plane.kubeconfig]
    chart = chart_metadata()
    version = chart["version"]
    workflow = yaml.safe_load(WORKFLOW.read_text())
    [(job_name, job)] = [(name, job) for name, job in workflow["jobs"].items()
                         if any("helm repo index" in step.get("run", "") for step in job["steps"])]
    [build] = [step for step in job["steps"] if "helm repo index" in step.get("run", "")]
    # It publishes to the repository's GitHub Pages, the URL Chart.yaml's icon points into, once the chart (the archive
    # the OCI registry gets) and the image its default install pulls are pushed.
    owner, repository = chart["home"].removeprefix("https://github.com/").split("/")
    published_url = expand(job["env"]["CHART_REPOSITORY_URL"], {
        "github.repository_owner": owner, "github.event.repository.name": repository})
    assert published_url.lower() == pages_url().lower()
    assert chart["icon"] == f"{pages_url()}/{ICON.name}"
    assert {"version", "chart", "image"} <= set(job["needs"]), job["needs"]
    assert any(step.get("uses", "").startswith("actions/download-artifact@") and step["with"]["name"] == "chart"
               for step in job["steps"])

    # The workspace as the job has it: the checkout's charts/, the chart job's archive in dist/, and site/, the
    # published repository (gh-pages), here with an earlier release in its index.
    work = tmp_path / "work"
    (work / "site").mkdir(parents=True)
    (work / "charts").symlink_to(REPO / "charts")
    run([helm, "package", CHART, "-d", work / "dist"])
    archive = work / "dist" / f"pvc-restore-{version}.tgz"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert f"pvc-restore/crds/{CRD.name}" in names and f"pvc-restore/{ICON.name}" not in names, names  # .helmignore
    with serve(work / "site") as url:
        earlier = {"apiVersion": "v2", "name": "pvc-restore", "version": "0.0.1", "appVersion": "0.0.1",
                   "created": "2020-01-01T00:00:00Z", "digest": "0" * 64, "urls": [f"{url}/pvc-restore-0.0.1.tgz"]}
        (work / "site" / "index.yaml").write_text(yaml.safe_dump({
            "apiVersion": "v1", "entries": {"pvc-restore": [earlier]}, "generated": "2020-01-01T00:00:00Z"}))
        script = expand(build["run"], {"needs.version.outputs.version": version})
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=work,
                              capture_output=True, text=True, env={
                                  **os.environ, "CHART_REPOSITORY_URL": url,
                                  "PATH": f"{control_plane.bin}{os.pathsep}{os.environ['PATH']}"})
        assert proc.returncode == 0, f"{job_name}: {build['name']} failed:\n{proc.stdout}\n{proc.stderr}"

        site = work / "site"
        assert {p.name for p in site.iterdir()} == {"index.yaml", archive.name, "artifacthub-repo.yml", ICON.name,
                                                    ".nojekyll"}
        assert (site / ICON.name).read_bytes() == ICON.read_bytes()
        assert (site / "artifacthub-repo.yml").read_bytes() == ARTIFACTHUB_REPO.read_bytes()
        index = yaml.safe_load((site / "index.yaml").read_text())
        entries = {e["version"]: e for e in index["entries"]["pvc-restore"]}
        assert set(entries) == {version, "0.0.1"}
        # The earlier release stays as published; this one points at its archive beside the index.
        assert {k: entries["0.0.1"][k] for k in earlier} == earlier
        entry = entries[version]
        assert entry["urls"] == [f"{url}/{archive.name}"]
        assert entry["appVersion"] == chart["appVersion"]
        assert entry["digest"] == hashlib.sha256(archive.read_bytes()).hexdigest()
        assert entry["annotations"] == chart["annotations"] and entry["icon"] == chart["icon"]

        env = helm_env(tmp_path, control_plane.kubeconfig)
        run([helm, "repo", "add", REPOSITORY_NAME, url], env=env)
        found = json.loads(run([helm, "search", "repo", f"{REPOSITORY_NAME}/pvc-restore", "-o", "json"], env=env))
        assert [(c["name"], c["version"], c["app_version"]) for c in found] == [
            (f"{REPOSITORY_NAME}/pvc-restore", version, chart["appVersion"])]

        release = f"repo-{uuid.uuid4().hex[:6]}"
        try:
            # As the install instructions say, from the repository; the admission policies only for this namespace
            # (the rest of the suite writes restore status as the admin). The CRD is already installed: helm skips it.
            only_here = '{"matchLabels":{"kubernetes.io/metadata.name":"%s"}}' % namespace
            run([helm, "install", release, f"{REPOSITORY_NAME}/pvc-restore", "-n", namespace, "--wait=false",
                 "--set-json", f"admissionPolicies.namespaceSelector={only_here}"], env=env)
            [installed] = json.loads(run([helm, "list", "-n", namespace, "-o", "json"], env=env))
            assert installed["chart"] == f"pvc-restore-{version}" and installed["status"] == "deployed", installed
            [deployment] = json.loads(run([*kubectl, "get", "deployments", "-n", namespace, "-o", "json"]))["items"]
            assert deployment["metadata"]["labels"]["app.kubernetes.io/instance"] == release
            [container] = deployment["spec"]["template"]["spec"]["containers"]
            assert container["image"] == default_image(helm) == f"ghcr.io/{owner}/pvc-restore:{chart['appVersion']}"
        finally:
            subprocess.run([helm, "uninstall", release, "-n", namespace], env=env, capture_output=True)
        wait_for(lambda: not json.loads(run([*kubectl, "get", "deployments", "-n", namespace, "-o", "json"]))["items"],
                 timeout=30, message="helm uninstall to remove the Deployment")


def test_artifact_hub_metadata_agrees_with_the_chart_and_the_api_server(control_plane, namespace):
    helm = control_plane.bin / "helm"
    kubectl = [control_plane.bin / "kubectl", "--kubeconfig", control_plane.kubeconfig]
    chart = chart_metadata()
    assert chart["annotations"]["artifacthub.io/license"] == "MIT"
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    assert chart["annotations"]["artifacthub.io/category"] in ARTIFACTHUB_CATEGORIES

    links = annotation("links")
    assert links and all(set(link) == {"name", "url"} and link["url"].startswith("https://") for link in links)
    assert chart["home"] in {link["url"] for link in links}

    # The image Artifact Hub scans is the one a default install pulls.
    assert annotation("images") == [{"name": "pvc-restore", "image": default_image(helm)}]

    # The CRD card: the chart's CRD, one entry per served version.
    crd = yaml.safe_load(CRD.read_text())
    crds = annotation("crds")
    served = [v["name"] for v in crd["spec"]["versions"] if v["served"]]
    assert [(c["kind"], c["version"], c["name"]) for c in crds] == [
        (crd["spec"]["names"]["kind"], v, crd["metadata"]["name"]) for v in served]
    assert all(c["displayName"].strip() and c["description"].strip() for c in crds)

    # The example: a PVCRestore of a CRD listed above, which the real API server accepts (schema and CEL rules).
    examples = annotation("crdsExamples")
    assert examples
    for example in examples:
        group, _, version = example["apiVersion"].partition("/")
        assert (group, example["kind"]) == (crd["spec"]["group"], crd["spec"]["names"]["kind"]) and version in served
        manifest = {**example, "metadata": {**example["metadata"], "namespace": namespace}}
        out = run([*kubectl, "apply", "--dry-run=server", "-n", namespace, "-f", "-"], input=yaml.safe_dump(manifest))
        assert "created (server dry run)" in out, out
    # The dry run does validate: an example with both previous and restoreAsOf is refused by the CRD's rule.
    bad = {**manifest, "spec": {**manifest["spec"], "previous": 1, "restoreAsOf": "2024-05-01T10:00:00Z"}}
    proc = subprocess.run([str(c) for c in [*kubectl, "apply", "--dry-run=server", "-n", namespace, "-f", "-"]],
                          input=yaml.safe_dump(bad), capture_output=True, text=True)
    assert proc.returncode != 0 and "previous and restoreAsOf are mutually exclusive" in proc.stderr, proc.stderr

    # The icon: an SVG document, square.
    root = ET.parse(ICON).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    _, _, width, height = (float(n) for n in root.attrib["viewBox"].split())
    assert width == height > 0

    # artifacthub-repo.yml: a mapping (Artifact Hub rejects an empty file), with only fields Artifact Hub knows, no
    # made-up repositoryID (it must be the UUID Artifact Hub gives), and the chart's releases not ignored.
    metadata = yaml.safe_load(ARTIFACTHUB_REPO.read_text())
    assert isinstance(metadata, dict) and metadata and set(metadata) <= {"repositoryID", "owners", "ignore"}
    if "repositoryID" in metadata:
        uuid.UUID(metadata["repositoryID"])
    assert all(owner.get("name") and owner.get("email") for owner in metadata.get("owners") or [])
    for entry in metadata.get("ignore") or []:
        if entry["name"] == chart["name"]:
            assert entry.get("version") and not re.search(entry["version"], chart["version"]), entry
