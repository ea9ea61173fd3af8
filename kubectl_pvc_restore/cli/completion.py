"""``kubectl pvc-restore completion``."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import click

EXECUTABLE = "kubectl_complete-pvc_restore"


def plugin_path() -> str:
    if getattr(sys, "frozen", False):  # the krew archive's self-contained executable
        return sys.executable
    found = shutil.which("kubectl-pvc_restore")
    return found or os.path.abspath(sys.argv[0])


@click.command("completion")
@click.option("--dir", "directory", type=click.Path(file_okay=False), help="Where to install it (default: next to "
              "the kubectl-pvc_restore executable; it must be on PATH).")
def command(directory: str | None) -> None:
    """Install the kubectl_complete-pvc_restore executable, so that with kubectl's own shell completion enabled
    (source <(kubectl completion bash)), `kubectl pvc-restore <TAB>` completes commands, flags, PVC names and
    restore names. pip installs it already; this is for krew installs and custom layouts."""
    plugin = plugin_path()
    target_dir = Path(directory or os.path.dirname(plugin))
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / EXECUTABLE
    target.write_text(f'#!/bin/sh\nexec "{plugin}" __complete "$@"\n')
    target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    click.echo(f"installed {target}")
    if shutil.which(EXECUTABLE) is None:
        click.echo(f"note: {target_dir} is not on PATH; kubectl only finds {EXECUTABLE} on PATH", err=True)
    click.echo("enable kubectl's completion if you have not: source <(kubectl completion bash)   # or zsh, fish")
