"""The PVC annotation trigger: ``pvc-restore.homelab-helper.benfiola.com/restore`` -> one PVCRestore.

Exactly once, even across crashes: the controller first claims a name by writing it into a second annotation on the
PVC (conditional on the PVC's resourceVersion), then creates the PVCRestore under that name (AlreadyExists means an
earlier attempt did), then removes both annotations. Repeating any step after a crash converges on one PVCRestore.
An invalid value creates nothing; it is reported once per value by a Warning Event on the PVC and in the log.
"""

from __future__ import annotations

import logging
from typing import Any

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore.model import GROUP, RESTORE_ANNOTATION, PVC_LABEL, manifest, now
from kubectl_pvc_restore.selector import SelectorError, parse_annotation

from .faults import crashpoint

#: The PVCRestore name claimed for the pending annotation (the intent, written before creating it).
CLAIM_ANNOTATION = f"{GROUP}/restore-name"
#: On a PVCRestore: what created it.
CREATED_BY_ANNOTATION = f"{GROUP}/created-by"

log = logging.getLogger("pvc-restore.triggers")


def wants_restore(pvc_meta: dict[str, Any]) -> bool:
    annotations = (pvc_meta.get("metadata") or {}).get("annotations") or {}
    return RESTORE_ANNOTATION in annotations or CLAIM_ANNOTATION in annotations


def restore_name(pvc: str, seconds: int, taken: set[str]) -> str:
    while f"{pvc}-{seconds}" in taken:
        seconds += 1
    return f"{pvc}-{seconds}"


class Triggers:
    def __init__(self, kube: k.Kube) -> None:
        self.kube = kube
        self.reported: set[tuple[str, str]] = set()  # (pvc uid, bad value): warn once, not every poll

    async def handle(self, pvc_meta: dict[str, Any], existing: set[str]) -> dict[str, Any] | None:
        """Process one annotated PVC (metadata only). Returns the PVCRestore it created, if any."""
        meta = pvc_meta["metadata"]
        ns, pvc = meta["namespace"], meta["name"]
        annotations = meta.get("annotations") or {}
        claimed = annotations.get(CLAIM_ANNOTATION)
        value = annotations.get(RESTORE_ANNOTATION)
        created = None
        if value is not None:
            try:
                selector = parse_annotation(value)
            except SelectorError as exc:
                if claimed is None:
                    await self.reject(pvc_meta, value, str(exc))
                    return None
                selector = None
            if selector is not None:
                if claimed is None:
                    claimed = restore_name(pvc, int(now().timestamp()), existing)
                    updated = await self.kube.patch(k.PVCS, pvc, ns, {"metadata": {
                        "resourceVersion": meta["resourceVersion"], "annotations": {CLAIM_ANNOTATION: claimed}}})
                    meta = updated["metadata"]
                    crashpoint("claimed-name")
                labels = {PVC_LABEL: pvc} if len(pvc) <= 63 else {}
                body = manifest(claimed, ns, selector.spec(pvc), labels=labels,
                                annotations={CREATED_BY_ANNOTATION: f"annotation {RESTORE_ANNOTATION}={value!r}"})
                try:
                    created = await self.kube.create(k.PVC_RESTORES, body, ns)
                    log.info("PVC %s/%s: created PVCRestore %s (%s)", ns, pvc, claimed, selector.describe())
                    crashpoint("created-restore")
                except k.AlreadyExists:
                    pass  # an earlier attempt created it before it could clear the annotation
        await self.kube.patch(k.PVCS, pvc, ns, {"metadata": {
            "resourceVersion": meta["resourceVersion"],
            "annotations": {RESTORE_ANNOTATION: None, CLAIM_ANNOTATION: None}}})
        return created

    async def reject(self, pvc_meta: dict[str, Any], value: str, reason: str) -> None:
        meta = pvc_meta["metadata"]
        key = (meta.get("uid", ""), value)
        if key in self.reported:
            return
        self.reported.add(key)
        message = f"ignoring {RESTORE_ANNOTATION}={value!r}: {reason}. Nothing was restored or scaled."
        log.warning("PVC %s/%s: %s", meta["namespace"], meta["name"], message)
        await self.kube.event({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta},
                              "InvalidRestoreAnnotation", message, type_="Warning")
