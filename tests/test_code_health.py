"""Lint and types of the product's packages (kubectl_pvc_restore/ and controller/), as configured in pyproject.toml:
ruff (pycodestyle, pyflakes, bugbear, isort) and mypy; ruff also over the tools the tests and benchmarks run
(devtools/, benchmarks/) and over the tests themselves. And the layering: the TUI never imports the CLI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["kubectl_pvc_restore", "controller"]
TOOLS = ["devtools", "benchmarks", "tests"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True)


def test_ruff_finds_nothing():
    result = run("ruff", "check", "--no-cache", *PACKAGES, *TOOLS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing():
    result = run("mypy", "--no-incremental", "--cache-dir", "/dev/null")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_tui_does_not_import_the_cli():
    offenders = []
    for path in (REPO / "kubectl_pvc_restore" / "tui").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                module = "." * node.level + (node.module or "")
                if module.lstrip(".").split(".")[0] == "cli" or ".cli" in module or module.startswith(
                        "kubectl_pvc_restore.cli"):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} imports {module}")
    assert not offenders, offenders
