"""``kubectl pvc-restore watch NAME``."""

from __future__ import annotations

import click

from .common import KUBE_NAME, Client, follow
from .common import command as async_command
from .complete import complete_restores


@click.command("watch")
@click.argument("name", type=KUBE_NAME, shell_complete=complete_restores)
@click.option("--timeout", type=click.FloatRange(min=1), metavar="SECONDS", help="Give up after this.")
@async_command
async def command(client: Client, name: str, timeout: float | None) -> int:
    """Follow a PVCRestore until it is Finished: exit 0 on success, 1 with its error otherwise."""
    return await follow(client, name, timeout)
