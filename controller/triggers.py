"""The PVC annotation trigger: ``pvc-restore.homelab-helper.benfiola.com/restore`` -> one PVCRestore.

Exactly once, even across crashes: the controller first claims a name by writing it into a second annotation on the
PVC (conditional on the PVC's resourceVersion), then creates the PVCRestore under that name (AlreadyExists means an
earlier attempt did), then removes both annotations. Repeating any step after a crash converges on one PVCRestore.
If the value was changed after the claim, the claim is dropped and the new value gets a restore of its own.

An invalid value creates nothing and scales nothing, and is removed from the PVC (so it can never act later, e.g. a
future time that stops being in the future); a Warning Event on the PVC, reason first, and the log say why. Adding
the same bad value again gets a new Event.
"""

from __future__ import annotations

import logging
from typing import Any

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore.model import (
    CREATED_BY_ANNOTATION,
    GROUP,
    PVC_LABEL,
    REQUESTED_BY_ANNOTATION,
    RESTORE_ANNOTATION,
    manifest,
    now,
)
from kubectl_pvc_restore.selector import SelectorError, parse_annotation

from .faults import crashpoint

#: The PVCRestore name claimed for the pending annotation (the intent, written before creating it).
CLAIM_ANNOTATION = f"{GROUP}/restore-name"
#: The created-by annotation of a PVCRestore made from the annotation.
TRIGGER_CREATED_BY = f"annotation {RESTORE_ANNOTATION}"
#: On a PVCRestore made from the annotation: the annotation's exact value.
VALUE_ANNOTATION = f"{GROUP}/restore-value"

log = logging.getLogger("pvc-restore.triggers")


def wants_restore(pvc_meta: dict[str, Any]) -> bool:
    annotations = (pvc_meta.get("metadata") or {}).get("annotations") or {}
    return RESTORE_ANNOTATION in annotations or CLAIM_ANNOTATION in annotations


def new_request(pvc_meta: dict[str, Any]) -> bool:
    """A restore annotation not yet claimed: someone just asked (the claim's own write is not a new request)."""
    annotations = (pvc_meta.get("metadata") or {}).get("annotations") or {}
    return RESTORE_ANNOTATION in annotations and CLAIM_ANNOTATION not in annotations


def asked_by_someone(restore_meta: dict[str, Any]) -> bool:
    """A PVCRestore someone created (``kubectl pvc-restore start``, kubectl apply), not one the trigger made (the poll
    that made it reconciles it already)."""
    annotations = (restore_meta.get("metadata") or {}).get("annotations") or {}
    return annotations.get(CREATED_BY_ANNOTATION) != TRIGGER_CREATED_BY


def restore_name(pvc: str, seconds: int, taken: set[str]) -> str:
    """``<pvc>-<seconds>``; a PVC name too long for the suffix is cut (a PVCRestore name is at most 253 characters)."""
    base = pvc[: 253 - 11].rstrip(".-")
    while f"{base}-{seconds}" in taken:
        seconds += 1
    return f"{base}-{seconds}"


class Triggers:
    def __init__(self, kube: k.Kube) -> None:
        self.kube = kube

    async def handle(self, pvc_meta: dict[str, Any], existing: set[str]) -> dict[str, Any] | None:
        """Process one annotated PVC (metadata only). Returns the PVCRestore it created, if any. ``existing``: the
        PVCRestore names in use in its namespace; a name claimed here is added to it."""
        meta = pvc_meta["metadata"]
        ns, pvc = meta["namespace"], meta["name"]
        annotations = meta.get("annotations") or {}
        claimed = annotations.get(CLAIM_ANNOTATION)
        value = annotations.get(RESTORE_ANNOTATION)
        requested_by = annotations.get(REQUESTED_BY_ANNOTATION)
        created = None
        superseded = False
        if value is not None:
            try:
                selector = parse_annotation(value)
            except SelectorError as exc:
                selector = None
                if claimed is None:
                    await self.reject(pvc_meta, value, str(exc))
                    return None
                superseded = True  # changed to a bad value after the claim: drop the claim, refuse it next poll
            if selector is not None:
                if claimed is None:
                    claimed = restore_name(pvc, int(now().timestamp()), existing)
                    existing.add(claimed)  # before any await: a PVC handled at the same time picks another name
                    updated = await self.kube.patch(k.PVCS, pvc, ns, {"metadata": {
                        "resourceVersion": meta["resourceVersion"], "annotations": {CLAIM_ANNOTATION: claimed}}})
                    meta = updated["metadata"]
                    crashpoint("claimed-name")
                labels = {PVC_LABEL: pvc} if len(pvc) <= 63 else {}
                restore_annotations = {CREATED_BY_ANNOTATION: TRIGGER_CREATED_BY,
                                       VALUE_ANNOTATION: value}
                if requested_by:
                    restore_annotations[REQUESTED_BY_ANNOTATION] = requested_by
                body = manifest(claimed, ns, selector.spec(pvc), labels=labels, annotations=restore_annotations)
                try:
                    created = await self.kube.create(k.PVC_RESTORES, body, ns)
                    log.info("PVC %s/%s: created PVCRestore %s (%s)", ns, pvc, claimed, selector.describe())
                    crashpoint("created-restore")
                except k.AlreadyExists:
                    # An earlier attempt created it before it could clear the annotation, or the value was changed
                    # after that attempt claimed the name: then the new value is a request of its own.
                    earlier = await self.kube.get_or_none(k.PVC_RESTORES, claimed, ns)
                    earlier_value = ((earlier or {}).get("metadata", {}).get("annotations") or {}).get(
                        VALUE_ANNOTATION)
                    superseded = earlier is not None and earlier_value is not None and earlier_value != value
        if superseded:
            log.info("PVC %s/%s: the restore annotation changed after %s was claimed; it is handled as a new "
                     "request", ns, pvc, claimed)
            await self.kube.patch(k.PVCS, pvc, ns, {"metadata": {
                "resourceVersion": meta["resourceVersion"], "annotations": {CLAIM_ANNOTATION: None}}})
            return created
        await self.kube.patch(k.PVCS, pvc, ns, {"metadata": {
            "resourceVersion": meta["resourceVersion"],
            "annotations": {RESTORE_ANNOTATION: None, CLAIM_ANNOTATION: None, REQUESTED_BY_ANNOTATION: None}}})
        return created

    async def reject(self, pvc_meta: dict[str, Any], value: str, reason: str) -> None:
        """Refuse a bad value: remove it (only if it is still the value we read: a Conflict retries next poll), then
        say why, reason first. One Event per refused write, since the value is gone after it."""
        meta = pvc_meta["metadata"]
        await self.kube.patch(k.PVCS, meta["name"], meta["namespace"], {"metadata": {
            "resourceVersion": meta["resourceVersion"],
            "annotations": {RESTORE_ANNOTATION: None, REQUESTED_BY_ANNOTATION: None}}})
        message = (f"Refused restore annotation: {reason}. Nothing was restored or scaled; the annotation was "
                   f"removed (set {RESTORE_ANNOTATION} again to retry).")
        log.warning("PVC %s/%s: %s", meta["namespace"], meta["name"], message)
        await self.kube.event({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta},
                              "InvalidRestoreAnnotation", message, type_="Warning")
