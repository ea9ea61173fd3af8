"""``kubectl pvc-restore describe NAME``."""

from __future__ import annotations

import dataclasses
import re

import click

from ..formatting import age, dump
from .common import KUBE_NAME, Client, output_option, selector_text
from .common import command as async_command
from .complete import complete_restores


@click.command("describe")
@click.argument("name", type=KUBE_NAME, shell_complete=complete_restores)
@output_option("json", "yaml")
@async_command
async def command(client: Client, name: str, output: str | None) -> int:
    """Show a PVCRestore: phase timeline, workloads and replicas, volsync state with the mover's log tail, events.

    Only reading the PVCRestore itself is required. A part you may not read (a workload's /scale, the
    ReplicationDestination, events) is marked "(forbidden: you may not VERB RESOURCE in namespace NS)" and the rest
    is shown; the exit code is 0 whenever the restore itself could be shown."""
    from .. import kube as k
    from .. import restore_view
    from ..model import SafetyBackup, requested_by

    ns = client.namespace
    try:
        obj = await client.kube.get(k.PVC_RESTORES, name, ns)
    except k.NotFound:
        try:
            obj = await client.restore(name)  # the not-found message, with suggestions (or the missing CRD)
        except k.Forbidden:  # may get, may not list: no suggestions
            raise click.ClickException(f'PVCRestore "{name}" not found in namespace {ns}') from None
    except k.Forbidden as exc:
        perm = permission(exc, "get", qualified(k.PVC_RESTORES), ns)
        raise click.ClickException(f"cannot show PVCRestore {name}: you may not {perm}\n"
                                   f"(check with: {perm.can_i()})") from None
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
        f"Requested by:  {requested_by(meta)}",
        f"Phase:         {status.get('phase') or 'Pending'}",
        f"Message:       {status.get('message') or ''}",
        f"Error:         {status.get('error') or '<none>'}",
        *([f"Data:          {data}"] if (data := restore_view.data_state(status, spec)) else []),
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
        current, res = "", None
        try:
            res = await client.kube.resource_for(o["apiVersion"], o["kind"])
            if res is not None:
                try:
                    scale = await client.kube.get_scale(res, o["name"], ns)
                    current = f", now {scale.get('spec', {}).get('replicas', 0)}"
                except k.NotFound:
                    current = ", no longer exists"
        except k.Forbidden as exc:
            plural = res.plural if res is not None else o["kind"].lower() + "s"
            group = res.group if res is not None else o["apiVersion"].rpartition("/")[0]
            current = ", now " + forbidden(exc, "get", f"{_qualify(plural, group)}/scale", ns)
        lines.append(f"  {o['kind']} {o['name']}: {o['replicas']} replica(s) before the restore{current}")
    if not owners and owners is not None:
        lines.append("  (none mounted the PVC)")
    if status.get("stopped"):
        from .. import stops
        from ..model import Stop

        lines.append("Also stopped:")
        lines += [f"  {stops.describe(Stop.from_dict(s))}" for s in status["stopped"]]
    for note in status.get("notes") or []:
        lines.append(f"Note: {note}")
    backup = SafetyBackup.from_dict(status.get("safetyBackup"))
    if backup:
        lines.append("Safety backup:           " + (f"snapshot {backup.snapshot} at {backup.completed_at} "
                                                      f"(undo: kubectl pvc-restore undo {meta['name']})"
                                                      if backup.completed_at else "in progress"))
    lines.append(f"ReplicationSource:       {status.get('replicationSource') or '-'}"
                 + ("" if status.get("replicationSourcePaused") is None else
                    f" (paused before: {str(status['replicationSourcePaused']).lower()})"))
    rd_name = status.get("replicationDestination")
    rd_lines: list[str] = []
    rd_state = ""
    if rd_name:
        try:
            rd = await client.kube.get_or_none(k.REPLICATION_DESTINATIONS, rd_name, ns)
        except k.Forbidden as exc:
            rd_lines.append("  " + forbidden(exc, "get", qualified(k.REPLICATION_DESTINATIONS), ns))
        else:
            if rd is None:
                rd_state = (" (deleted when the restore finished)" if status.get("phase") in ("Finalize", "Finished")
                            else " (not created yet)")
            else:
                rd_status = rd.get("status") or {}
                rd_lines.append(f"  sync started: {rd_status.get('lastSyncStartTime') or '-'}, "
                                f"last manual sync: {rd_status.get('lastManualSync') or '-'}")
                rd_lines += [f"  {line}" for line in restore_view.mover(rd, 10)]
    lines.append(f"ReplicationDestination:  {rd_name or '-'}{rd_state}")
    lines += rd_lines
    if status.get("restoredSnapshot"):
        lines.append(f"Restored snapshot:       {status['restoredSnapshot']}")
    try:
        events: list | None = await restore_view.events(client.kube, ns, meta["name"], meta.get("uid"))
        events_denied = ""
    except k.Forbidden as exc:
        events, events_denied = None, forbidden(exc, "list", "events", ns)
    lines.append("Timeline:")
    entries = restore_view.phases(status, events)
    if not entries and events is None:
        lines.append(f"  {events_denied} (restores of earlier versions keep their timeline in events)")
    for phase, at, took in entries:
        lines.append(f"  {phase:<11} {at:<25} {took}".rstrip())
    lines.append("Events:")
    if events is None:
        lines.append(f"  {events_denied}")
    elif not events:
        lines.append("  <none>")
    for e in events or []:
        lines.append(f"  {age(e.get('lastTimestamp') or e['metadata']['creationTimestamp']):>5}  {e['type']:<8} "
                     f"{e['reason']:<20} {e['message']}")
    click.echo("\n".join(lines))
    return 0


# -- permission denials, shown in place of what could not be read (describe, doctor) -----------------------------

#: The API server's 403 message: ... cannot get resource "deployments/scale" in API group "apps" in the namespace "x"
_DENIED = re.compile(r'cannot (?P<verb>[a-z]+) resource "(?P<resource>[^"]+)"(?: in API group "(?P<group>[^"]*)")?'
                     r'(?: in the namespace "(?P<namespace>[^"]+)"| (?P<cluster>at the cluster scope))?')
#: ... for a non-resource URL (API discovery): cannot get path "/apis/apps/v1"
_DENIED_PATH = re.compile(r'cannot (?P<verb>[a-z]+) path "(?P<path>/[^"]*)"')


@dataclasses.dataclass(frozen=True)
class Permission:
    """One RBAC permission: ``verb`` on ``resource`` (kubectl's spelling: plural, ``.group`` for groups with a dot,
    ``/subresource``) in ``namespace`` (None: cluster-wide, for cluster-scoped resources and lists across all
    namespaces)."""

    verb: str
    resource: str
    namespace: str | None

    def __str__(self) -> str:
        if self.resource.startswith("/"):  # a non-resource URL
            return f"{self.verb} {self.resource}"
        return f"{self.verb} {self.resource} " + (f"in namespace {self.namespace}" if self.namespace
                                                   else "cluster-wide")

    def can_i(self) -> str:
        if self.resource.startswith("/"):
            return f"kubectl auth can-i {self.verb} {self.resource}"
        resource, _, sub = self.resource.partition("/")
        return (f"kubectl auth can-i {self.verb} {resource}" + (f" --subresource={sub}" if sub else "")
                + (f" -n {self.namespace}" if self.namespace else " --all-namespaces"))


def _qualify(plural: str, group: str) -> str:
    return f"{plural}.{group}" if "." in group else plural


def qualified(res: object) -> str:
    """A ``kube.Resource`` as ``kubectl auth can-i`` spells it."""
    return _qualify(res.plural, res.group)  # type: ignore[attr-defined]


def permission(exc: Exception, verb: str, resource: str, namespace: str | None) -> Permission:
    """The permission a ``kube.Forbidden`` says is missing: read from the API server's message when it names one
    (it knows best, e.g. for a call made deep inside a check), else the one the caller says it needed."""
    m = _DENIED.search(str(exc))
    if m is None:
        path = _DENIED_PATH.search(str(exc))
        return Permission(path["verb"], path["path"], None) if path else Permission(verb, resource, namespace)
    return Permission(m["verb"], _qualify(m["resource"].split("/")[0], m["group"] or "")
                      + ("/" + m["resource"].split("/", 1)[1] if "/" in m["resource"] else ""),
                      None if m["cluster"] else (m["namespace"] or namespace))


def forbidden(exc: Exception, verb: str, resource: str, namespace: str | None) -> str:
    """The mark shown in place of what could not be read: ``(forbidden: you may not get deployments/scale in
    namespace x)``."""
    if getattr(exc, "code", None) == 401:
        return "(forbidden: the API server did not accept your credentials)"
    return f"(forbidden: you may not {permission(exc, verb, resource, namespace)})"
