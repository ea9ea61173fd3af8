"""``kubectl pvc-restore start PVC``."""

from __future__ import annotations

from typing import Any

import click

from ..formatting import dump
from .common import KUBE_NAME, Client, follow, output_option
from .common import command as async_command
from .complete import complete_pvcs

#: The Restore phase's limit must be at least this (the CRD refuses less: a zero timeout would scale the workloads
#: down for nothing).


def restore_timeout_value(text: str) -> str:
    """``--restore-timeout`` as the CRD's duration string (``2h``, ``1h30m``, ``1m30s``); BadParameter when it is not
    a duration of at least 1s and at most 999999h."""
    from ..durations import restore_timeout

    try:
        return restore_timeout(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--restore-timeout'") from None


def check_usage(*, latest: bool, previous: int | None, as_of: str | None, wait: bool, timeout: float | None,
                restore_timeout: str | None, **_: object) -> None:
    """Refuse contradictory or meaningless flags before connecting to anything (usage errors, exit 2)."""
    from ..selector import SelectorError, parse_as_of

    if latest and (previous is not None or as_of is not None):
        other = "--previous" if previous is not None else "--as-of"
        raise click.UsageError(f"--latest cannot be combined with {other}: choose one snapshot selector")
    if previous is not None and as_of is not None:
        raise click.UsageError("--previous and --as-of are mutually exclusive")
    if timeout is not None and not wait:
        raise click.UsageError("--timeout only applies with --wait (how long to follow the restore); add --wait, "
                               "or use --restore-timeout to limit the restore itself")
    if restore_timeout is not None:
        restore_timeout_value(restore_timeout)
    if as_of is not None:
        try:
            parse_as_of(as_of)
        except SelectorError as exc:
            raise click.BadParameter(str(exc), param_hint="'--as-of'") from None


@click.command("start")
@click.argument("pvc", type=KUBE_NAME, shell_complete=complete_pvcs)
@click.option("--latest", is_flag=True, help="Restore the latest snapshot (the default when neither --previous nor "
              "--as-of is given).")
@click.option("--previous", type=click.IntRange(min=0, max=10000), metavar="N",
              help="Restore the N-th snapshot before the latest.")
@click.option("--as-of", "as_of", metavar="TIME",
              help='Restore the newest snapshot at or before TIME: RFC3339, "2024-01-15 10:30" (local time), '
                   '"2024-01-15T10:30+02:00", "3 days ago".')
@click.option("--wait", is_flag=True, help="Follow the restore until Finished; exit non-zero if it fails.")
@click.option("--timeout", type=click.FloatRange(min=1), metavar="SECONDS", help="With --wait: give up after this.")
@click.option("--restore-timeout", metavar="DURATION", help="How long the Restore phase may wait for the mover "
              "(e.g. 2h for a large volume); default: the controller's.")
@click.option("--safety-backup", is_flag=True, help="Back the PVC's current data up first, so the restore can be "
              "undone (kubectl pvc-restore undo NAME).")
@click.option("--delete-bare-pods", is_flag=True, help="Delete pods that mount the PVC but have no controller "
              "(they do not come back); otherwise they stop the restore.")
@click.option("--running-jobs", type=click.Choice(["Wait", "Fail"]), default="Wait", show_default=True,
              help="Jobs running on the PVC: wait for them, or fail at once.")
@click.option("--partial-data", type=click.Choice(["KeepStopped", "ScaleBack"]), default="KeepStopped",
              show_default=True, help="If the restore fails after the mover started writing: keep the workloads "
              "stopped (retry, undo or scale-back later), or scale them back onto the partial data at once.")
@click.option("--dry-run", is_flag=True, help="Print what the restore would do and change nothing.")
@output_option("name", "json", "yaml")
@async_command(check=check_usage)
async def command(client: Client, pvc: str, latest: bool, previous: int | None, as_of: str | None, wait: bool,
                  timeout: float | None, restore_timeout: str | None, safety_backup: bool, delete_bare_pods: bool,
                  running_jobs: str, partial_data: str,
                  dry_run: bool, output: str | None) -> int:
    """Start a restore of PVC from its volsync backup.

    \b
    Examples:
      kubectl pvc-restore start my-data                      # latest snapshot
      kubectl pvc-restore start my-data --previous 1 --wait  # the one before the latest, and wait
      kubectl pvc-restore start my-data --as-of "2024-05-01 10:00" --dry-run
    """
    from .. import model
    from ..restores import create_restore
    from ..selector import Selector, parse_as_of

    if restore_timeout is not None:  # check_usage has refused bad flags already
        restore_timeout = restore_timeout_value(restore_timeout)
    restore_as_of = None
    if as_of is not None:
        resolved = parse_as_of(as_of)
        restore_as_of = model.format_time(resolved)
        click.echo(f"restoring as of {restore_as_of} (UTC)", err=True)
    selector = Selector(previous=previous or None, restore_as_of=restore_as_of)
    await client.pvc(pvc)
    ns = client.namespace

    options: dict[str, Any] = {"timeout": restore_timeout, "delete_bare_pods": delete_bare_pods,
                               "running_jobs": running_jobs,
               "partial_data": partial_data,
               "safety_backup": safety_backup}
    if dry_run:
        return await _dry_run(client, pvc, selector, options)

    await client.restores(ns)  # a clear message if the CRD is missing
    created = await create_restore(client.kube, ns, pvc, selector, created_by="kubectl pvc-restore start",
                                   **options)
    name = created["metadata"]["name"]
    if output in ("json", "yaml"):
        click.echo(dump(created, output))
    elif output == "name":
        click.echo(f"pvcrestore.{model.GROUP}/{name}")
    else:
        click.echo(name)
    if wait:
        return await follow(client, name, timeout)
    return 0


async def _dry_run(client: Client, pvc: str, selector, options: dict) -> int:
    import dataclasses

    from .. import preview as pv

    ns = client.namespace
    preview = await pv.build(client.kube, ns, pvc, dataclasses.replace(selector.spec(pvc), **options))
    problems, warnings = list(preview.problems), list(preview.warnings)
    click.echo(f"Dry run: restore PVC {ns}/{pvc} from the {selector.describe()} snapshot. Nothing was changed.\n")
    click.echo("\n".join(pv.lines(preview)))
    if preview.source is not None and preview.destination is not None:
        click.echo("ReplicationDestination that would be created:")
        click.echo("  " + dump(preview.destination, "yaml").replace("\n", "\n  "))
        await _dry_run_snapshots(client, preview.source, selector, problems, warnings)
    for warning in warnings:
        click.echo(f"Warning: {warning}", err=True)
    if problems:
        click.echo("\nThe restore would fail:", err=True)
        for problem in problems:
            click.echo(f"  - {problem}", err=True)
        return 1
    return 0


async def _dry_run_snapshots(client: Client, source: dict, selector, problems: list[str], warnings: list[str]
                             ) -> None:
    """The repository's snapshots with the one this restore would restore marked (restic here, or a pod in the
    cluster: ``snapshots --list-from``); no eligible snapshot is a problem, an unreadable list only a warning."""
    from .. import restic, snapshot_table, volsync
    from .snapshots import snapshot_listing

    if volsync.mover_of(source) not in volsync.SELECTS_SNAPSHOTS:
        return
    snapshots, error, how = await restic.source_snapshots(client.kube, source, timeout=30)
    if snapshots is None:
        warnings.append(f"the snapshot list could not be read, so which snapshot this restores is not shown: {error}")
        return
    chosen = volsync.select_restic_snapshot(snapshots, previous=selector.previous,
                                            restore_as_of=selector.restore_as_of)
    click.echo(f"\nSnapshots ({len(snapshots)}, newest first; listed by {how}):")
    if snapshots:
        click.echo(snapshot_listing(snapshot_table.rows(snapshots), selected=chosen["id"] if chosen else None))
    if chosen is None:
        problems.append(f"no snapshot matches the {selector.describe()} selector: the restore would restore nothing")
    else:
        click.echo(f"This restore would restore snapshot {chosen['short_id']} ({chosen['time']}).")
