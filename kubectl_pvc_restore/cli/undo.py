"""``kubectl pvc-restore undo NAME``."""

from __future__ import annotations

import click

from .common import KUBE_NAME, Client, command, follow
from .complete import complete_restores


def check_usage(*, wait: bool, timeout: float | None, **_: object) -> None:
    if timeout is not None and not wait:
        raise click.UsageError("--timeout only applies with --wait (how long to follow the undo); add --wait")


@click.command("undo")
@click.argument("name", type=KUBE_NAME, shell_complete=complete_restores)
@click.option("--wait", is_flag=True, help="Follow the undo until Finished; exit non-zero if it fails.")
@click.option("--timeout", type=click.FloatRange(min=1), metavar="SECONDS", help="With --wait: give up after this.")
@command(check=check_usage)
async def command(client: Client, name: str, wait: bool, timeout: float | None) -> int:
    """Undo a restore that was started with --safety-backup: restore the backup of the PVC's data taken just before
    it (a new restore, as of that backup)."""
    from ..restores import create_restore
    from ..selector import Selector

    obj = await client.restore(name)
    status = obj.get("status") or {}
    backup = status.get("safetyBackup") or {}
    if not (obj.get("spec") or {}).get("safetyBackup"):
        raise click.ClickException(f"restore {name} was started without --safety-backup: there is no backup of the "
                                   "data it replaced; restore an older snapshot instead (kubectl pvc-restore "
                                   "snapshots)")
    if not backup.get("completedAt"):
        raise click.ClickException(f"restore {name} has not completed its safety backup (phase "
                                   f"{status.get('phase') or 'Pending'}), so nothing was overwritten yet")
    pvc = obj["spec"]["pvc"]
    created = await create_restore(client.kube, client.namespace, pvc, Selector(restore_as_of=backup["completedAt"]),
                                   created_by=f"kubectl pvc-restore undo {name}")
    new = created["metadata"]["name"]
    click.echo(new)
    click.echo(f"restoring PVC {pvc} as of {backup['completedAt']} (the safety backup"
               + (f", snapshot {backup['snapshot']}" if backup.get("snapshot") else "") + ")", err=True)
    if wait:
        return await follow(client, new, timeout)
    return 0
