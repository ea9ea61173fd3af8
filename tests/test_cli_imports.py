"""`kubectl pvc-restore --help` and command completion import click alone: neither kr8s nor textual (nor asyncio)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
sys.argv = ["kubectl-pvc_restore", *{args!r}]
from kubectl_pvc_restore.cli import main
try:
    main()
except SystemExit:
    pass
heavy = sorted(m for m in ("kr8s", "textual", "httpx", "yaml", "dateutil", "asyncio") if m in sys.modules)
print("HEAVY:" + ",".join(heavy))
"""


def heavy_modules(*args: str) -> str:
    out = subprocess.run([sys.executable, "-c", CHECK.format(args=list(args))], capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def test_help_imports_no_heavy_module():
    assert heavy_modules("--help") == "HEAVY:"
    assert heavy_modules("start", "--help") == "HEAVY:"


def test_command_completion_imports_no_heavy_module():
    assert heavy_modules("__complete", "sta") == "HEAVY:"
