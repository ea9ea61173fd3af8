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
    """Print the plugin's version and the cluster's: Kubernetes, and the versions each CRD serves (and stores):

    \b
      CRD pvcrestores.pvc-restore.homelab-helper.benfiola.com: served v1 (storage v1)

    or "not installed", or "cannot read: forbidden (...)" when you may not read CRDs."""
    click.echo(f"kubectl-pvc_restore {__version__}")
    if not client_only:
        ctx.exit(run_async(_server, (ctx.obj or GlobalOptions()).merged(options), {}))


async def _server(client: Client) -> int:
    from .. import kube as k
    from .. import model
    from .describe import forbidden, qualified
    from .doctor import describe_versions, missing_fields, served_versions

    version = await client.kube.version()
    click.echo(f"Kubernetes {version.get('gitVersion')} at {client.kube.server}")
    for name in (model.CRD_NAME, "replicationsources.volsync.backube", "replicationdestinations.volsync.backube"):
        try:
            crd = await client.kube.get_or_none(k.CRDS, name)
        except k.Forbidden as exc:
            why = forbidden(exc, "get", qualified(k.CRDS), None)[1:-1].removeprefix("forbidden: ")
            click.echo(f"CRD {name}: cannot read: forbidden ({why})")
            continue
        if crd is None:
            click.echo(f"CRD {name}: not installed")
            continue
        line = f"CRD {name}: {describe_versions(crd)}"
        if name == model.CRD_NAME:
            missing = missing_fields(crd)
            if model.VERSION not in served_versions(crd)[0]:
                line += f"; this plugin needs {model.VERSION}: kubectl pvc-restore doctor says how to upgrade it"
            elif missing:
                line += (f"; its schema is older than this plugin's (it lacks {', '.join(missing[:3])}"
                         + (", ..." if len(missing) > 3 else "")
                         + "): kubectl pvc-restore doctor says how to upgrade it")
        click.echo(line)
    return 0
