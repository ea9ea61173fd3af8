"""``kubectl pvc-restore undo NAME``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .common import KUBE_NAME, Client, follow
from .common import command as async_command
from .complete import complete_restores

if TYPE_CHECKING:
    from ..model import SafetyBackup


def check_usage(*, wait: bool, timeout: float | None, **_: object) -> None:
    if timeout is not None and not wait:
        raise click.UsageError("--timeout only applies with --wait (how long to follow the undo); add --wait")


async def check_still_there(client: Client, status: dict, backup: SafetyBackup, pvc: str) -> None:
    """volsync runs ``restic forget`` with the PVC's source's retain policy after each of its backups (no retain: keep
    the last one only), over every snapshot, the safety backup included. After such a backup, a restore "as of the
    safety backup" could silently restore an older snapshot instead: refuse, and say how to check."""
    from .. import kube as k
    from .. import volsync
    from ..model import parse_time

    name = status.get("replicationSource")
    source = await client.kube.get_or_none(k.REPLICATION_SOURCES, name, client.namespace) if name else None
    last = parse_time(((source or {}).get("status") or {}).get("lastSyncTime"))
    done = parse_time(backup.completed_at)
    if source is None or last is None or done is None or last <= done:
        return
    ns = client.namespace
    raise click.ClickException(
        f"ReplicationSource {name} has backed up PVC {pvc} since the safety backup (at {backup.completed_at}), and "
        f"after each backup volsync runs restic forget {volsync.forget_options(source)}: snapshot "
        f"{backup.snapshot or '(unknown)'} may be gone, and a restore as of the safety backup would then "
        f"restore an older snapshot over the data. Check whether it is still there: kubectl pvc-restore snapshots "
        f"{pvc} -n {ns}; if it is, restore it with: kubectl pvc-restore start {pvc} -n {ns} --as-of "
        f"{backup.completed_at}")


@click.command("undo")
@click.argument("name", type=KUBE_NAME, shell_complete=complete_restores)
@click.option("--wait", is_flag=True, help="Follow the undo until Finished; exit non-zero if it fails.")
@click.option("--timeout", type=click.FloatRange(min=1), metavar="SECONDS", help="With --wait: give up after this.")
@async_command(check=check_usage)
async def command(client: Client, name: str, wait: bool, timeout: float | None) -> int:
    """Undo a restore that was started with --safety-backup: restore the backup of the PVC's data taken just before
    it (a new restore, as of that backup)."""
    from ..model import SafetyBackup
    from ..restores import create_restore
    from ..selector import Selector

    obj = await client.restore(name)
    status = obj.get("status") or {}
    backup = SafetyBackup.from_dict(status.get("safetyBackup")) or SafetyBackup()
    if not (obj.get("spec") or {}).get("safetyBackup"):
        raise click.ClickException(f"restore {name} was started without --safety-backup: there is no backup of the "
                                   "data it replaced; restore an older snapshot instead (kubectl pvc-restore "
                                   "snapshots)")
    if not backup.completed_at:
        raise click.ClickException(f"restore {name} has not completed its safety backup (phase "
                                   f"{status.get('phase') or 'Pending'}), so nothing was overwritten yet")
    pvc = obj["spec"]["pvc"]
    await check_still_there(client, status, backup, pvc)
    created = await create_restore(client.kube, client.namespace, pvc, Selector(restore_as_of=backup.completed_at),
                                   created_by=f"kubectl pvc-restore undo {name}")
    new = created["metadata"]["name"]
    click.echo(new)
    click.echo(f"restoring PVC {pvc} as of {backup.completed_at} (the safety backup"
               + (f", snapshot {backup.snapshot}" if backup.snapshot else "") + ")", err=True)
    if wait:
        return await follow(client, new, timeout)
    return 0
