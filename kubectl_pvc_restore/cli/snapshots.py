"""``kubectl pvc-restore snapshots PVC``."""

from __future__ import annotations

import click

from ..formatting import dump, table
from .common import KUBE_NAME, Client, output_option
from .common import command as async_command
from .complete import complete_pvcs

LIST_FROM = click.Choice(["auto", "local", "cluster"])


def list_options(f):
    """--list-from and --image: where the snapshot list is read (shared by ``snapshots`` and ``start --dry-run``)."""
    f = click.option("--image", metavar="IMAGE", default=None,
                     help="Image of the snapshot-listing pod (default: volsync's mover image, "
                          "quay.io/backube/volsync:0.14.0); it must have restic.")(f)
    return click.option("--list-from", "list_from", type=LIST_FROM, default="auto", show_default=True,
                        help="Where to run 'restic snapshots': local (restic here), cluster (a short-lived pod in "
                             "the PVC's namespace, on the cluster's network), or auto (here when restic is installed "
                             "and reaches the repository, else a pod).")(f)


@click.command("snapshots")
@click.argument("pvc", type=KUBE_NAME, shell_complete=complete_pvcs)
@click.option("--previous", type=click.IntRange(min=0, max=10000), metavar="N", help="Show which snapshot "
              "--previous N would restore.")
@click.option("--as-of", "as_of", metavar="TIME", help="Show which snapshot --as-of TIME would restore.")
@click.option("--restic", "restic_binary", metavar="PATH", help="restic binary (default: restic on PATH).")
@list_options
@click.option("--timeout", type=click.FloatRange(min=1), default=60, show_default=True, metavar="SECONDS",
              help="How long to wait for the snapshot list (restic retries an unreachable repository for minutes).")
@output_option("json", "yaml")
@async_command
async def command(client: Client, pvc: str, previous: int | None, as_of: str | None, restic_binary: str | None,
                  list_from: str, image: str | None, timeout: float, output: str | None) -> int:
    """The backup state of PVC from its ReplicationSource (mover, schedule, last and next sync, last result) and its
    snapshots: for each, its time (UTC and local), id, host, paths, size and the selector that restores exactly it.
    The list is read by restic here when it reaches the repository, else by a short-lived pod in the PVC's namespace
    (--list-from). The repository Secret's values are passed to restic and never printed. Exits 1 when the snapshots
    cannot be listed."""
    from .. import model, plan, restic, snapshot_table, volsync
    from ..selector import SelectorError, parse_as_of

    if previous is not None and as_of is not None:
        raise click.UsageError("--previous and --as-of are mutually exclusive")
    try:
        restore_as_of = model.format_time(parse_as_of(as_of)) if as_of else None
    except SelectorError as exc:
        raise click.BadParameter(str(exc), param_hint="'--as-of'") from None
    await client.pvc(pvc)
    try:
        source = await plan.find_source(client.kube, client.namespace, pvc)
    except plan.SourceError as exc:
        raise click.ClickException(str(exc)) from None
    mover = volsync.mover_of(source)
    spec, status = source.get("spec") or {}, source.get("status") or {}
    trigger = spec.get("trigger") or {}
    result: dict = {
        "pvc": pvc, "namespace": client.namespace, "replicationSource": source["metadata"]["name"], "mover": mover,
        "schedule": trigger.get("schedule"), "manual": trigger.get("manual"), "paused": bool(spec.get("paused")),
        "lastSyncTime": status.get("lastSyncTime"), "nextSyncTime": status.get("nextSyncTime"),
        "lastSyncDuration": status.get("lastSyncDuration"),
        "lastResult": (status.get("latestMoverStatus") or {}).get("result"),
    }
    snapshots, error, listed_with = await restic.source_snapshots(
        client.kube, source, binary=restic_binary, where=list_from, image=image or restic.DEFAULT_IMAGE,
        timeout=timeout)
    result["snapshotsError"], result["listedWith"] = error, listed_with
    rows = snapshot_table.rows(snapshots) if snapshots is not None else []
    result["snapshots"] = None if snapshots is None else [
        {**row.snapshot, "restoredBy": {"previous": row.index if row.by_previous else None, "asOf": row.as_of}}
        for row in rows]
    if snapshots is not None and (previous is not None or restore_as_of):
        chosen = volsync.select_restic_snapshot(snapshots, previous=previous, restore_as_of=restore_as_of)
        result["selected"] = chosen["id"] if chosen else None

    if output:
        click.echo(dump(result, output))
        return 1 if snapshots is None else 0
    click.echo(f"PVC {client.namespace}/{pvc}")
    click.echo(f"ReplicationSource: {result['replicationSource']} (mover {mover}"
               + (f", schedule \"{result['schedule']}\"" if result["schedule"] else "")
               + (", PAUSED" if result["paused"] else "") + ")")
    click.echo(f"Last sync: {result['lastSyncTime'] or 'never'}"
               + (f" ({result['lastResult']}, took {result['lastSyncDuration']})" if result["lastResult"] else "")
               + f"; next: {result['nextSyncTime'] or '-'}")
    if snapshots is None:
        click.echo(f"Error: the snapshots could not be listed: {error}", err=True)
        return 1
    if not snapshots:
        click.echo(f"Snapshots: none (a restore would find no eligible snapshot); listed by {listed_with}")
        return 0
    click.echo(f"Snapshots ({len(snapshots)}, newest first; listed by {listed_with}):")
    click.echo(snapshot_listing(rows, selected=result.get("selected")))
    if "selected" in result:
        what = f"--previous {previous}" if previous is not None else f"--as-of {restore_as_of}"
        chosen = next((s for s in snapshots if s["id"] == result["selected"]), None)
        click.echo(f"\n{what} restores " + (f"snapshot {chosen['short_id']} ({chosen['time']})" if chosen else
                                            "nothing: no eligible snapshot (the restore would fail)"))
    return 0


def snapshot_listing(rows: list, *, selected: str | None = None) -> str:
    """The snapshot table (also used by ``start --dry-run``)."""
    return table(["ID", "TIME (UTC)", "LOCAL TIME", "HOST", "PATHS", "SIZE", "RESTORED BY"],
                 [[row.short_id, row.utc, row.local, row.host, row.paths, row.size,
                   row.selectors() + ("  <== selected" if selected == row.snapshot["id"] else "")]
                  for row in rows])
