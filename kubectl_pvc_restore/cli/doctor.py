"""``kubectl pvc-restore doctor [PVC]``: the usual troubleshooting steps, each finding with its fix."""

from __future__ import annotations

import dataclasses

import click

from .complete import complete_pvcs

from .common import INSTALL_COMMAND, KUBE_NAME, Client, age, command

CONTROLLER_SELECTOR = "app.kubernetes.io/name=pvc-restore"


@dataclasses.dataclass
class Finding:
    level: str  # ok, warn, fail, or unknown (a check that could not be done: a permission is missing)
    text: str
    fix: str = ""  # for unknown: how to check the permission it needs


LABELS = {"ok": "ok", "warn": "warn", "fail": "FAIL", "unknown": "????"}


class Report:
    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def ok(self, text: str) -> None:
        self.findings.append(Finding("ok", text))

    def warn(self, text: str, fix: str = "") -> None:
        self.findings.append(Finding("warn", text, fix))

    def fail(self, text: str, fix: str = "") -> None:
        self.findings.append(Finding("fail", text, fix))

    def unknown(self, what: str, exc: Exception, verb: str, resource: str, namespace: str | None) -> None:
        """``what`` could not be checked: the API call ``verb resource`` (in ``namespace``; None: cluster-wide) was
        forbidden. The permission named is the one the API server refused (the call may have been another one
        of the check's)."""
        from .describe import permission

        if getattr(exc, "code", None) == 401:
            self.findings.append(Finding("unknown", f"could not check {what}: the API server did not accept your "
                                                    "credentials", "kubectl auth whoami"))
            return
        perm = permission(exc, verb, resource, namespace)
        self.findings.append(Finding("unknown", f"could not check {what}: you may not {perm}", perm.can_i()))

    def print(self) -> None:
        for f in self.findings:
            click.echo(f"[{LABELS[f.level]:<4}] {f.text}")
            if f.fix:
                click.echo(f"       {'check' if f.level == 'unknown' else 'fix'}: {f.fix}")
        unknown = sum(f.level == "unknown" for f in self.findings)
        if unknown:
            click.echo(f"{unknown} check(s) could not be done for lack of permission ([????] above): the report is "
                       "incomplete, not a failure of those checks.")

    @property
    def failed(self) -> bool:
        return any(f.level == "fail" for f in self.findings)

    @property
    def incomplete(self) -> bool:
        return any(f.level == "unknown" for f in self.findings)

    @property
    def exit_code(self) -> int:
        return EXIT_FAILED if self.failed else EXIT_INCOMPLETE if self.incomplete else 0


#: Exit codes: a problem was found (whatever else could not be checked) / no problem found but some check could not
#: be done (permission denied) / everything checked, nothing failed (warnings do not count). 2 is click's usage error.
EXIT_FAILED = 1
EXIT_INCOMPLETE = 3


@click.command("doctor")
@click.argument("pvc", required=False, type=KUBE_NAME, shell_complete=complete_pvcs)
@command
async def command(client: Client, pvc: str | None) -> int:
    """Check that pvc-restore can work here: CRDs, the controller, storage for the restic cache; with PVC also its
    ReplicationSource and last backup, mover permissions, its lock, and any stuck restore.

    Every check runs. One whose API call you are not allowed to make is reported as [????] "could not check WHAT:
    you may not VERB RESOURCE in namespace NS" (or cluster-wide), with the `kubectl auth can-i` command that checks
    that permission; it is never reported as a failure.

    \b
    Exit code: 1 when a problem was found ([FAIL]), even if other checks could not be done;
               3 when nothing failed but some check could not be done ([????]: the report is incomplete);
               0 when every check was done and none failed (warnings do not change it)."""
    report = Report()
    await check_installation(client, report)
    if pvc:
        await check_pvc(client, report, pvc)
    report.print()
    return report.exit_code


async def check_installation(client: Client, report: Report) -> None:
    from .. import kube as k
    from .. import model
    from .describe import qualified

    try:
        crds = {name: await client.kube.get_or_none(k.CRDS, name) is not None for name in
                (model.CRD_NAME, "replicationsources.volsync.backube", "replicationdestinations.volsync.backube")}
    except k.Forbidden as exc:
        report.unknown("whether the PVCRestore and volsync CRDs are installed", exc, "get", qualified(k.CRDS), None)
        crds = {}
    if crds.get(model.CRD_NAME) is False:
        report.fail("the PVCRestore CRD is not installed",
                    INSTALL_COMMAND)
    elif crds:
        report.ok("the PVCRestore CRD is installed")
    if crds and not (crds["replicationsources.volsync.backube"] and crds["replicationdestinations.volsync.backube"]):
        report.fail("the volsync CRDs are not installed: there are no backups to restore from",
                    "install volsync (https://volsync.readthedocs.io), e.g. its Helm chart backube/volsync")
    elif crds:
        report.ok("the volsync CRDs are installed")

    cache_class = None
    try:
        pods = await client.kube.list(k.PODS, None, label_selector=CONTROLLER_SELECTOR)
    except k.Forbidden as exc:
        report.unknown("whether the pvc-restore controller runs (its pods, label " + CONTROLLER_SELECTOR + ")",
                       exc, "list", "pods", None)
        pods = None
    if pods is not None:
        ready = [p for p in pods if any(c.get("type") == "Ready" and c.get("status") == "True"
                                        for c in (p.get("status") or {}).get("conditions") or [])]
        if not pods:
            report.fail("no pvc-restore controller pod runs in the cluster (label " + CONTROLLER_SELECTOR + ")",
                        INSTALL_COMMAND)
        elif not ready:
            pod = pods[0]
            restarts = sum(c.get("restartCount", 0) for c in (pod.get("status") or {}).get("containerStatuses") or [])
            report.fail(f"the controller pod {pod['metadata']['namespace']}/{pod['metadata']['name']} is not ready "
                        f"(phase {(pod.get('status') or {}).get('phase')}, {restarts} restarts)",
                        f"kubectl logs -n {pod['metadata']['namespace']} {pod['metadata']['name']}")
        else:
            names = ", ".join(f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in ready)
            report.ok(f"the controller is running and ready ({names})")
        for pod in pods:
            for container in pod["spec"].get("containers") or []:
                for env in container.get("env") or []:
                    if env.get("name") == "CACHE_STORAGE_CLASS" and env.get("value"):
                        cache_class = env["value"]

    storage_classes = k.Resource("storage.k8s.io/v1", "StorageClass", "storageclasses", namespaced=False)
    if cache_class:
        report.ok(f"restores use StorageClass {cache_class} for the restic cache (controller setting)")
        return
    try:
        classes = await client.kube.list(storage_classes)
    except k.Forbidden as exc:
        report.unknown("which StorageClass serves the restic cache volume", exc, "list",
                       qualified(storage_classes), None)
        return
    default = [c["metadata"]["name"] for c in classes
               if (c["metadata"].get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class")
               == "true"]
    if default:
        report.ok(f"default StorageClass {default[0]} serves the restic cache volume")
    elif pods is None:  # the controller's setting could not be read
        report.warn("no default StorageClass: unless the controller sets a cache storage class (could not be "
                    "checked, see above) or the ReplicationSource sets cacheStorageClassName, a restic restore's "
                    "cache volume never binds and the restore times out",
                    "helm upgrade ... --set config.cacheStorageClass=<class>, or mark a StorageClass default")
    else:
        report.warn("no default StorageClass and no cache storage class configured: a restic restore's cache "
                    "volume never binds and the restore times out (unless the ReplicationSource sets "
                    "cacheStorageClassName)",
                    "helm upgrade ... --set config.cacheStorageClass=<class>, or mark a StorageClass default")


async def check_pvc(client: Client, report: Report, pvc: str) -> None:
    """The PVC's checks. Each runs on its own: one that is forbidden is reported as such and the others go on."""
    from .. import kube as k
    from .. import locks, plan, volsync
    from ..selector import Selector
    from .describe import forbidden, qualified

    ns = client.namespace
    try:
        obj = await client.kube.get_or_none(k.PVCS, pvc, ns)
    except k.Forbidden as exc:
        report.unknown(f"PVC {ns}/{pvc}", exc, "get", "persistentvolumeclaims", ns)
    else:
        if obj is None:
            report.fail(f"PVC {ns}/{pvc} does not exist")
            return
        phase = (obj.get("status") or {}).get("phase")
        (report.ok if phase == "Bound" else report.warn)(f"PVC {ns}/{pvc} is {phase}")
    try:
        source = await plan.find_source(client.kube, ns, pvc)
    except plan.SourceError as exc:
        report.fail(str(exc), "create a volsync ReplicationSource with spec.sourcePVC: " + pvc)
        source = None
    except k.Forbidden as exc:
        report.unknown(f"PVC {pvc}'s ReplicationSource, its mover and its last backup", exc, "list",
                       qualified(k.REPLICATION_SOURCES), ns)
        source = None
    if source is not None:
        name = source["metadata"]["name"]
        status = source.get("status") or {}
        result = (status.get("latestMoverStatus") or {}).get("result")
        try:
            mover = volsync.check_restorable(source, Selector())
            report.ok(f"ReplicationSource {name} backs it up with the {mover} mover")
        except volsync.VolsyncError as exc:
            report.fail(str(exc))
        if not status.get("lastSyncTime"):
            report.warn(f"ReplicationSource {name} has never completed a backup", "check the source's mover logs")
        elif result == "Failed":
            report.warn(f"the last backup by {name} failed ({status.get('lastSyncTime')})",
                        f"kubectl describe replicationsource -n {ns} {name}")
        else:
            report.ok(f"last backup {status.get('lastSyncTime')} ({age(status.get('lastSyncTime'))} ago): "
                      f"{result or 'unknown result'}")
        if (source.get("spec") or {}).get("paused"):
            report.warn(f"ReplicationSource {name} is paused: no backups are taken",
                        "a restore pauses it only while it runs; unpause it if a restore did not")
        try:
            warning = await plan.mover_permission_warning(client.kube, ns, source)
        except k.Forbidden as exc:
            report.unknown(f"whether the restore mover may write the app's files (the namespace's "
                           f"{plan.PRIVILEGED_MOVERS} annotation)", exc, "get", "namespaces", None)
        else:
            if warning:
                report.warn(warning)
    try:
        workloads = await plan.plan_workloads(client.kube, ns, pvc)
    except k.Forbidden as exc:
        report.unknown("which workloads mount the PVC and can be scaled down", exc, "list", "pods", ns)
    else:
        for problem in workloads.problems:
            report.fail(problem)
        if workloads.owners:
            report.ok("workloads to scale down: " + ", ".join(f"{o.kind} {o.name} ({o.replicas})"
                                                              for o in workloads.owners))
    lock: dict | None = None
    try:
        lock = await client.kube.get_or_none(k.CONFIGMAPS, locks.lock_name(pvc), ns)
        lock_known = True
    except k.Forbidden as exc:
        report.unknown(f"PVC {pvc}'s restore lock (ConfigMap {locks.lock_name(pvc)})", exc, "get", "configmaps", ns)
        lock_known = False
    try:
        active: list[dict] | None = [
            r for r in await client.restores(ns)
            if (r.get("spec") or {}).get("pvc") == pvc and (r.get("status") or {}).get("phase") != "Finished"]
    except k.Forbidden as exc:
        report.unknown(f"whether a restore of {pvc} is running or stuck", exc, "list", qualified(k.PVC_RESTORES), ns)
        active = None
    if lock is not None:
        holder, uid = locks.holder_of(lock)
        if active is None:
            report.warn(f"lock {lock['metadata']['name']} is held by {holder or 'nobody'}; whether that restore is "
                        "still active could not be checked (see above)")
        elif any(r["metadata"]["name"] == holder and r["metadata"]["uid"] == uid for r in active):
            report.ok(f"locked by the active restore {holder}")
        else:
            report.warn(f"lock {lock['metadata']['name']} is held by {holder or 'nobody'}, which is not active "
                        "(the controller deletes it once it is older than its lock TTL)",
                        f"kubectl pvc-restore locks clear {pvc} -n {ns}")
    for r in active or []:
        status = r.get("status") or {}
        since = status.get("phaseStartTime") or r["metadata"]["creationTimestamp"]
        text = f"restore {r['metadata']['name']} is in {status.get('phase') or 'Pending'} for {age(since)}"
        rd_name = status.get("replicationDestination")
        try:
            rd = await client.kube.get_or_none(k.REPLICATION_DESTINATIONS, rd_name, ns) if rd_name else None
        except k.Forbidden as exc:
            rd = None
            text += "; mover: " + forbidden(exc, "get", qualified(k.REPLICATION_DESTINATIONS), ns)
        mover_status = ((rd or {}).get("status") or {}).get("latestMoverStatus") or {}
        if mover_status:
            text += f"; mover: {mover_status.get('result')}: {volsync.log_tail(mover_status.get('logs', ''), 3)}"
        if status.get("message"):
            text += f" ({status['message']})"
        report.warn(text, f"kubectl pvc-restore describe {r['metadata']['name']} -n {ns}")
    if active == [] and lock_known and lock is None:
        report.ok("no restore is running for it")
