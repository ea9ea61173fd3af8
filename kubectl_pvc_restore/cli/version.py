"""``kubectl pvc-restore version``."""

from __future__ import annotations

import click

from .. import __version__
from .common import Client, GlobalOptions, global_options, run_async


@click.command("version")
@click.option("--client", "client_only", is_flag=True, help="Only the plugin's version (no cluster needed).")
@global_options
@click.pass_context
def command(ctx: click.Context, client_only: bool, **options) -> None:
    """Print the plugin's version and the cluster's (Kubernetes, and whether the CRDs are installed)."""
    click.echo(f"kubectl-pvc_restore {__version__}")
    if not client_only:
        ctx.exit(run_async(_server, (ctx.obj or GlobalOptions()).merged(options), {}))


async def _server(client: Client) -> int:
    from .. import kube as k
    from .. import model

    version = await client.kube.version()
    click.echo(f"Kubernetes {version.get('gitVersion')} at {client.kube.server}")
    for name in (model.CRD_NAME, "replicationsources.volsync.backube", "replicationdestinations.volsync.backube"):
        try:
            found = await client.kube.get_or_none(k.CRDS, name) is not None
        except k.Forbidden:
            found = None
        click.echo(f"CRD {name}: " + {True: "installed", False: "NOT installed", None: "unknown (forbidden)"}[found])
    return 0
