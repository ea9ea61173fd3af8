"""The GitHub Actions workflows pass actionlint (built from its Go module by scripts/build-controlplane.sh, pinned in
tools/controlplane/actionlint/go.mod). actionlint also runs shellcheck on `run:` scripts when shellcheck is on PATH."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"


@pytest.fixture(scope="module")
def actionlint() -> Path:
    from devtools.controlplane import build

    return build() / "bin" / "actionlint"


def lint(actionlint: Path, *files: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(actionlint), "-no-color", *map(str, files)], capture_output=True, text=True,
                          cwd=REPO, timeout=300)


def test_every_workflow_passes_actionlint(actionlint):
    files = sorted([*WORKFLOWS.glob("*.yaml"), *WORKFLOWS.glob("*.yml")])
    assert {f.name for f in files} >= {"ci.yaml", "release.yaml"}, files
    result = lint(actionlint, *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_finds_what_is_wrong(actionlint, tmp_path):
    broken = (WORKFLOWS / "ci.yaml").read_text().replace("${{ matrix.python }}", "${{ matrix.pyhton }}", 1)
    assert "matrix.pyhton" in broken
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    path = tmp_path / ".github" / "workflows" / "ci.yaml"
    path.write_text(broken)
    result = lint(actionlint, path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'property "pyhton" is not defined' in result.stdout, result.stdout
