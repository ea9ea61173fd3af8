"""What a restore would do, before it is started: the CLI's ``start --dry-run`` and the TUI's confirmation dialog
show the same preview, built here once (the workloads and stops, the options' effects, the source, the
ReplicationDestination that would be created, and what would make the restore fail)."""

from __future__ import annotations

import dataclasses
from typing import Any

from . import kube as k
from . import plan, stops, volsync
from .model import Owner, Spec, Stop
from .selector import Selector


@dataclasses.dataclass
class Preview:
    namespace: str
    pvc: str
    spec: Spec
    owners: list[Owner] = dataclasses.field(default_factory=list)
    stops: list[Stop] = dataclasses.field(default_factory=list)
    #: Pods of running Jobs the restore waits for; pods that mount the PVC now.
    jobs: list[str] = dataclasses.field(default_factory=list)
    pods: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    #: The PVC's ReplicationSource (None: it has none, see problems).
    source: dict[str, Any] | None = None
    #: The ReplicationDestination that would be created (None: it could not be built, see problems).
    destination: dict[str, Any] | None = None
    #: Why the restore would fail; worth knowing but not fatal (e.g. the mover may lack permissions).
    problems: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)

    @property
    def selector(self) -> Selector:
        return Selector(previous=self.spec.previous or None, restore_as_of=self.spec.restore_as_of)

    @property
    def source_name(self) -> str | None:
        return self.source["metadata"]["name"] if self.source else None


async def build(kube: k.Kube, namespace: str, pvc: str, spec: Spec) -> Preview:
    """Read what a restore of ``pvc`` with ``spec`` would touch; changes nothing."""
    preview = Preview(namespace, pvc, spec)
    try:
        preview.source = await plan.find_source(kube, namespace, pvc)
    except plan.SourceError as exc:
        preview.problems.append(str(exc))
    workloads = await plan.plan_workloads(kube, namespace, pvc, spec=spec)
    preview.owners, preview.stops, preview.jobs = workloads.owners, workloads.stops, workloads.jobs
    preview.pods, preview.notes = workloads.pods, workloads.notes
    preview.problems += workloads.problems
    if preview.source is not None:
        warning = await plan.mover_permission_warning(kube, namespace, preview.source)
        if warning:
            preview.warnings.append(warning)
        try:
            volsync.check_restorable(preview.source, preview.selector)
            preview.destination = volsync.destination_manifest(
                preview.source, restore_name=f"{pvc}-<time>", namespace=namespace, pvc=pvc,
                selector=preview.selector, trigger="<unique>")
        except volsync.VolsyncError as exc:
            preview.problems.append(str(exc))
    return preview


def lines(preview: Preview) -> list[str]:
    """The preview in words (plain text: the TUI escapes it for its markup)."""
    spec = preview.spec
    out = ["Workloads to scale to 0 and back:"]
    out += [f"  {o.kind} {o.name}: {o.replicas} replica(s)" for o in preview.owners] or ["  (none)"]
    if preview.stops:
        out.append("Also stopped for the restore and put back after:")
        out += [f"  {stops.describe(stop)}" for stop in preview.stops]
    if preview.jobs:
        out.append(f"Running Jobs waited for: {', '.join(preview.jobs)}")
    if spec.safety_backup:
        out.append("Safety backup: the current data is backed up first (undo with kubectl pvc-restore undo)")
    if spec.delete_bare_pods:
        out.append("Pods without a controller that mount the PVC are deleted (they do not come back)")
    if spec.running_jobs == "Fail":
        out.append("Fails at once if Jobs run on the PVC")
    if spec.partial_data == "ScaleBack":
        out.append("If the mover fails half-way, the workloads come back onto the partial data")
    if spec.timeout:
        out.append(f"The mover may copy for {spec.timeout}")
    out += [f"Note: {note}" for note in preview.notes]
    if preview.pods:
        out.append(f"Pods mounting the PVC now: {', '.join(preview.pods)}")
    if preview.source is not None:
        try:
            mover = volsync.mover_of(preview.source)
        except volsync.VolsyncError:
            mover = "?"
        out.append(f"ReplicationSource: {preview.source_name} (mover {mover}, paused during the restore)")
    else:
        out.append("ReplicationSource: -")
    return out
