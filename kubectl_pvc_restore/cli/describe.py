"""``kubectl pvc-restore describe NAME``."""

from __future__ import annotations

import click

from .complete import complete_restores

from .common import KUBE_NAME, Client, age, command, dump, output_option, selector_text


@click.command("describe")
@click.argument("name", type=KUBE_NAME, shell_complete=complete_restores)
@output_option("json", "yaml")
@command
async def command(client: Client, name: str, output: str | None) -> int:
    """Show a PVCRestore: phase timeline, workloads and replicas, volsync state with the mover's log tail, events."""
    from .. import kube as k
    from .. import volsync
    from ..model import Phase, phase_times

    obj = await client.restore(name)
    if output:
        click.echo(dump(obj, output))
        return 0
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    ns = meta["namespace"]
    lines = [
        f"Name:          {meta['name']}",
        f"Namespace:     {ns}",
        f"PVC:           {spec.get('pvc')}",
        f"Selector:      {selector_text(spec)}",
        f"Phase:         {status.get('phase') or 'Pending'}",
        f"Message:       {status.get('message') or ''}",
        f"Error:         {status.get('error') or '<none>'}",
        f"Created:       {meta.get('creationTimestamp')} ({age(meta.get('creationTimestamp'))} ago)",
        f"Started:       {status.get('startTime') or '-'}",
        f"Phase since:   {status.get('phaseStartTime') or '-'}",
        f"Completed:     {status.get('completionTime') or '-'}",
    ]
    if status.get("lockHolder"):
        lines.append(f"Waiting for:   lock held by PVCRestore {status['lockHolder']}")
    lines.append("Workloads:")
    owners = status.get("pvcOwners")
    if owners is None:
        lines.append("  (not recorded yet)")
    for o in owners or []:
        current = ""
        res = await client.kube.resource_for(o["apiVersion"], o["kind"])
        if res is not None:
            try:
                scale = await client.kube.get_scale(res, o["name"], ns)
                current = f", now {scale.get('spec', {}).get('replicas', 0)}"
            except k.NotFound:
                current = ", no longer exists"
        lines.append(f"  {o['kind']} {o['name']}: {o['replicas']} replica(s) before the restore{current}")
    if not owners and owners is not None:
        lines.append("  (none mounted the PVC)")
    if status.get("stopped"):
        from ..model import Stop

        lines.append("Also stopped:")
        lines += [f"  {Stop.from_dict(s).describe()}" for s in status["stopped"]]
    for note in status.get("notes") or []:
        lines.append(f"Note: {note}")
    if status.get("safetyBackup"):
        backup = status["safetyBackup"]
        lines.append("Safety backup:           " + (f"snapshot {backup.get('snapshot')} at {backup['completedAt']} "
                                                      f"(undo: kubectl pvc-restore undo {meta['name']})"
                                                      if backup.get("completedAt") else "in progress"))
    lines.append(f"ReplicationSource:       {status.get('replicationSource') or '-'}"
                 + ("" if status.get("replicationSourcePaused") is None else
                    f" (paused before: {str(status['replicationSourcePaused']).lower()})"))
    rd_name = status.get("replicationDestination")
    lines.append(f"ReplicationDestination:  {rd_name or '-'}")
    if status.get("restoredSnapshot"):
        lines.append(f"Restored snapshot:       {status['restoredSnapshot']}")
    if rd_name:
        rd = await client.kube.get_or_none(k.REPLICATION_DESTINATIONS, rd_name, ns)
        if rd is None:
            lines.append("  (deleted)" if status.get("phase") in ("Finalize", "Finished") else "  (not created yet)")
        else:
            rd_status = rd.get("status") or {}
            mover = rd_status.get("latestMoverStatus") or {}
            lines.append(f"  sync started: {rd_status.get('lastSyncStartTime') or '-'}, "
                         f"last manual sync: {rd_status.get('lastManualSync') or '-'}")
            if mover:
                lines.append(f"  mover result: {mover.get('result')}")
                tail = volsync.log_tail(mover.get("logs") or "", 10)
                lines += ["  mover log (tail):"] + [f"    {line}" for line in tail.splitlines()]
    events = [e for e in await client.kube.list(k.EVENTS, ns, field_selector=f"involvedObject.name={meta['name']}")
              if e["involvedObject"].get("uid") in (None, meta.get("uid"))]
    events.sort(key=lambda e: e.get("lastTimestamp") or e["metadata"]["creationTimestamp"])
    entered = phase_times(events)
    lines.append("Timeline:")
    current = status.get("phase")
    for phase in (p.value for p in Phase):
        if phase in entered:
            lines.append(f"  {phase:<11} {entered[phase]}" + ("   <- now" if phase == current and phase != "Finished"
                                                               else ""))
    lines.append("Events:")
    if not events:
        lines.append("  <none>")
    for e in events:
        lines.append(f"  {age(e.get('lastTimestamp') or e['metadata']['creationTimestamp']):>5}  {e['type']:<8} "
                     f"{e['reason']:<20} {e['message']}")
    click.echo("\n".join(lines))
    return 0
