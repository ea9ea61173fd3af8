"""``kubectl pvc-restore snapshots PVC``."""

from __future__ import annotations

import click

from .complete import complete_pvcs

from .common import KUBE_NAME, Client, command, dump, output_option, table


@click.command("snapshots")
@click.argument("pvc", type=KUBE_NAME, shell_complete=complete_pvcs)
@click.option("--previous", type=click.IntRange(min=0, max=10000), metavar="N", help="Show which snapshot "
              "--previous N would restore.")
@click.option("--as-of", "as_of", metavar="TIME", help="Show which snapshot --as-of TIME would restore.")
@click.option("--restic", "restic_binary", metavar="PATH", help="restic binary (default: restic on PATH).")
@output_option("json", "yaml")
@command
async def command(client: Client, pvc: str, previous: int | None, as_of: str | None, restic_binary: str | None,
                  output: str | None) -> int:
    """The backup state of PVC from its ReplicationSource (mover, schedule, last and next sync, last result) and,
    where restic is installed and the repository is reachable from here, its snapshots and which one each
    selector restores. The repository Secret's values are passed to restic and never printed."""
    from .. import model, plan, restic, volsync
    from ..selector import parse_as_of

    if previous is not None and as_of is not None:
        raise click.UsageError("--previous and --as-of are mutually exclusive")
    restore_as_of = model.format_time(parse_as_of(as_of)) if as_of else None
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
    result["snapshots"], result["snapshotsError"] = await restic.source_snapshots(client.kube, source,
                                                                                  binary=restic_binary)
    snapshots = result["snapshots"]
    if snapshots is not None and (previous is not None or restore_as_of):
        chosen = volsync.select_restic_snapshot(snapshots, previous=previous, restore_as_of=restore_as_of)
        result["selected"] = chosen["id"] if chosen else None

    if output:
        click.echo(dump(result, output))
        return 0
    click.echo(f"PVC {client.namespace}/{pvc}")
    click.echo(f"ReplicationSource: {result['replicationSource']} (mover {mover}"
               + (f", schedule \"{result['schedule']}\"" if result["schedule"] else "")
               + (", PAUSED" if result["paused"] else "") + ")")
    click.echo(f"Last sync: {result['lastSyncTime'] or 'never'}"
               + (f" ({result['lastResult']}, took {result['lastSyncDuration']})" if result["lastResult"] else "")
               + f"; next: {result['nextSyncTime'] or '-'}")
    if snapshots is None:
        click.echo(f"Snapshots: not listed: {result['snapshotsError']}")
        return 0
    if not snapshots:
        click.echo("Snapshots: none (a restore would find no eligible snapshot)")
        return 0
    newest_first = list(reversed(snapshots))
    rows = []
    for i, snap in enumerate(newest_first):
        how = "latest (--previous 0)" if i == 0 else f"--previous {i}"
        mark = "  <== selected" if result.get("selected") == snap["id"] else ""
        rows.append([snap["short_id"], model.format_time(model.parse_time(snap["time"])), how + mark])
    click.echo(f"Snapshots ({len(snapshots)}, newest first):")
    click.echo(table(["ID", "TIME (UTC)", "RESTORED BY"], rows))
    if "selected" in result:
        what = f"--previous {previous}" if previous is not None else f"--as-of {restore_as_of}"
        chosen = next((s for s in snapshots if s["id"] == result["selected"]), None)
        click.echo(f"\n{what} restores " + (f"snapshot {chosen['short_id']} ({chosen['time']})" if chosen else
                                            "nothing: no eligible snapshot (the restore would fail)"))
    return 0
