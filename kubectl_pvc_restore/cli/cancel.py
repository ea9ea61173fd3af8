"""``kubectl pvc-restore cancel NAME``."""

from __future__ import annotations

import click

from .complete import complete_restores

from .common import KUBE_NAME, Client, command


@click.command("cancel")
@click.argument("name", type=KUBE_NAME, shell_complete=complete_restores)
@click.option("--wait", is_flag=True, help="Wait until the controller has cleaned up and the restore is gone.")
@command
async def command(client: Client, name: str, wait: bool) -> int:
    """Cancel a PVCRestore by deleting it. The controller's cleanup runs first (finalizer): it deletes the
    ReplicationDestination, scales every workload back to its recorded replicas and releases the lock."""
    import asyncio

    from .. import kube as k

    obj = await client.restore(name)
    phase = (obj.get("status") or {}).get("phase")
    await client.kube.delete(k.PVC_RESTORES, name, client.namespace)
    if phase == "Finished":
        click.echo(f"pvcrestore {name} deleted (it had already finished)")
        return 0
    click.echo(f"pvcrestore {name} cancelled in phase {phase or 'Pending'}; the controller scales workloads back "
               "and cleans up before it disappears")
    while wait and await client.kube.get_or_none(k.PVC_RESTORES, name, client.namespace) is not None:
        await asyncio.sleep(0.5)
    return 0
