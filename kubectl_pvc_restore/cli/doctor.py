"""``kubectl pvc-restore doctor [PVC]``: the usual troubleshooting steps, each finding with its fix."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from pathlib import Path
from typing import Any

import click

from ..formatting import age
from .common import INSTALL_COMMAND, KUBE_NAME, Client
from .common import command as async_command
from .complete import complete_pvcs

CONTROLLER_SELECTOR = "app.kubernetes.io/name=pvc-restore"
#: The controller's leader-election Lease (controller/leader.py LEASE_NAME; a test checks they agree). The controller
#: puts it in --leader-election-namespace, else POD_NAMESPACE / its service account's namespace, else (outside a pod)
#: its first --namespace, else default.
LEASE_NAME = "pvc-restore-controller"
#: A Lease counts as held when renewed within its leaseDurationSeconds plus this (the holder's clock and ours may
#: differ a little: renewTime is written by the holder).
LEASE_SLACK = 10.0
#: Without a pod or a live Lease, a PVCRestore whose status.lastReconciledTime is this recent shows a controller at
#: work (the controller writes it with every status update, not periodically: an idle controller writes nothing).
RECONCILED_RECENTLY = 600.0
#: Where the project lives on GitHub (Chart.yaml's home; a test checks they agree): release tags are v<version>.
PROJECT_REPOSITORY = "benfiola/pvc-restore"
CRD_PATH_IN_REPOSITORY = "charts/pvc-restore/crds/pvcrestores.yaml"
#: The chart's CRD as shipped: in the wheel (pyproject.toml force-include), or in a checkout of the repository.
CRD_FILES = (Path(__file__).resolve().parents[1] / "crds" / "pvcrestores.yaml",
             Path(__file__).resolve().parents[2] / CRD_PATH_IN_REPOSITORY)


@dataclasses.dataclass
class Finding:
    level: str  # ok, warn, fail, or unknown (a check that could not be done: a permission is missing)
    text: str
    fix: str = ""  # for unknown: how to check the permission it needs; more lines: more commands
    details: tuple[str, ...] = ()  # lines printed under the text


LABELS = {"ok": "ok", "warn": "warn", "fail": "FAIL", "unknown": "????"}


class Report:
    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def ok(self, text: str) -> None:
        self.findings.append(Finding("ok", text))

    def warn(self, text: str, fix: str = "") -> None:
        self.findings.append(Finding("warn", text, fix))

    def fail(self, text: str, fix: str = "", details: tuple[str, ...] = ()) -> None:
        self.findings.append(Finding("fail", text, fix, details))

    def unknown(self, what: str, exc: Exception, verb: str, resource: str, namespace: str | None, *,
                details: tuple[str, ...] = (), more_checks: tuple[str, ...] = ()) -> None:
        """``what`` could not be checked: the API call ``verb resource`` (in ``namespace``; None: cluster-wide) was
        forbidden. The permission named is the one the API server refused (the call may have been another one
        of the check's). ``details``: lines shown under it; ``more_checks``: further ``kubectl auth can-i``
        commands (other parts of the same check that were forbidden too)."""
        from .describe import permission

        if getattr(exc, "code", None) == 401:
            self.findings.append(Finding("unknown", f"could not check {what}: the API server did not accept your "
                                                    "credentials", "kubectl auth whoami"))
            return
        perm = permission(exc, verb, resource, namespace)
        checks = "\n".join(dict.fromkeys((perm.can_i(), *more_checks)))
        self.findings.append(Finding("unknown", f"could not check {what}: you may not {perm}", checks, details))

    def print(self) -> None:
        for f in self.findings:
            click.echo(f"[{LABELS[f.level]:<4}] {f.text}")
            for line in f.details:
                click.echo(f"       {line}")
            if f.fix:
                head = f"       {'check' if f.level == 'unknown' else 'fix'}: "
                click.echo(head + f.fix.replace("\n", "\n" + " " * len(head)))
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
@click.option("-A", "--all-namespaces", is_flag=True, help="Look for restores holding workloads, paused sources and "
              "old locks in every namespace (default: the namespace).")
@async_command
async def command(client: Client, pvc: str | None, all_namespaces: bool) -> int:
    """Check that pvc-restore can work here: the server's Kubernetes version (within the supported range), CRDs
    (the PVCRestore CRD's schema has this version's fields), the controller, storage for the restic cache; with
    PVC also its ReplicationSource and last backup, mover permissions, its lock, and any stuck restore.

    In the namespace (-A: every namespace), the states the chart's alerts watch: workloads a restore keeps at 0
    after it ended on partial data (a failure), restores holding workloads or a paused ReplicationSource for long or
    stuck in a phase, sources left paused with no restore holding them, abandoned or long-held locks; each with the
    command that ends it. Also what the seed's Go controller (API group pvc-restore.homelab-images.benfiola.com)
    left: restores it has not finished, PVCs carrying its annotation (not read here) and its locks.

    The controller counts as running when a pod labelled app.kubernetes.io/name=pvc-restore is ready (any namespace),
    or its leader-election Lease pvc-restore-controller is held and was renewed within its duration (a controller
    run anywhere with --leader-election), or a PVCRestore in the namespace was updated by a controller in the last
    10 minutes (status.lastReconciledTime); otherwise the finding lists what was looked at.

    Every check runs. One whose API call you are not allowed to make is reported as [????] "could not check WHAT:
    you may not VERB RESOURCE in namespace NS" (or cluster-wide), with the `kubectl auth can-i` command that checks
    that permission; it is never reported as a failure.

    \b
    Exit code: 1 when a problem was found ([FAIL]), even if other checks could not be done;
               3 when nothing failed but some check could not be done ([????]: the report is incomplete);
               0 when every check was done and none failed (warnings do not change it)."""
    from .doctor_holds import check_holds
    from .doctor_seed import check_seed_controller

    report = Report()
    await check_installation(client, report)
    await check_holds(client, report, all_namespaces=all_namespaces)  # what restores hold stopped (doctor_holds.py)
    await check_seed_controller(client, report, all_namespaces=all_namespaces)  # what the Go controller left
    if pvc:
        await check_pvc(client, report, pvc)
    report.print()
    return report.exit_code


async def check_installation(client: Client, report: Report) -> None:
    from .. import kube as k
    from .. import model
    from ..support import doctor_check
    from .describe import qualified

    await doctor_check(client.kube, report)  # the server's Kubernetes version against the supported range
    try:
        crds: dict[str, dict | None] | None = {
            name: await client.kube.get_or_none(k.CRDS, name) for name in
            (model.CRD_NAME, "replicationsources.volsync.backube", "replicationdestinations.volsync.backube")}
    except k.Forbidden as exc:
        report.unknown("whether the PVCRestore and volsync CRDs are installed", exc, "get", qualified(k.CRDS), None)
        crds = None
    if crds is not None:
        check_crd(report, crds[model.CRD_NAME])
        if not (crds["replicationsources.volsync.backube"] and crds["replicationdestinations.volsync.backube"]):
            report.fail("the volsync CRDs are not installed: there are no backups to restore from",
                        "install volsync (https://volsync.readthedocs.io), e.g. its Helm chart backube/volsync")
        else:
            report.ok("the volsync CRDs are installed")

    pods = await check_controller(client, report)
    cache_class = None
    for pod in pods or []:
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
        report.warn("no default StorageClass: unless the controller sets a cache storage class (its pods could not "
                    "be read, see above) or the ReplicationSource sets cacheStorageClassName, a restic restore's "
                    "cache volume never binds and the restore times out",
                    "helm upgrade ... --set config.cacheStorageClass=<class>, or mark a StorageClass default")
    else:
        report.warn("no default StorageClass and no cache storage class configured: a restic restore's cache "
                    "volume never binds and the restore times out (unless the ReplicationSource sets "
                    "cacheStorageClassName)",
                    "helm upgrade ... --set config.cacheStorageClass=<class>, or mark a StorageClass default")


# -- the PVCRestore CRD: installed, serving this version, with every field of this version ---------------------------

def check_crd(report: Report, crd: dict[str, Any] | None) -> None:
    from .. import __version__, model

    if crd is None:
        report.fail("the PVCRestore CRD is not installed", INSTALL_COMMAND)
        return
    versions = describe_versions(crd)
    if model.VERSION not in served_versions(crd)[0]:
        report.fail(f"the PVCRestore CRD is installed but does not serve {model.VERSION}, the version this plugin "
                    f"({__version__}) and its controller use ({versions})", crd_upgrade_fix())
        return
    missing = missing_fields(crd)
    if missing:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        report.fail(f"the PVCRestore CRD is older than this plugin ({__version__}): its {model.VERSION} schema lacks "
                    f"{shown}; the API server drops these fields from every PVCRestore written (Helm installs the "
                    "CRDs of a chart's crds/ directory once and never upgrades them)", crd_upgrade_fix())
    else:
        report.ok(f"the PVCRestore CRD is installed, {versions}, and its schema has every field of this version")


def served_versions(crd: dict[str, Any]) -> tuple[list[str], str | None]:
    """The versions an installed CRD serves, and its storage version."""
    versions = (crd.get("spec") or {}).get("versions") or []
    served = [v.get("name") for v in versions if v.get("served")]
    storage = next((v.get("name") for v in versions if v.get("storage")), None)
    return served, storage


def describe_versions(crd: dict[str, Any]) -> str:
    """``served v1 (storage v1)``."""
    served, storage = served_versions(crd)
    return f"served {', '.join(served) or 'no version'} (storage {storage or 'none'})"


def schema_fields(crd: dict[str, Any], version: str | None = None) -> tuple[set[str], set[str]] | None:
    """The spec and status fields in ``version``'s schema of a CRD (default: the plugin's), as paths:
    ``spec.pvc``, ``status.timeline``, ``status.timeline[].phase`` (``[]``: an array's items, ``{}``: a map's values);
    and the paths whose unknown fields the API server keeps (x-kubernetes-preserve-unknown-fields). None: the CRD has
    no such version."""
    from .. import model

    version = version or model.VERSION
    for entry in (crd.get("spec") or {}).get("versions") or []:
        if entry.get("name") == version:
            root = (entry.get("schema") or {}).get("openAPIV3Schema") or {}
            break
    else:
        return None
    paths: set[str] = set()
    kept: set[str] = set()

    def walk(node: dict[str, Any], path: str) -> None:
        if node.get("x-kubernetes-preserve-unknown-fields"):
            kept.add(path)
        for name, child in (node.get("properties") or {}).items():
            paths.add(f"{path}.{name}")
            walk(child or {}, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], path + "[]")
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            walk(extra, path + "{}")
        elif extra is True:
            kept.add(path)

    for top in ("spec", "status"):
        node = (root.get("properties") or {}).get(top)
        if node is not None:
            paths.add(top)
            walk(node, top)
        elif root.get("x-kubernetes-preserve-unknown-fields"):
            kept.add(top)
    return paths, kept


def _under(path: str, parent: str) -> bool:
    return path == parent or any(path.startswith(parent + sep) for sep in (".", "[]", "{}"))


def missing_fields(crd: dict[str, Any], expected: frozenset[str] | set[str] | None = None) -> list[str]:
    """The fields of this version (``expected``, default ``expected_fields()``) that an installed CRD's schema lacks,
    so that the API server would prune them: a missing object's own fields are not listed again. A CRD that does not
    serve the plugin's version lacks them all."""
    found = schema_fields(crd)
    expected = expected if expected is not None else expected_fields()[0]
    have, kept = found if found is not None else (set(), set())
    missing = sorted(p for p in expected if p not in have and not any(_under(p, k) for k in kept))
    return [p for p in missing if not any(q != p and _under(p, q) for q in missing)]


@functools.lru_cache(maxsize=None)
def expected_fields() -> tuple[frozenset[str], str]:
    """The spec and status fields of this version and where they were read: the chart's CRD as shipped with the
    package (in the wheel, or in a checkout), else (the krew binary carries no data files) the top-level names of
    ``model.Spec`` and ``model.Status``."""
    import yaml

    for path in CRD_FILES:
        try:
            crd = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        found = schema_fields(crd) if isinstance(crd, dict) else None
        if found is not None:
            return frozenset(found[0]), str(path)
    return model_fields(), "kubectl_pvc_restore.model"


def model_fields() -> frozenset[str]:
    """``spec.*`` and ``status.*`` as the model reads and writes them (top level only)."""
    from .. import model

    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(part.title() for part in rest)

    spec = {f"spec.{camel(f.name)}" for f in dataclasses.fields(model.Spec)}
    status = {f"status.{key}" for key in model.Status._FIELDS.values()}
    return frozenset({"spec", "status"} | spec | status)


def crd_upgrade_fix() -> str:
    """The commands that install this version's CRD over an older one. ``--force-conflicts``: Helm created the CRD (as
    field manager "helm"), and a server-side apply that changes its fields is refused without it."""
    from .. import __version__

    url = f"https://raw.githubusercontent.com/{PROJECT_REPOSITORY}/v{__version__}/{CRD_PATH_IN_REPOSITORY}"
    return (f"kubectl apply --server-side --force-conflicts -f {url}\n"
            "or from the chart you install (charts/pvc-restore in a checkout, or the chart repository's):\n"
            "helm show crds charts/pvc-restore | kubectl apply --server-side --force-conflicts -f -")


# -- the controller: a pod, the Lease, or its recent work --------------------------------------------------------

@dataclasses.dataclass
class _Denied:
    """A part of the controller check the user may not do."""

    what: str
    exc: Exception
    verb: str
    resource: str
    namespace: str | None
    note: str = ""


def _ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _name(obj: dict[str, Any]) -> str:
    return f"{obj['metadata'].get('namespace')}/{obj['metadata']['name']}"


def lease_state(lease: dict[str, Any], now: dt.datetime) -> tuple[bool, str]:
    """(held, what it says) of the controller's Lease: held when it names a holder and was renewed within its
    leaseDurationSeconds (plus ``LEASE_SLACK``) by ``now``."""
    from .. import model

    spec = lease.get("spec") or {}
    where = f"Lease {_name(lease)}"
    holder = spec.get("holderIdentity")
    duration = int(spec.get("leaseDurationSeconds") or 0)
    renewed = model.parse_time_or_none(spec.get("renewTime"))
    if not holder:
        return False, (f"{where} has no holder: released by the last controller that held it"
                       + (f" {age(spec['renewTime'], now)} ago" if renewed else ""))
    if renewed is None:
        return False, f"{where} names {holder} but was never renewed"
    elapsed = (now - renewed).total_seconds()
    if elapsed <= duration + LEASE_SLACK:
        return True, (f"{holder} holds {where}, renewed {age(spec['renewTime'], now)} ago "
                      f"(lease duration {duration}s)")
    return False, (f"{where} was last renewed by {holder} {age(spec['renewTime'], now)} ago: expired "
                   f"(lease duration {duration}s)")


def _seconds(value: float) -> str:
    return f"{int(value // 60)}m" if value >= 60 and value % 60 == 0 else f"{value:g}s"


async def _leases(client: Client, pods: list[dict] | None, denied: list[_Denied]) -> tuple[list[dict] | None, str]:
    """The controller's Leases, and where they were looked for: in every namespace; when that is forbidden, in the
    namespaces it is likely in (yours, the controller pods', the chart's usual pvc-restore, default). None: not
    readable anywhere."""
    from .. import kube as k
    from .describe import qualified

    try:
        return (await client.kube.list(k.LEASES, None, field_selector=f"metadata.name={LEASE_NAME}"),
                "any namespace")
    except k.Forbidden as exc:
        candidates = dict.fromkeys([client.namespace, *(p["metadata"]["namespace"] for p in pods or []),
                                    "pvc-restore", "default"])
        found: list[dict] = []
        looked: list[str] = []
        refused: list[str] = []
        for namespace in candidates:
            try:
                lease = await client.kube.get_or_none(k.LEASES, LEASE_NAME, namespace)
            except k.Forbidden:
                refused.append(namespace)
                continue
            looked.append(namespace)
            if lease is not None:
                found.append(lease)
        denied.append(_Denied(f"its Lease {LEASE_NAME}", exc, "list", qualified(k.LEASES), None,
                              f"; may not get it in namespace {', '.join(refused)} either" if refused else ""))
        if not looked:
            return None, ""
        return found, f"namespace {', '.join(looked)} (the ones you may read it in)"


async def check_controller(client: Client, report: Report) -> list[dict] | None:
    """Whether a pvc-restore controller runs: a ready pod with the chart's label (in any namespace); or the
    leader-election Lease held and renewed within its duration (a controller run anywhere, e.g. on a laptop, with
    --leader-election); or a PVCRestore in the namespace that a controller updated in the last
    ``RECONCILED_RECENTLY`` seconds (status.lastReconciledTime). One finding says which; when none shows one, it says
    everything that was looked at. Returns the controller pods seen (None: they could not be listed), whose
    settings the StorageClass check reads."""
    from .. import kube as k
    from .. import model
    from .describe import permission, qualified

    ns = client.namespace
    now = model.now()
    denied: list[_Denied] = []

    # 1. its pods: in every namespace; when that is forbidden, in yours
    pods_where = "all namespaces"
    try:
        pods: list[dict] | None = await client.kube.list(k.PODS, None, label_selector=CONTROLLER_SELECTOR)
    except k.Forbidden as exc:
        denied.append(_Denied(f"its pods, label {CONTROLLER_SELECTOR}", exc, "list", "pods", None))
        try:
            pods = await client.kube.list(k.PODS, ns, label_selector=CONTROLLER_SELECTOR)
            pods_where = f"namespace {ns} (the only one you may list pods in)"
        except k.Forbidden:
            pods = None
    ready = [p for p in pods or [] if _ready(p)]
    pods_note = f"controller pods (label {CONTROLLER_SELECTOR}): none in {pods_where}"

    # 2. its Lease
    leases, lease_where = await _leases(client, pods, denied)
    states = sorted((lease_state(lease, now) + ((lease.get("spec") or {}).get("renewTime") or "",)
                     for lease in leases or []), key=lambda s: s[2], reverse=True)
    live = [text for held, text, _ in states if held]
    stale = [text for held, text, _ in states if not held]
    lease_note = None
    if leases is not None:
        lease_note = (f"Lease {LEASE_NAME} (leader election): "
                      + ("; ".join(stale[:3]) + (f"; and {len(stale) - 3} more" if len(stale) > 3 else "")
                         if stale else f"none in {lease_where}"))

    # 3. its recent work in this namespace
    recent = restores_note = None
    try:
        restores: list[dict] | None = await client.kube.list(k.PVC_RESTORES, ns)
    except k.Forbidden as exc:
        denied.append(_Denied(f"the status.lastReconciledTime of the PVCRestores in namespace {ns}", exc, "list",
                              qualified(k.PVC_RESTORES), ns))
        restores = None
    except k.NotFound:
        restores, restores_note = None, f"PVCRestores in namespace {ns}: none (the PVCRestore CRD is not installed)"
    if restores is not None:
        stamped = [(when, r) for r in restores
                   for when in [model.parse_time_or_none((r.get("status") or {}).get("lastReconciledTime"))] if when]
        latest = max(stamped, key=lambda s: s[0], default=None)
        window = _seconds(RECONCILED_RECENTLY)
        if latest is not None and (now - latest[0]).total_seconds() <= RECONCILED_RECENTLY:
            recent = (f"a controller updated PVCRestore {_name(latest[1])} {age(model.format_time(latest[0]), now)} "
                      "ago (its status.lastReconciledTime)")
        elif latest is not None:
            restores_note = (f"PVCRestores in namespace {ns}: none updated by a controller in the last {window} (the "
                             f"latest status.lastReconciledTime: {latest[1]['metadata']['name']} at "
                             f"{model.format_time(latest[0])}, {age(model.format_time(latest[0]), now)} ago)")
        else:
            restores_note = (f"PVCRestores in namespace {ns}: " + ("none that a controller updated (no "
                             "status.lastReconciledTime)" if restores else "none") +
                             f" (one updated in the last {window} would show a controller at work)")

    pods_denied = next((d for d in denied if d.resource == "pods"), None)
    if ready or live or recent:
        if ready:
            text = "the controller is running and ready (" + ", ".join(_name(p) for p in ready) + ")"
            report.ok(text + (f"; {live[0]}" if live else ""))
        elif live:
            report.ok("the controller is running: " + "; ".join(live))
        else:
            report.ok(f"a controller is at work: {recent}; no controller pod or live Lease {LEASE_NAME} was found "
                      "(a controller run outside the cluster without --leader-election?)")
        if pods and not ready:
            report.warn(_not_ready(pods[0]), f"kubectl logs -n {pods[0]['metadata']['namespace']} "
                                             f"{pods[0]['metadata']['name']}")
        if pods_denied is not None:
            report.unknown(f"the controller's pods (label {CONTROLLER_SELECTOR}) and their settings",
                           pods_denied.exc, "list", "pods", None)
        return pods if pods_denied is None or pods else None

    others = tuple(note for note in (lease_note, restores_note) if note)
    if pods:  # there are pods, none ready, and nothing else shows a controller at work
        report.fail(_not_ready(pods[0]), f"kubectl logs -n {pods[0]['metadata']['namespace']} "
                                         f"{pods[0]['metadata']['name']}", others)
    elif denied:  # nothing shows a controller where it could be looked for: the rest could not be
        first, rest = denied[0], denied[1:]

        def refused(d: _Denied) -> str:
            if getattr(d.exc, "code", None) == 401:
                return "the API server did not accept your credentials"
            return f"you may not {permission(d.exc, d.verb, d.resource, d.namespace)}{d.note}"

        details = ((first.note.removeprefix("; "),) if first.note else ()) + tuple(
            f"not checked either: {d.what}: {refused(d)}" for d in rest)
        details += tuple(f"checked: {note}" for note in ((pods_note,) if pods is not None else ()) + others)
        report.unknown(f"whether the pvc-restore controller runs ({first.what})", first.exc, first.verb,
                       first.resource, first.namespace, details=details,
                       more_checks=tuple(permission(d.exc, d.verb, d.resource, d.namespace).can_i() for d in rest))
    else:
        report.fail(f"no pvc-restore controller pod runs in the cluster (label {CONTROLLER_SELECTOR}, looked in "
                    "all namespaces), and nothing else shows one at work:",
                    f"{INSTALL_COMMAND}\nor, for a controller you run outside the cluster: give it --leader-election "
                    f"(its Lease {LEASE_NAME} then shows it runs; outside a pod the Lease is in its first --namespace, "
                    "else default, or in --leader-election-namespace)", others)
    return pods if pods_denied is None or pods else None


def _not_ready(pod: dict[str, Any]) -> str:
    status = pod.get("status") or {}
    restarts = sum(c.get("restartCount", 0) for c in status.get("containerStatuses") or [])
    return f"the controller pod {_name(pod)} is not ready (phase {status.get('phase')}, {restarts} restarts)"


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
