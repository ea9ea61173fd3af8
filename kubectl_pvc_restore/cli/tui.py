"""``kubectl pvc-restore tui``."""

from __future__ import annotations

import click

from . import common
from .common import GlobalOptions, global_options


@click.command("tui")
@click.option("-A", "--all-namespaces", is_flag=True, help="Show every namespace.")
@click.option("--interval", type=click.FloatRange(min=0.2), default=2.0, show_default=True,
              help="Seconds between refreshes.")
@click.option("--snapshot-image", metavar="IMAGE", help="Image of the pod that lists a repository's snapshots "
              "inside the cluster when restic here cannot reach it (default: quay.io/backube/volsync:0.14.0).")
@global_options
@click.pass_context
def command(ctx: click.Context, all_namespaces: bool, interval: float, snapshot_image: str | None,
            **options) -> None:
    """Pick a snapshot, start a restore, watch it and clear stale locks, in a terminal UI."""
    from .. import kube as k
    from ..kubeconfig import KubeconfigError, check
    from ..tui.app import PVCRestoreApp
    from ..tui.data import Cluster

    opts = (ctx.obj or GlobalOptions()).merged(options)
    try:  # a bad kubeconfig is a message and exit 1 before the screen opens, not a crash inside it
        check(opts.kubeconfig, opts.context, namespace=opts.namespace)
    except KubeconfigError as exc:
        raise click.ClickException(str(exc)) from None

    async def connect() -> Cluster:
        try:
            kube = await common.connect(opts)
        except KubeconfigError as exc:  # shown in the message bar like any API error
            raise k.KubeError(str(exc)) from None
        return Cluster(kube, None if all_namespaces else (opts.namespace or kube.namespace),
                       snapshot_image=snapshot_image)

    PVCRestoreApp(connect, poll_interval=interval).run()
