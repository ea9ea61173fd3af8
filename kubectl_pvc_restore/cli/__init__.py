"""``kubectl pvc-restore``: the kubectl plugin (executable ``kubectl-pvc_restore``).

Commands live one per module and are imported only when invoked, so ``--help`` and completion import click alone
(kr8s is imported by ``kube.py`` on first connection).
"""

from __future__ import annotations

import importlib

import click

from ..commands import ALIASES, COMMANDS
from .common import GlobalOptions, global_options


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        name = ALIASES.get(name, name)
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"{__name__}.{COMMANDS[name][0]}")
        return module.command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help without importing every command module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, (_, text) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@global_options
@click.pass_context
def cli(ctx: click.Context, **options) -> None:
    """Restore a PersistentVolumeClaim from its volsync backup, safely.

    \b
    Examples:
      kubectl pvc-restore start my-data --previous 1 --wait
      kubectl pvc-restore start my-data --as-of "2024-05-01 10:00" --dry-run
      kubectl pvc-restore list -A
      kubectl pvc-restore describe my-data-1714557600
    """
    ctx.obj = GlobalOptions.from_options(options)


def main() -> None:
    """``kubectl-pvc_restore`` (kubectl_pvc_restore.entry answers ``__complete`` first)."""
    cli(prog_name="kubectl pvc-restore")
