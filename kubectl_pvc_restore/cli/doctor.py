"""``kubectl pvc-restore doctor [PVC]``: the usual troubleshooting steps, each finding with its fix."""

from __future__ import annotations

import dataclasses

import click

from .complete import complete_pvcs

from .common import INSTALL_COMMAND, KUBE_NAME, Client, age, command

CONTROLLER_SELECTOR = "app.kubernetes.io/name=pvc-restore"


@dataclasses.dataclass
class Finding:
    level: str  # ok, warn, fail
    text: str
    fix: str = ""


class Report:
    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def ok(self, text: str) -> None:
        self.findings.append(Finding("ok", text))

    def warn(self, text: str, fix: str = "") -> None:
        self.findings.append(Finding("warn", text, fix))

    def fail(self, text: str, fix: str = "") -> None:
        self.findings.append(Finding("fail", text, fix))

    def print(self) -> None:
        for f in self.findings:
            click.echo(f"[{ {'ok': 'ok', 'warn': 'warn', 'fail': 'FAIL'}[f.level]:<4}] {f.text}")
            if f.fix:
                click.echo(f"       fix: {f.fix}")

    @property
    def failed(self) -> bool:
        return any(f.level == "fail" for f in self.findings)


@click.command("doctor")
@click.argument("pvc", required=False, type=KUBE_NAME, shell_complete=complete_pvcs)
@command
async def command(client: Client, pvc: str | None) -> int:
    """Check that pvc-restore can work here: CRDs, the controller, storage for the restic cache; with PVC also its
    ReplicationSource and last backup, mover permissions, its lock, and any stuck restore. Exit 1 on a failure."""
    report = Report()
    await check_installation(client, report)
    if pvc:
        await check_pvc(client, report, pvc)
    report.print()
    return 1 if report.failed else 0


async def check_installation(client: Client, report: Report) -> None:
    from .. import kube as k
    from .. import model

    try:
        crds = {name: await client.kube.get_or_none(k.CRDS, name) is not None for name in
                (model.CRD_NAME, "replicationsources.volsync.backube", "replicationdestinations.volsync.backube")}
    except k.Forbidden:
        report.warn("cannot read CustomResourceDefinitions (forbidden); skipping the CRD checks")
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
    except k.Forbidden:
        report.warn("cannot list pods in all namespaces (forbidden); skipping the controller check")
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

    try:
        classes = await client.kube.list(k.Resource("storage.k8s.io/v1", "StorageClass", "storageclasses",
                                                    namespaced=False))
    except k.Forbidden:
        classes = None
    if classes is not None:
        default = [c["metadata"]["name"] for c in classes
                   if (c["metadata"].get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class")
                   == "true"]
        if cache_class:
            report.ok(f"restores use StorageClass {cache_class} for the restic cache (controller setting)")
        elif default:
            report.ok(f"default StorageClass {default[0]} serves the restic cache volume")
        else:
            report.warn("no default StorageClass and no cache storage class configured: a restic restore's cache "
                        "volume never binds and the restore times out (unless the ReplicationSource sets "
                        "cacheStorageClassName)",
                        "helm upgrade ... --set config.cacheStorageClass=<class>, or mark a StorageClass default")


async def check_pvc(client: Client, report: Report, pvc: str) -> None:
    from .. import kube as k
    from .. import locks, plan, volsync
    from ..selector import Selector

    ns = client.namespace
    obj = await client.kube.get_or_none(k.PVCS, pvc, ns)
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
        warning = await plan.mover_permission_warning(client.kube, ns, source)
        if warning:
            report.warn(warning)
    workloads = await plan.plan_workloads(client.kube, ns, pvc)
    for problem in workloads.problems:
        report.fail(problem)
    if workloads.owners:
        report.ok("workloads to scale down: " + ", ".join(f"{o.kind} {o.name} ({o.replicas})"
                                                          for o in workloads.owners))
    lock = await client.kube.get_or_none(k.CONFIGMAPS, locks.lock_name(pvc), ns)
    restores = [r for r in await client.restores(ns) if (r.get("spec") or {}).get("pvc") == pvc]
    active = [r for r in restores if (r.get("status") or {}).get("phase") != "Finished"]
    if lock is not None:
        holder, uid = locks.holder_of(lock)
        live = any(r["metadata"]["name"] == holder and r["metadata"]["uid"] == uid for r in active)
        if live:
            report.ok(f"locked by the active restore {holder}")
        else:
            report.warn(f"lock {lock['metadata']['name']} is held by {holder or 'nobody'}, which is not active "
                        "(the controller deletes it once it is older than its lock TTL)",
                        f"kubectl pvc-restore locks clear {pvc} -n {ns}")
    for r in active:
        status = r.get("status") or {}
        since = status.get("phaseStartTime") or r["metadata"]["creationTimestamp"]
        text = f"restore {r['metadata']['name']} is in {status.get('phase') or 'Pending'} for {age(since)}"
        rd_name = status.get("replicationDestination")
        rd = await client.kube.get_or_none(k.REPLICATION_DESTINATIONS, rd_name, ns) if rd_name else None
        mover_status = ((rd or {}).get("status") or {}).get("latestMoverStatus") or {}
        if mover_status:
            text += f"; mover: {mover_status.get('result')}: {volsync.log_tail(mover_status.get('logs', ''), 3)}"
        if status.get("message"):
            text += f" ({status['message']})"
        report.warn(text, f"kubectl pvc-restore describe {r['metadata']['name']} -n {ns}")
    if not active and lock is None:
        report.ok("no restore is running for it")
