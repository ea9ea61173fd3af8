"""The PVCRestore resource: API names, phases, and the spec/status as plain dataclasses."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
from typing import Any, ClassVar, overload

GROUP = "pvc-restore.homelab-helper.benfiola.com"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "PVCRestore"
PLURAL = "pvcrestores"
CRD_NAME = f"{PLURAL}.{GROUP}"

#: Annotation on a PVC that asks the controller for a restore ("" latest, "N" N-th previous, RFC3339 = as of).
RESTORE_ANNOTATION = f"{GROUP}/restore"
#: Finalizer that makes deleting a PVCRestore mid-flight run the Finalize cleanup first.
FINALIZER = f"{GROUP}/finalizer"
#: Label put on every object the project creates.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "pvc-restore"
#: Label on a PVCRestore naming its PVC (when the name fits a label value).
PVC_LABEL = f"{GROUP}/pvc"
#: Label on a ReplicationDestination naming the PVCRestore it belongs to.
RESTORE_LABEL = f"{GROUP}/restore"
#: On a PVCRestore: what created it (the CLI, the TUI, the annotation).
CREATED_BY_ANNOTATION = f"{GROUP}/created-by"
#: Who asked for a restore: the requesting user, set by the chart's MutatingAdmissionPolicy from the admission request
#: (on the PVC when the restore annotation is added, on a PVCRestore when it is created; the ValidatingAdmissionPolicy
#: keeps anyone else from setting or changing it). The controller copies the PVC's onto the PVCRestore it creates.
REQUESTED_BY_ANNOTATION = f"{GROUP}/requested-by"


class Phase(str, enum.Enum):
    INITIALIZE = "Initialize"
    SCALE_DOWN = "ScaleDown"
    RESTORE = "Restore"
    FINALIZE = "Finalize"
    FINISHED = "Finished"

    def __str__(self) -> str:
        return self.value


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def format_time(value: dt.datetime) -> str:
    """Kubernetes' metav1.Time form: UTC, second precision, ``Z`` (four-digit years, whatever the platform's
    strftime does with years before 1000)."""
    v = value.astimezone(dt.timezone.utc)
    return f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}Z"


_KUBE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


@overload
def parse_time(value: str) -> dt.datetime: ...
@overload
def parse_time(value: str | None) -> dt.datetime | None: ...
def parse_time(value: str | None) -> dt.datetime | None:
    """An RFC3339 time from Kubernetes or restic (fractions of any length, ``Z`` or an offset) as an aware datetime.
    python-dateutil's ISO parser, because Python 3.10's ``fromisoformat`` refuses restic's nanoseconds."""
    if not value:
        return None
    if len(value) == 20 and value[19] == "Z" and _KUBE_TIME.fullmatch(value):
        # Kubernetes' own form (metav1.Time): read without importing dateutil, which a CLI command listing ages
        # would otherwise import for this alone. Anything datetime refuses (a 24:00:00, a leap second) goes on to
        # dateutil, which decides as before.
        try:
            return dt.datetime(int(value[0:4]), int(value[5:7]), int(value[8:10]), int(value[11:13]),
                               int(value[14:16]), int(value[17:19]), tzinfo=dt.timezone.utc)
        except ValueError:
            pass
    from dateutil import parser as dateparser

    parsed = dateparser.isoparse(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


@dataclasses.dataclass(frozen=True)
class Owner:
    """A top-level workload that mounted the PVC, and the replicas it had before the restore scaled it down."""

    api_version: str
    kind: str
    name: str
    namespace: str
    replicas: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "replicas": self.replicas,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Owner:
        return cls(data["apiVersion"], data["kind"], data["name"], data["namespace"], int(data["replicas"]))

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclasses.dataclass(frozen=True)
class Stop:
    """Something other than /scale that a restore does to stop what would write the PVC (or scale it back up),
    recorded with the value to put back before it is done, and undone in Finalize.

    ``method`` names its kind in ``kubectl_pvc_restore.stops.REGISTRY`` (one module per kind: what it sets, how it is
    described, applied and undone). ``original`` is the JSON of the value to restore (``null``: it was absent).
    """

    api_version: str
    kind: str
    name: str
    namespace: str
    method: str
    original: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"apiVersion": self.api_version, "kind": self.kind, "name": self.name, "namespace": self.namespace,
                "method": self.method, "original": self.original}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stop:
        return cls(data["apiVersion"], data["kind"], data["name"], data["namespace"], data["method"],
                   data.get("original"))

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return self.api_version, self.kind, self.namespace, self.name, self.method


@dataclasses.dataclass(frozen=True)
class Spec:
    pvc: str
    previous: int | None = None
    restore_as_of: str | None = None
    #: Per-restore limit of the Restore phase (a duration such as "2h"); None: the controller's default.
    timeout: str | None = None
    #: Delete pods that mount the PVC but have no controller (otherwise they fail the restore).
    delete_bare_pods: bool = False
    #: Back the current data up before restoring, so the restore can be undone.
    safety_backup: bool = False
    #: Jobs (and CronJobs' Jobs) running on the PVC: "Wait" for them to finish, or "Fail" the restore at once.
    running_jobs: str = "Wait"
    #: A restore that fails, times out or is cancelled after the mover started writing leaves the PVC partly
    #: overwritten: "KeepStopped" (the default) keeps the workloads stopped and holds the PVC until a retry, an undo
    #: or ``kubectl pvc-restore scale-back``; "ScaleBack" brings them back at once onto the partial data.
    partial_data: str = "KeepStopped"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pvc": self.pvc}
        if self.previous is not None:
            out["previous"] = self.previous
        if self.restore_as_of is not None:
            out["restoreAsOf"] = self.restore_as_of
        if self.timeout is not None:
            out["timeout"] = self.timeout
        if self.delete_bare_pods:
            out["deleteBarePods"] = True
        if self.safety_backup:
            out["safetyBackup"] = True
        if self.running_jobs != "Wait":
            out["runningJobs"] = self.running_jobs
        if self.partial_data != "KeepStopped":
            out["partialData"] = self.partial_data
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Spec:
        previous = data.get("previous")
        return cls(
            pvc=data.get("pvc", ""),
            previous=None if previous is None else int(previous),
            restore_as_of=data.get("restoreAsOf"),
            timeout=data.get("timeout"),
            delete_bare_pods=bool(data.get("deleteBarePods", False)),
            safety_backup=bool(data.get("safetyBackup", False)),
            running_jobs=data.get("runningJobs") or "Wait",
            partial_data=data.get("partialData") or "KeepStopped",
        )

    def selector_flags(self) -> str:
        """The ``kubectl pvc-restore start`` flags that select the same snapshot (with a leading space; "" for the
        latest)."""
        if self.restore_as_of:
            return f" --as-of {self.restore_as_of}"
        if self.previous:
            return f" --previous {self.previous}"
        return ""

    def describe_selector(self) -> str:
        if self.restore_as_of:
            return f"as of {self.restore_as_of}"
        if self.previous:
            return f"{self.previous} before latest"
        return "latest"


@dataclasses.dataclass(frozen=True)
class SafetyBackup:
    """status.safetyBackup: the backup of the PVC's current data taken before the restore (spec.safetyBackup).

    ``trigger`` is the manual trigger of that backup, ``source`` the restore's own ReplicationSource that takes it
    (deleted when done). Restores of earlier versions took it through the PVC's own source and recorded that
    source's trigger (JSON) in ``original_trigger`` instead of a source of their own, to be put back in Finalize.
    """

    trigger: str | None = None
    source: str | None = None
    completed_at: str | None = None
    snapshot: str | None = None
    original_trigger: str | None = None
    #: Whether the record has the legacy originalTrigger key at all (even null: put the source's trigger back).
    legacy: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"trigger": self.trigger}
        if self.legacy:
            out["originalTrigger"] = self.original_trigger
        else:
            out["source"] = self.source
        out.update(completedAt=self.completed_at, snapshot=self.snapshot)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SafetyBackup | None:
        if not isinstance(data, dict):
            return None
        text = {key: value if isinstance(value, str) else None for key, value in data.items()}
        return cls(trigger=text.get("trigger"), source=text.get("source"), completed_at=text.get("completedAt"),
                   snapshot=text.get("snapshot"), original_trigger=text.get("originalTrigger"),
                   legacy="originalTrigger" in data)


def _key(field: dataclasses.Field) -> str:
    """The status key of a Status field: its name in camelCase, unless the field's metadata names the key."""
    if "key" in field.metadata:
        return field.metadata["key"]
    head, *rest = field.name.split("_")
    return head + "".join(word.capitalize() for word in rest)


@dataclasses.dataclass
class Status:
    phase: Phase | None = None
    #: The uid of the PVC when the restore started: a PVC deleted or replaced meanwhile is another volume.
    pvc_uid: str | None = dataclasses.field(default=None, metadata={"key": "pvcUID"})
    pvc_owners: list[Owner] | None = None
    stopped: list[Stop] | None = None
    notes: list[str] | None = None
    #: While and after taking the safety backup (spec.safetyBackup).
    safety_backup: SafetyBackup | None = None
    replication_source: str | None = None
    replication_source_paused: bool | None = None
    replication_destination: str | None = None
    trigger: str | None = None
    #: When the mover was first seen starting (the destination's lastSyncStartTime): from then on the PVC may hold
    #: partly restored data until the mover finishes.
    mover_started: str | None = None
    #: The restore ended after the mover started but before it finished: the PVC holds partial data.
    data_incomplete: bool | None = None
    #: With data_incomplete and partialData KeepStopped: when the workloads were scaled back on request
    #: (``kubectl pvc-restore scale-back``) or by deleting this restore.
    scaled_back_at: str | None = None
    #: With data_incomplete: the later restore of the same PVC that took over the held workloads (a retry, an undo).
    handed_over_to: str | None = None
    #: The held restore whose workloads (and their replicas) this one took over.
    inherited_from: str | None = None
    restored_snapshot: str | None = None
    lock_holder: str | None = None
    error: str | None = None
    message: str | None = None
    observed_generation: int | None = None
    start_time: str | None = None
    phase_start_time: str | None = None
    completion_time: str | None = None
    last_reconciled_time: str | None = None
    #: Every phase the restore entered, in order, with when: ``[{"phase": "Initialize", "at": "...Z"}, ...]``.
    timeline: list[dict[str, str]] | None = None
    conditions: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    #: Python attribute -> status key, from the fields above.
    _FIELDS: ClassVar[dict[str, str]]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for attr, key in self._FIELDS.items():
            value = getattr(self, attr)
            if attr == "phase" and value is not None:
                value = value.value
            elif attr in ("pvc_owners", "stopped") and value is not None:
                value = [o.to_dict() for o in value]
            elif attr == "safety_backup" and value is not None:
                value = value.to_dict()
            out[key] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Status:
        data = data or {}
        status = cls()
        for attr, key in cls._FIELDS.items():
            if key in data and data[key] is not None:
                setattr(status, attr, data[key])
        if status.phase is not None:
            status.phase = Phase(status.phase)
        if data.get("pvcOwners") is not None:
            status.pvc_owners = [Owner.from_dict(o) for o in data["pvcOwners"]]
        if data.get("stopped") is not None:
            status.stopped = [Stop.from_dict(o) for o in data["stopped"]]
        status.safety_backup = SafetyBackup.from_dict(data.get("safetyBackup"))
        status.conditions = list(status.conditions or [])
        return status


Status._FIELDS = {field.name: _key(field) for field in dataclasses.fields(Status)}


@dataclasses.dataclass
class PVCRestore:
    """A PVCRestore as read from the API: enough metadata to write it back safely, plus spec and status."""

    name: str
    namespace: str
    spec: Spec
    status: Status
    uid: str = ""
    resource_version: str = ""
    generation: int = 0
    creation_timestamp: str = ""
    deletion_timestamp: str | None = None
    finalizers: list[str] = dataclasses.field(default_factory=list)
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> PVCRestore:
        meta = obj.get("metadata", {})
        return cls(
            name=meta["name"],
            namespace=meta.get("namespace", ""),
            spec=Spec.from_dict(obj.get("spec") or {}),
            status=Status.from_dict(obj.get("status")),
            uid=meta.get("uid", ""),
            resource_version=meta.get("resourceVersion", ""),
            generation=int(meta.get("generation", 0) or 0),
            creation_timestamp=meta.get("creationTimestamp", ""),
            deletion_timestamp=meta.get("deletionTimestamp"),
            finalizers=list(meta.get("finalizers") or []),
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
        )

    @property
    def phase(self) -> Phase:
        return self.status.phase or Phase.INITIALIZE

    @property
    def holding(self) -> bool:
        """Finished on partial data with its workloads kept stopped, and not yet scaled back or taken over: it still
        holds the PVC's lock and the record of what to put back."""
        return self.finished and is_holding(self.status.to_dict(), self.spec.partial_data)

    @property
    def finished(self) -> bool:
        return self.status.phase == Phase.FINISHED

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def owner_reference(self, *, controller: bool = True) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": controller,
        }


def manifest(name: str, namespace: str, spec: Spec, *, labels: dict[str, str] | None = None,
             annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """The body that creates a PVCRestore."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": spec.to_dict()}


def is_holding(status: dict[str, Any], partial_data: str | None = None) -> bool:
    """See ``PVCRestore.holding``; works on the raw status (the lock cleanup and the CLI read plain dicts)."""
    return (status.get("phase") == Phase.FINISHED.value and bool(status.get("dataIncomplete"))
            and (partial_data or "KeepStopped") == "KeepStopped"
            and not status.get("scaledBackAt") and not status.get("handedOverTo"))


#: On a PVCRestore that is holding: ask the controller to scale the recorded workloads back onto the partial data.
SCALE_BACK_ANNOTATION = f"{GROUP}/scale-back"


def requested_by(meta: dict[str, Any]) -> str:
    """Who asked for the restore, as the API server recorded it (the chart's MutatingAdmissionPolicy), and how."""
    annotations = meta.get("annotations") or {}
    who = annotations.get(REQUESTED_BY_ANNOTATION) or "(not recorded: the API server has no requester policy)"
    how = annotations.get(CREATED_BY_ANNOTATION)
    return f"{who}, through {how}" if how else who


def format_time_ms(value: dt.datetime) -> str:
    """RFC3339 in UTC with milliseconds (for the timeline: phases often last less than a second)."""
    v = value.astimezone(dt.timezone.utc)
    return format_time(v)[:-1] + f".{v.microsecond // 1000:03d}Z"


def timeline(status: dict[str, Any], events: list[dict[str, Any]] | None = None
             ) -> list[tuple[str, str, float | None]]:
    """``(phase, entered at, seconds it lasted)`` for every phase the restore went through, in order; the last one's
    duration is None (it is still on, or it is Finished). From ``status.timeline``, or for restores of earlier
    versions from the controller's Events (``phase_times``)."""
    entries = [(e["phase"], e["at"]) for e in status.get("timeline") or []
               if isinstance(e, dict) and e.get("phase") in PHASE_NAMES and parse_time_or_none(e.get("at"))]
    if not entries and events:
        entered = phase_times(events)
        entries = [(p, entered[p]) for p in PHASE_NAMES if p in entered]
    result = []
    for i, (phase, at) in enumerate(entries):
        following = parse_time_or_none(entries[i + 1][1]) if i + 1 < len(entries) else None
        start = parse_time_or_none(at)
        result.append((phase, at, max(0.0, (following - start).total_seconds()) if following and start else None))
    return result


def parse_time_or_none(value: Any) -> dt.datetime | None:
    try:
        return parse_time(value) if isinstance(value, str) else None
    except (ValueError, OverflowError):
        return None


def event_order(event: dict[str, Any]) -> tuple[str, int]:
    """Sort key for Events in the order they happened: their time (second precision), then the API server's
    resourceVersion, which grows with every write (events of one second otherwise come back in name order)."""
    meta = event.get("metadata") or {}
    version = meta.get("resourceVersion") or ""
    return (event.get("lastTimestamp") or event.get("eventTime") or meta.get("creationTimestamp") or "",
            int(version) if version.isdigit() else 0)


def phase_times(events: list[dict[str, Any]]) -> dict[str, str]:
    """When the restore entered each phase, from the controller's Events on it (reason = phase name)."""
    entered: dict[str, str] = {}
    phases = {p.value for p in Phase}
    for e in sorted(events, key=event_order):
        if e.get("reason") in phases and e["reason"] not in entered:
            entered[e["reason"]] = e.get("lastTimestamp") or e["metadata"]["creationTimestamp"]
    return entered


PHASE_NAMES = tuple(p.value for p in Phase)
