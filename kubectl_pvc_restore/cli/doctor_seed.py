"""``doctor``'s check of what the seed's Go controller left behind (README, "Migrating from the seed's Go
controller"; its names are in ``kubectl_pvc_restore.seed_controller``):

- its CRD, with restores it has not finished: a warning (they hold their workloads at 0 until that controller ends
  them), else one ok line with the command that removes the CRD;
- PVCs carrying its annotation, or the one a homelab docs page names (``.../backup``), neither of which this
  controller reads: a warning each, with the ``kubectl annotate`` that moves the request to this controller's
  annotation;
- its lock ConfigMaps (same name as ours): a warning each, since a restore of that PVC waits while one exists.

Nothing is reported when none of these exists (a cluster that never ran the Go controller).
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .common import Client
    from .doctor import Report


async def check_seed_controller(client: Client, report: Report, *, all_namespaces: bool) -> None:
    from .. import kube as k
    from .. import seed_controller as seed
    from .describe import permission, qualified
    from .doctor_holds import _refused, _where

    namespace = None if all_namespaces else client.namespace
    where = _where(namespace)
    try:
        crd = await client.kube.get_or_none(k.CRDS, seed.CRD_NAME)
    except k.Forbidden:
        crd = None  # the CRD check reports that permission
    if crd is not None:
        await _check_old_restores(client, report, namespace, where)

    denied: list[tuple[str, Exception, str]] = []  # one [????] finding for both lists
    try:
        pvcs, _ = await client.kube.list_versioned(k.PVCS, namespace, metadata_only=True)
    except k.Forbidden as exc:
        denied.append((f"whether PVCs {where} carry an annotation this controller does not read (the seed's Go "
                       "controller's)", exc, qualified(k.PVCS)))
        pvcs = []
    for pvc in pvcs:
        _check_annotation(report, pvc["metadata"])

    try:
        config_maps, _ = await client.kube.list_versioned(k.CONFIGMAPS, namespace, metadata_only=True)
    except k.Forbidden as exc:
        denied.append((f"whether the seed's Go controller left locks {where}", exc, qualified(k.CONFIGMAPS)))
        config_maps = []
    if denied:
        (what, first, resource), rest = denied[0], denied[1:]
        report.unknown(what, first, "list", resource, namespace,
                       details=tuple(f"not checked either: {w}: {_refused(e, r, namespace)}" for w, e, r in rest),
                       more_checks=tuple(permission(e, "list", r, namespace).can_i() for _, e, r in rest))
    for lock in config_maps:
        if seed.is_lock(lock):
            meta = lock["metadata"]
            pvc = meta["name"].removeprefix("pvc-restore-lock-")
            report.warn(f"ConfigMap {meta.get('namespace')}/{meta['name']} is a lock of the seed's Go controller: a "
                        f"restore of PVC {pvc} waits while it exists (that controller deletes it when its restore "
                        f"ends, or {seed.LOCK_TIMEOUT_MINUTES} minutes after it last looked at it)",
                        f"once that controller no longer runs: kubectl delete configmap {meta['name']} -n "
                        f"{meta.get('namespace')}")


async def _check_old_restores(client: Client, report: Report, namespace: str | None, where: str) -> None:
    from .. import kube as k
    from .. import seed_controller as seed

    kind = f"{seed.PVC_RESTORES.plural}.{seed.GROUP}"
    try:
        olds = await client.kube.list(seed.PVC_RESTORES, namespace)
    except k.NotFound:
        olds = []  # the CRD does not serve v1 (any more)
    except k.Forbidden as exc:
        report.unknown(f"whether the seed's Go controller has unfinished restores {where}", exc, "list", kind,
                       namespace)
        return
    unfinished = [o for o in olds if (o.get("status") or {}).get("phase") != "Finished"]
    if unfinished:
        names = ", ".join(f"{o['metadata'].get('namespace')}/{o['metadata']['name']} "
                          f"({(o.get('status') or {}).get('phase') or 'not started'})" for o in unfinished[:5])
        more = f" and {len(unfinished) - 5} more" if len(unfinished) > 5 else ""
        report.warn(f"{len(unfinished)} restore(s) of the seed's Go controller are not Finished {where}: {names}"
                    f"{more}. Keep that controller running until they are: the workloads they scaled down stay "
                    "down otherwise, and their locks block restores of those PVCs",
                    f"kubectl get {kind} {'-A' if namespace is None else '-n ' + namespace}")
    else:
        report.ok(f"the seed's Go controller's CRD {seed.CRD_NAME} is installed, with no unfinished restore {where};"
                  f" once its chart is uninstalled, `kubectl delete crd {seed.CRD_NAME}` removes it and the "
                  f"{len(olds)} record(s) it holds {where}")


def _check_annotation(report: Report, meta: dict[str, Any]) -> None:
    from .. import seed_controller as seed

    annotations = meta.get("annotations") or {}
    for key in seed.UNREAD_ANNOTATIONS:
        if key in annotations:
            _unread_annotation(report, meta, key, annotations[key])


def _unread_annotation(report: Report, meta: dict[str, Any], key: str, value: str) -> None:
    from .. import model
    from .. import seed_controller as seed
    from ..selector import SelectorError, parse_annotation, show

    whose = ("the seed's Go controller's annotation" if key == seed.ANNOTATION
             else "the annotation an earlier homelab page documents (no controller reads it)")
    name, ns = meta["name"], meta.get("namespace")
    move = f"kubectl annotate pvc {name} -n {ns} {key}-"
    try:
        parse_annotation(value)
    except SelectorError as exc:
        report.warn(f"PVC {ns}/{name} carries {key}={show(value)}, {whose}: this controller reads "
                    f"{model.RESTORE_ANNOTATION}, and the value is not a snapshot selector ({exc})",
                    f"{move}; then: kubectl pvc-restore start {name} -n {ns} (see --help for choosing the snapshot)")
        return
    report.warn(f"PVC {ns}/{name} carries {key}={show(value)}, {whose}: this controller reads "
                f"{model.RESTORE_ANNOTATION}, so no restore starts from it here",
                f"{move} {model.RESTORE_ANNOTATION}={shlex.quote(value)}")
