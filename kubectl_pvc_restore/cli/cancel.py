"""``kubectl pvc-restore cancel NAME``."""

from __future__ import annotations

import click

from .common import KUBE_NAME, Client
from .common import command as async_command
from .complete import complete_restores


@click.command("cancel")
@click.argument("name", type=KUBE_NAME, shell_complete=complete_restores)
@click.option("--wait", is_flag=True, help="Wait until the controller has cleaned up and the restore is gone.")
@async_command
async def command(client: Client, name: str, wait: bool) -> int:
    """Cancel a PVCRestore by deleting it. The controller's cleanup runs first (finalizer): it deletes the
    ReplicationDestination, scales every workload back to its recorded replicas and releases the lock. If the mover
    had already started writing, the PVC holds partial data: the workloads are kept stopped (unless the restore set
    partialData: ScaleBack) and the restore stays, Terminating, until a retry takes over or `scale-back`."""
    import asyncio

    from .. import kube as k
    from ..model import is_holding

    obj = await client.restore(name)
    phase = (obj.get("status") or {}).get("phase")
    await client.kube.delete(k.PVC_RESTORES, name, client.namespace)
    if phase == "Finished" and not is_holding(obj.get("status") or {}, (obj.get("spec") or {}).get("partialData")):
        click.echo(f"pvcrestore {name} deleted (it had already finished)")
        return 0
    click.echo(f"pvcrestore {name} cancelled in phase {phase or 'Pending'}; the controller cleans up before it "
               "disappears (if the mover had started writing, it keeps the workloads stopped: see "
               f"kubectl pvc-restore describe {name} -n {client.namespace})")
    while wait:
        current = await client.kube.get_or_none(k.PVC_RESTORES, name, client.namespace)
        if current is None:
            click.echo(f"pvcrestore {name} is gone: workloads scaled back, lock released")
            return 0
        status = current.get("status") or {}
        if is_holding(status, (current.get("spec") or {}).get("partialData")):
            click.echo(f"pvcrestore {name} holds the PVC: {status.get('message')}", err=True)
            return 1
        await asyncio.sleep(0.5)
    return 0
