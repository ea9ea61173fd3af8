"""The supported versions (kubectl_pvc_restore/support.py) are stated once and everything agrees with them: the README,
the chart's kubeVersion, pyproject.toml, the pins the tests run on, scripts/compat.sh and the CI matrix. doctor and
the controller's start-up log compare the API server with the range; the chart refuses below it."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from kubectl_pvc_restore import support
from tests.helpers import wait_for

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "pvc-restore"


# -- the decision (no cluster) ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("info,parsed", [
    ({"gitVersion": "v1.34.4", "major": "1", "minor": "34"}, (1, 34)),
    ({"gitVersion": "v1.33.5+k3s1"}, (1, 33)),
    ({"gitVersion": "v1.32.9-eks-113cf36"}, (1, 32)),
    ({"gitVersion": "v1.37.0-alpha.1"}, (1, 37)),
    ({"gitVersion": "", "major": "1", "minor": "35+"}, (1, 35)),
    ({"gitVersion": "v0.0.0-master+$Format:%H$", "major": "", "minor": ""}, (0, 0)),
    ({"gitVersion": "nonsense"}, None),
    ({}, None),
])
def test_server_versions_are_read_as_distributions_report_them(info, parsed):
    assert support.parse_kubernetes_version(info) == parsed


@pytest.mark.parametrize("git_version,status", [
    ("v1.33.9", "too-old"), ("v1.34.0", "supported"), ("v1.34.4+k3s1", "supported"), ("v1.35.4", "supported"),
    ("v1.36.3", "supported"), ("v1.37.2", "too-new"), ("v2.0.0", "too-new"), ("v0.0.0-master", "too-old"),
    ("garbage", "unknown"),
])
def test_a_server_outside_the_range_is_named_with_the_range(git_version, status):
    found = support.kubernetes_support({"gitVersion": git_version})
    assert found.status == status
    assert found.supported == (status == "supported")
    assert "Kubernetes 1.34 to 1.36" in found.message, found.message
    if status != "unknown":
        assert git_version in found.message


class FakeReport:
    def __init__(self) -> None:
        self.findings: list[tuple[str, str, str]] = []

    def ok(self, text: str) -> None:
        self.findings.append(("ok", text, ""))

    def warn(self, text: str, fix: str = "") -> None:
        self.findings.append(("warn", text, fix))

    def fail(self, text: str, fix: str = "", details: tuple[str, ...] = ()) -> None:
        self.findings.append(("fail", text, fix))


class FakeKube:
    def __init__(self, answer) -> None:
        self.answer = answer

    async def version(self):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize("answer,level", [
    ({"gitVersion": "v1.31.2"}, "fail"),
    ({"gitVersion": "v1.36.3"}, "ok"),
    ({"gitVersion": "v1.38.0"}, "warn"),
    (ConnectionError("connection refused"), "warn"),
])
def test_doctor_fails_below_the_range_and_warns_above_it(answer, level):
    report = FakeReport()
    found = asyncio.run(support.doctor_check(FakeKube(answer), report))
    [(got, text, fix)] = report.findings
    assert got == level, report.findings
    assert text == found.message
    if level == "fail":
        assert "older than 1.34" in text and "chart refuses" in text and "1.34 or newer" in fix
    if isinstance(answer, Exception):
        assert "could not be read (connection refused)" in text


# -- one statement, everywhere the same (no cluster) -----------------------------------------------------------------

def pin(path: str, module: str) -> str:
    match = re.search(rf"^(?:require)?\s*{re.escape(module)} (v[0-9.]+)", (REPO / path).read_text(), re.M)
    assert match, (path, module)
    return match[1]


def test_the_range_is_what_was_proven_and_what_runs_by_default():
    lo, hi = support.KUBERNETES_PROVEN
    assert support.parse_kubernetes_version({"gitVersion": lo}) == support.KUBERNETES_MIN
    assert support.parse_kubernetes_version({"gitVersion": hi}) == support.KUBERNETES_MAX
    assert hi == pin("tools/controlplane/kubernetes/go.mod", "k8s.io/kubernetes")  # .ci/run runs the newest
    volsync_lo, volsync_hi = support.VOLSYNC_PROVEN
    assert tuple(int(x) for x in volsync_lo[1:].split(".")[:2]) == support.VOLSYNC_MIN
    assert tuple(int(x) for x in volsync_hi[1:].split(".")[:2]) == support.VOLSYNC_MAX
    # The default volsync (its manager in the tests, its CRDs on every control plane) is a proven one.
    default = pin("tools/volsync/volsync/go.mod", "github.com/backube/volsync")
    assert default in support.VOLSYNC_PROVEN
    assert (REPO / "tools" / "controlplane" / "volsync.version").read_text().strip() == default


def test_the_chart_pyproject_and_readme_state_the_same_range():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == f">={support.minor(support.KUBERNETES_MIN)}.0-0"

    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(r'^requires-python = ">=(\d+\.\d+)"', pyproject, re.M)[1] == support.minor(support.PYTHON_MIN)
    claimed = sorted(tuple(map(int, v.split("."))) for v in
                     re.findall(r'"Programming Language :: Python :: (3\.\d+)"', pyproject))
    assert claimed == [(3, n) for n in range(support.PYTHON_MIN[1], support.PYTHON_MAX[1] + 1)]

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Supported versions"):]
    section = section[:section.index("\n## ", 1)]
    lo, hi = support.KUBERNETES_PROVEN
    assert (f"| Kubernetes | {support.minor(support.KUBERNETES_MIN)} to {support.minor(support.KUBERNETES_MAX)} | "
            f"{lo}, {hi} |") in section, section
    assert (f"| volsync | v{support.minor(support.VOLSYNC_MIN)} to v{support.minor(support.VOLSYNC_MAX)} | "
            f"{', '.join(support.VOLSYNC_PROVEN)} |") in section, section
    pythons = ", ".join(f"3.{n}" for n in range(support.PYTHON_MIN[1], support.PYTHON_MAX[1] + 1))
    assert (f"| Python (the plugin, the controller) | {support.minor(support.PYTHON_MIN)} to "
            f"{support.minor(support.PYTHON_MAX)} | {pythons} |") in section, section


def test_the_ci_matrices_are_the_proven_versions():
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yaml").read_text())
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request"} <= set(on)
    jobs = workflow["jobs"]
    compat = jobs["compatibility"]["strategy"]["matrix"]
    assert compat["kubernetes"] == list(support.KUBERNETES_PROVEN)
    assert compat["volsync"] == list(support.VOLSYNC_PROVEN)
    assert any("scripts/compat.sh" in step.get("run", "") and "matrix.kubernetes" in step["run"]
               and "matrix.volsync" in step["run"] for step in jobs["compatibility"]["steps"])
    pythons = jobs["pythons"]["strategy"]["matrix"]["python"]
    assert pythons == [f"3.{n}" for n in range(support.PYTHON_MIN[1], support.PYTHON_MAX[1] + 1)]
    # The README's test command, with the Go caches and the built control plane cached by the pins and build scripts.
    readme_command = re.search(r"^(\./scripts/test\.sh)\s", (REPO / "README.md").read_text(), re.M)[1]
    assert (REPO / ".ci" / "run").read_text().strip().endswith(readme_command)
    steps = jobs["test"]["steps"]
    assert any(readme_command in step.get("run", "") for step in steps)
    caches = [step["with"] for step in steps if str(step.get("uses", "")).startswith("actions/cache@")]
    paths = "\n".join(c["path"] for c in caches)
    assert "~/go/pkg/mod" in paths and "~/.cache/go-build" in paths and "~/.cache/pvc-restore/controlplane-*" in paths
    assert any("hashFiles('tools/**', 'scripts/build-*.sh')" in c["key"] for c in caches)


def test_compat_sh_runs_the_proven_versions_by_default():
    script = (REPO / "scripts" / "compat.sh").read_text()
    assert "KUBERNETES_PROVEN[0], s.KUBERNETES_PROVEN[-1]" in script and "VOLSYNC_PROVEN" in script
    for test in re.findall(r"^\s+(tests/\S+)$", script, re.M):  # the subset names tests that exist
        path, _, name = test.partition("::")
        assert (REPO / path).is_file(), test
        assert not name or re.search(rf"^def {re.escape(name)}\(", (REPO / path).read_text(), re.M), test


# -- the chart: refuses below the minimum, degrades clearly below 1.36 (helm, no cluster) ----------------------------

@pytest.fixture(scope="module")
def helm() -> Path:
    from devtools.controlplane import build

    return build() / "bin" / "helm"


def template(helm: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(helm), "template", "pr", str(CHART), "-n", "ops", *args], capture_output=True,
                          text=True)


def kinds(rendered: str) -> set[str]:
    return {d["kind"] for d in yaml.safe_load_all(rendered) if d}


def test_the_chart_refuses_a_kubernetes_older_than_the_minimum(helm):
    old = template(helm, "--kube-version", "1.33.9")
    assert old.returncode != 0
    assert "chart requires kubeVersion: >=1.34.0-0 which is incompatible with Kubernetes v1.33.9" in old.stderr
    for version in ("1.34.0", "v1.34.4+k3s1", "1.34.2-eks-113cf36", "1.37.2"):
        assert template(helm, "--kube-version", version).returncode == 0, version
    # Without --kube-version helm assumes the minor of its own client-go (as Helm's release builds do), not 1.20.
    assert template(helm).returncode == 0


def test_below_1_36_the_chart_leaves_the_requester_policy_out(helm):
    old = template(helm, "--kube-version", "1.34.4")
    assert old.returncode == 0, old.stderr
    assert {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} <= kinds(old.stdout)
    assert "MutatingAdmissionPolicy" not in kinds(old.stdout)
    new = template(helm, "--kube-version", "1.36.3", "--api-versions",
                   "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy")
    assert {"MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"} <= kinds(new.stdout)


# -- against the API server ------------------------------------------------------------------------------------------

def test_the_install_notes_say_when_the_requester_policy_is_left_out(control_plane, kubeconfig, namespace):
    """helm install against the session's server (a server-side dry run): the notes say why "Requested by" stays
    empty exactly when the server does not serve MutatingAdmissionPolicy v1 (1.34 and 1.35: scripts/compat.sh)."""
    from tests.test_admission_policies import serves_mutating_admission_policies

    served = serves_mutating_admission_policies(control_plane)
    result = subprocess.run([str(control_plane.bin / "helm"), "install", "pr", str(CHART), "-n", namespace,
                             "--kubeconfig", kubeconfig, "--dry-run=server"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "NOTES:" in result.stdout
    rendered = kinds(result.stdout.split("NOTES:")[0].split("MANIFEST:", 1)[1])
    assert ("MutatingAdmissionPolicy" in rendered) == served, rendered
    said = "does not serve MutatingAdmissionPolicy v1 (Kubernetes >= 1.36)" in result.stdout
    assert said == (not served), result.stdout.split("NOTES:")[1]

def test_doctor_reports_the_server_version_against_the_range(kube, kubeconfig, namespace):
    from click.testing import CliRunner

    from kubectl_pvc_restore.cli import cli

    version = kube.version()["gitVersion"]
    result = CliRunner().invoke(cli, ["doctor", "--kubeconfig", kubeconfig, "-n", namespace],
                                prog_name="kubectl pvc-restore")
    assert "Traceback" not in result.output, result.output
    expected = support.kubernetes_support({"gitVersion": version})
    assert expected.supported, f"the test cluster runs {version}, outside the supported range"
    assert f"[ok  ] Kubernetes {version} is supported (Kubernetes 1.34 to 1.36)" in result.output.splitlines(), \
        result.output


def test_the_controller_says_at_start_up_which_kubernetes_it_runs_on(kube, controller_process):
    version = kube.version()["gitVersion"]
    proc = controller_process()
    wanted = f"Kubernetes {version} is supported (Kubernetes 1.34 to 1.36)"
    # Both lines: the first is written a moment before the second, and reading in between would race the process.
    wait_for(lambda: (wanted in (text := Path(proc.log_path).read_text()) and "started: polling" in text)
             or proc.poll() is not None, timeout=60, message="the controller's start-up log")
    log = Path(proc.log_path).read_text()
    assert wanted in log, log
    assert log.index(wanted) < log.index("started: polling"), log


# -- the versions a run asked for are the ones that ran (scripts/compat.sh sets the two variables) -----------------

def test_the_kubernetes_asked_for_is_the_one_that_runs(kube):
    wanted = os.environ.get("PVC_RESTORE_KUBERNETES_VERSION") or pin("tools/controlplane/kubernetes/go.mod",
                                                                      "k8s.io/kubernetes")
    assert kube.version()["gitVersion"] == wanted


def installed_crd_schemas(kubectl, names) -> dict:
    out = {}
    for name in names:
        crd = yaml.safe_load(kubectl("get", "crd", name, "-o", "yaml").stdout)
        out[name] = [v["schema"] for v in crd["spec"]["versions"]]
    return out


def test_the_volsync_asked_for_is_the_one_installed_and_running(control_plane, real_volsync):
    wanted = os.environ.get("PVC_RESTORE_VOLSYNC_VERSION") or pin("tools/volsync/volsync/go.mod",
                                                                   "github.com/backube/volsync")
    assert (real_volsync.cache / "version").read_text().strip() == wanted
    wait_for(lambda: f"Operator Version: {wanted}" in real_volsync.log("volsync-manager").read_text(), timeout=30,
             message=f"volsync's manager to log its version {wanted}")
    # Its own CRDs, on the real-volsync plane and on the simulator's plane alike.
    files = {yaml.safe_load(f.read_text())["metadata"]["name"]: f
             for f in (real_volsync.cache / "crds").glob("volsync.backube_*.yaml")}
    assert set(files) == {"replicationsources.volsync.backube", "replicationdestinations.volsync.backube"}
    expected = {name: [v["schema"] for v in yaml.safe_load(f.read_text())["spec"]["versions"]]
                for name, f in files.items()}
    assert installed_crd_schemas(real_volsync.cp.kubectl, files) == expected
    assert installed_crd_schemas(control_plane.kubectl, files) == expected
