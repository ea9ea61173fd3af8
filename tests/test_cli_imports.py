"""`kubectl pvc-restore --help` (of the group and of every command) and command completion import click and the CLI's
own light modules alone: none of kr8s, httpx, textual, asyncio, yaml, dateutil, the PVCRestore model (its dataclasses
cost tens of milliseconds), the Kube layer or difflib. Commands import what they need when they run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kubectl_pvc_restore.cli import COMMANDS

HEAVY = ("kr8s", "textual", "httpx", "yaml", "dateutil", "asyncio", "ssl", "json", "difflib",
         "kubectl_pvc_restore.model", "kubectl_pvc_restore.kube", "kubectl_pvc_restore.kubeconfig")

CHECK = """
import sys
sys.argv = ["kubectl-pvc_restore", *{args!r}]
from kubectl_pvc_restore.cli import main
try:
    main()
except SystemExit:
    pass
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("HEAVY:" + ",".join(heavy))
"""


def heavy_modules(*args: str) -> str:
    out = subprocess.run([sys.executable, "-c", CHECK.format(args=list(args), heavy=HEAVY)], capture_output=True,
                         text=True)
    return out.stdout.strip().splitlines()[-1]


def test_help_imports_no_heavy_module():
    assert heavy_modules("--help") == "HEAVY:"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_command_help_imports_no_heavy_module(name):
    assert heavy_modules(name, "--help") == "HEAVY:"


def test_command_completion_imports_no_heavy_module():
    assert heavy_modules("__complete", "sta") == "HEAVY:"
    assert heavy_modules("__complete", "start", "--") == "HEAVY:"


def test_connecting_does_not_import_httpx_command_line_tool():
    """httpx's __init__ imports its CLI (rich, pygments); the Kube layer stands a loader in for it (kube.py)."""
    code = """
import sys
from kubectl_pvc_restore import kube
kube._skip_httpx_cli()
import httpx, kr8s.asyncio
print(sorted(m for m in ("rich", "pygments") if m in sys.modules))
try:
    httpx.main(["--help"])  # the real tool, loaded when called
except SystemExit as exc:
    print("exit", exc.code, hasattr(sys.modules["httpx._main"], "print_help"))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "[]", out.stdout + out.stderr
    assert lines[-1] == "exit 0 True", out.stdout + out.stderr
