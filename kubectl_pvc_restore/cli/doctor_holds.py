"""``doctor``'s check of the dangerous states the chart's alerts watch (README, "Operations"), read from the cluster,
so that a user without Prometheus sees them too, each with the command that ends it:

- workloads a restore keeps at 0 after it ended on partial data (a failed restore whose workloads were not brought
  back): a failure, with the retry, undo and scale-back commands;
- a running restore that has held its workloads, paused its ReplicationSource or kept its PVC's lock for long, or
  sits in one phase for long: a warning, with describe and cancel;
- ReplicationSources paused with no restore holding them (a restore deleted by force, or a hand-made pause: no
  backups are taken): a warning, with the patch that resumes it;
- locks whose restore is Finished or gone beyond the controller's lock TTL (abandoned): a warning, with
  ``locks clear``.

The thresholds are the chart's alert defaults (values.yaml ``metrics.prometheusRule.thresholds``); what a restore
holds is ``kubectl_pvc_restore.holds``, the same definition the controller's gauges use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..holds import Hold
    from ..model import PVCRestore
    from .common import Client
    from .doctor import Report

HELD_LONG = 6 * 3600          # thresholds.workloadsHeld
PAUSED_LONG = 12 * 3600       # thresholds.backupsPaused
LOCK_HELD_LONG = 12 * 3600    # thresholds.lockHeld
LOCK_ABANDONED = 30 * 60      # thresholds.lockAbandoned (the controller deletes them after --lock-ttl, 5m)
STUCK_AFTER = {"Initialize": 30 * 60, "ScaleDown": 30 * 60, "Restore": 26 * 3600, "Finalize": 30 * 60}


def _duration(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            rest = seconds % size
            smaller = {"d": ("h", 3600), "h": ("m", 60), "m": ("s", 1)}[unit]
            return f"{seconds // size}{unit}" + (f"{rest // smaller[1]}{smaller[0]}" if rest // smaller[1] else "")
    return f"{seconds}s"


def _where(namespace: str | None) -> str:
    return "in any namespace" if namespace is None else f"in namespace {namespace}"


def _held_text(hold: Hold) -> list[str]:
    from .. import stops

    lines = []
    if hold.workloads:
        lines.append("at 0 replicas: " + ", ".join(f"{o.kind} {o.name} (back to {o.replicas})"
                                                   for o in hold.workloads))
    if hold.source:
        lines.append(f"ReplicationSource {hold.source} paused: no backups of the PVC are taken")
    lines += [f"stopped: {stops.describe(s)}" for s in hold.stops]
    return lines


def partial_data_fix(r: PVCRestore) -> str:
    """The commands that end a hold after partial data (as the restore's DataIncomplete condition names them)."""
    ns = r.namespace
    lines = [f"retry (takes the held workloads over, brings them back when it succeeds): kubectl pvc-restore start "
             f"{r.spec.pvc} -n {ns}{r.spec.selector_flags()}"]
    if r.status.safety_backup is not None and r.status.safety_backup.completed_at:
        lines.append(f"or put back the safety backup taken just before: kubectl pvc-restore undo {r.name} -n {ns}")
    lines.append(f"or bring the workloads back onto the partial data on purpose: kubectl pvc-restore scale-back "
                 f"{r.name} -n {ns}")
    return "\n".join(lines)


async def check_holds(client: Client, report: Report, *, all_namespaces: bool) -> None:
    """The dangerous states in the client's namespace (``all_namespaces``: everywhere); one finding each, and one ok
    line when there is none. A list that may not be read is reported as not checked, and the rest goes on."""
    from .. import holds as h
    from .. import kube as k
    from .. import locks, model
    from .describe import permission, qualified

    namespace = None if all_namespaces else client.namespace
    where = _where(namespace)
    now = model.now().timestamp()
    problems = 0
    #: (what could not be checked, the refusal, the resource listed): one [????] finding for them all, at the end
    denied: list[tuple[str, Exception, str]] = []

    try:
        raw: list[dict[str, Any]] | None = await client.kube.list(k.PVC_RESTORES, namespace)
    except k.NotFound:
        return  # the CRD is missing: the CRD check says so
    except k.Forbidden as exc:
        denied.append((f"which restores hold workloads, sources or locks {where}", exc, qualified(k.PVC_RESTORES)))
        raw = None
    models = [model.PVCRestore.from_dict(obj) for obj in raw or []]

    held_sources: set[tuple[str, str]] = set()
    for hold in h.holds(models):
        r = hold.restore
        if hold.source:
            held_sources.add((r.namespace, hold.source))
        since = f" for {_duration(now - hold.since)}" if hold.since is not None else ""
        if hold.reason == h.PARTIAL_DATA:
            problems += 1
            error = f" ({r.status.error})" if r.status.error else ""
            report.fail(f"restore {r.namespace}/{r.name} ended on partial data{error} and keeps what it stopped "
                        f"stopped{since}, until a retry, an undo or a scale-back", partial_data_fix(r),
                        tuple(_held_text(hold)) + (f"details: kubectl pvc-restore describe {r.name} -n {r.namespace}",))
            continue
        age = now - hold.since if hold.since is not None else 0.0
        long_held = (hold.workloads and age > HELD_LONG) or (hold.source and age > PAUSED_LONG)
        if long_held:
            problems += 1
            report.findings.append(_finding(
                "warn", f"restore {r.namespace}/{r.name} ({r.phase.value}) has held what it stopped{since}",
                f"kubectl pvc-restore describe {r.name} -n {r.namespace}\nto give up: kubectl pvc-restore cancel "
                f"{r.name} -n {r.namespace} (after the mover started, the data is partial and the workloads stay "
                "stopped)", tuple(_held_text(hold))))

    for r in models:
        if r.finished or (r.phase == model.Phase.INITIALIZE and r.status.lock_holder):
            continue  # a restore queued behind another restore of its PVC waits on purpose
        entered = h.seconds(r.status.phase_start_time) or h.seconds(r.creation_timestamp)
        limit = STUCK_AFTER.get(r.phase.value)
        if entered is not None and limit is not None and now - entered > limit:
            problems += 1
            report.warn(f"restore {r.namespace}/{r.name} has been in {r.phase.value} for {_duration(now - entered)} "
                        f"(more than {_duration(limit)}): {r.status.message or 'no message'}",
                        f"kubectl pvc-restore describe {r.name} -n {r.namespace}; kubectl pvc-restore doctor "
                        f"{r.spec.pvc} -n {r.namespace}; to give up: kubectl pvc-restore cancel {r.name} -n "
                        f"{r.namespace}")

    try:
        sources: list[dict[str, Any]] | None = await client.kube.list(k.REPLICATION_SOURCES, namespace)
    except k.NotFound:
        sources = []  # no volsync CRDs: the CRD check says so
    except k.Forbidden as exc:
        denied.append((f"which ReplicationSources are paused {where}", exc, qualified(k.REPLICATION_SOURCES)))
        sources = None
    for source in sources or []:
        meta = source["metadata"]
        if not (source.get("spec") or {}).get("paused") or (meta["namespace"], meta["name"]) in held_sources:
            continue
        if raw is None:
            continue  # whether a restore holds it is unknown (reported above)
        holder = next((m for m in models if not m.finished and m.status.replication_source == meta["name"]
                       and m.namespace == meta["namespace"]), None)
        if holder is not None:
            continue  # paused by its running restore, or paused before it (it stays so)
        problems += 1
        report.warn(f"ReplicationSource {meta['namespace']}/{meta['name']} (PVC "
                    f"{(source.get('spec') or {}).get('sourcePVC')}) is paused and no restore holds it: no backups "
                    "are taken (a restore deleted by force, or paused by hand?)",
                    f"kubectl patch replicationsource {meta['name']} -n {meta['namespace']} --type merge "
                    "-p '{\"spec\":{\"paused\":false}}'")

    try:
        lock_objs: list[dict[str, Any]] | None = await client.kube.list(
            k.CONFIGMAPS, namespace, label_selector=f"{locks.LOCK_LABEL}=true")
    except k.Forbidden as exc:
        denied.append((f"the restore locks {where}", exc, "configmaps"))
        lock_objs = None
    by_key = {(obj["metadata"].get("namespace", ""), obj["metadata"]["name"]): obj for obj in raw or []}
    for lock in lock_objs or []:
        meta, data = lock["metadata"], lock.get("data") or {}
        holder_name, _ = locks.holder_of(lock)
        acquired = h.seconds(data.get("acquiredAt")) or h.seconds(meta.get("creationTimestamp"))
        age = now - acquired if acquired is not None else 0.0
        lock_state = locks.holder_state(lock, by_key.get((meta["namespace"], holder_name))) if raw is not None else None
        pvc = data.get("pvc") or meta["name"].removeprefix(locks.PREFIX)
        if lock_state in ("finished", "gone") and age > LOCK_ABANDONED:
            problems += 1
            report.warn(f"lock {meta['namespace']}/{meta['name']} outlives its restore {holder_name or '(unknown)'} "
                        f"({lock_state}) by {_duration(age)}: new restores of PVC {pvc} wait for it; the controller "
                        "deletes such a lock after its lock TTL, so it cannot or does not run",
                        f"kubectl pvc-restore locks clear {pvc} -n {meta['namespace']}")
        elif lock_state is not None and lock_state.startswith("active") and age > LOCK_HELD_LONG:
            problems += 1
            report.warn(f"lock {meta['namespace']}/{meta['name']} has been held by restore {holder_name} "
                        f"({lock_state}) for {_duration(age)}: other restores of PVC {pvc} wait",
                        f"kubectl pvc-restore describe {holder_name} -n {meta['namespace']}; to give up: "
                        f"kubectl pvc-restore cancel {holder_name} -n {meta['namespace']}")

    if denied:
        (what, first, resource), rest = denied[0], denied[1:]
        report.unknown(what, first, "list", resource, namespace,
                       details=tuple(f"not checked either: {w}: {_refused(e, r, namespace)}" for w, e, r in rest),
                       more_checks=tuple(permission(e, "list", r, namespace).can_i() for _, e, r in rest))
    elif not problems:
        report.ok(f"no restore holds workloads, a paused source or stops after partial data or for long {where}; no "
                  "source is left paused; no lock is abandoned or held long")


def _refused(exc: Exception, resource: str, namespace: str | None) -> str:
    from .describe import permission

    if getattr(exc, "code", None) == 401:
        return "the API server did not accept your credentials"
    return f"you may not {permission(exc, 'list', resource, namespace)}"


def _finding(level: str, text: str, fix: str, details: tuple[str, ...]):
    from .doctor import Finding

    return Finding(level, text, fix, details)
