"""``kubectl pvc-restore``: the kubectl plugin (executable ``kubectl-pvc_restore``).

Commands live one per module and are imported only when invoked, so ``--help`` and completion import click alone
(kr8s is imported by ``kube.py`` on first connection).
"""

from __future__ import annotations

import importlib

import click

from .common import GlobalOptions, global_options

COMMANDS = {
    "start": ("start", "Start a restore of a PVC from its volsync backup."),
    "list": ("list_cmd", "List PVCRestores."),
    "describe": ("describe", "Show a PVCRestore in detail: phases, workloads, volsync state, events."),
    "watch": ("watch", "Follow a PVCRestore until it is Finished (exit code = success)."),
    "cancel": ("cancel", "Cancel a PVCRestore: delete it; the controller scales workloads back first."),
    "undo": ("undo", "Undo a restore started with --safety-backup (restore the backup taken just before it)."),
    "scale-back": ("scale_back", "Bring back the workloads a restore kept stopped after it ended on partial data."),
    "locks": ("locks", "List restore locks, or clear a stale one."),
    "snapshots": ("snapshots", "A PVC's backup state and its restic snapshots, and what each selector restores."),
    "doctor": ("doctor", "Check the installation (and a PVC's backup and restore state); say how to fix problems."),
    "completion": ("completion", "Install kubectl_complete-pvc_restore so kubectl completes this plugin."),
    "tui": ("tui", "A terminal UI: pick a snapshot, start a restore, watch it, clear stale locks."),
    "version": ("version", "Print the plugin's and the cluster's versions."),
}
ALIASES = {"ls": "list", "get": "list", "rm": "cancel", "delete": "cancel"}


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
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == "__complete":  # from kubectl_complete-pvc_restore
        from .complete import main as complete

        complete(sys.argv[2:])
        return
    cli(prog_name="kubectl pvc-restore")
