"""``kubectl pvc-restore scale-back NAME``."""

from __future__ import annotations

import click

from .common import KUBE_NAME, Client
from .common import command as async_command
from .complete import complete_restores


@click.command("scale-back")
@click.argument("name", type=KUBE_NAME, shell_complete=complete_restores)
@click.option("--wait", is_flag=True, help="Wait until the controller has scaled the workloads back.")
@click.option("--timeout", type=click.FloatRange(min=1), metavar="SECONDS", help="With --wait: give up after this.")
@async_command
async def command(client: Client, name: str, wait: bool, timeout: float | None) -> int:
    """Bring back the workloads a restore kept stopped after it ended on partial data, onto that partial data, on
    purpose: every workload at its recorded replicas, every stop undone, the ReplicationSource un-paused, the lock
    released. Prefer retrying the restore (it takes the held workloads over) or `undo` when it took a safety backup.
    """
    import asyncio
    import time

    from .. import kube as k
    from ..model import SCALE_BACK_ANNOTATION, format_time, is_holding, now

    obj = await client.restore(name)
    status = obj.get("status") or {}
    if status.get("scaledBackAt"):
        click.echo(f"pvcrestore {name}: its workloads were already scaled back at {status['scaledBackAt']}")
        return 0
    if not is_holding(status, (obj.get("spec") or {}).get("partialData")):
        reason = (f"it was taken over by {status['handedOverTo']}" if status.get("handedOverTo") else
                  "it is not Finished" if status.get("phase") != "Finished" else
                  "it did not end on partial data, so nothing is kept stopped")
        raise click.ClickException(f"pvcrestore {name} holds no workloads: {reason}")
    try:
        await client.kube.patch(k.PVC_RESTORES, name, client.namespace, {"metadata": {
            "resourceVersion": obj["metadata"]["resourceVersion"],
            "annotations": {SCALE_BACK_ANNOTATION: format_time(now())}}})
    except k.Conflict:
        # Changed since it was read: by this very patch when its answer was lost and the copy sent again was
        # refused, or by someone else. Asked already either way when the annotation is there.
        current = await client.restore(name)
        if SCALE_BACK_ANNOTATION not in ((current.get("metadata") or {}).get("annotations") or {}):
            raise click.ClickException(f"pvcrestore {name} changed while scale-back was being asked for; nothing "
                                       "was asked: run the command again") from None
    click.echo(f"pvcrestore {name}: asked the controller to scale the workloads back onto the partial data")
    deadline = time.monotonic() + timeout if timeout else None
    while wait:
        current = await client.kube.get_or_none(k.PVC_RESTORES, name, client.namespace)
        if current is None:  # it was being deleted (cancel): scaled back, then gone
            click.echo(f"workloads scaled back onto the partial data; pvcrestore {name} is gone")
            return 0
        status = current.get("status") or {}
        if status.get("scaledBackAt"):
            click.echo(status.get("message") or "scaled back")
            return 0
        if deadline and time.monotonic() > deadline:
            click.echo(f"Error: timed out waiting for the controller to scale {name}'s workloads back", err=True)
            return 1
        await asyncio.sleep(0.5)
    return 0
