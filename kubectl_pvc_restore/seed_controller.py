"""The names the seed's Go controller used, for the migration from it (README, "Migrating from the seed's Go
controller"): ``doctor`` finds what it left behind, and the controller names its locks when one is in the way.

The Go controller (benfiola/homelab-images, ``pvc-restore/``: chart ``oci://ghcr.io/benfiola/homelab-images/charts/
pvc-restore``) used the API group ``pvc-restore.homelab-images.benfiola.com``, not this project's
``pvc-restore.homelab-helper.benfiola.com``: its annotation, CRD, finalizer and lock annotation are all in that group.
Its lock ConfigMaps have the same name as ours, ``pvc-restore-lock-<pvc>`` (so the two controllers never restore one
PVC at the same time), marked by an annotation instead of our label, with the data keys ``restore``, ``pvc`` and
``accessed-at``; it deleted them when its restore ended, or 10 minutes after ``accessed-at``.
"""

from __future__ import annotations

from typing import Any

from . import kube as k
from .names import is_name

GROUP = "pvc-restore.homelab-images.benfiola.com"
ANNOTATION = f"{GROUP}/restore"
LOCK_ANNOTATION = f"{GROUP}/lock"
FINALIZER = f"{GROUP}/finalizer"
CRD_NAME = f"pvcrestores.{GROUP}"
PVC_RESTORES = k.Resource(f"{GROUP}/v1", "PVCRestore", "pvcrestores")
#: The annotation a public page of the homelab's docs tells users to set (benfiola/homelab,
#: docs/docs/operations/maintenance/volume-backup-and-restore.md), with the same values. Neither controller reads it.
DOCUMENTED_ANNOTATION = "pvc-restore.homelab-helper.benfiola.com/backup"
#: Annotations of earlier instructions that ask for a restore and that this controller does not read.
UNREAD_ANNOTATIONS = (ANNOTATION, DOCUMENTED_ANNOTATION)
#: Its lock cleanup deleted a lock this long after the lock's ``accessed-at`` (reconciler/lockcleanup.go).
LOCK_TIMEOUT_MINUTES = 10


def is_lock(obj: dict[str, Any] | None) -> bool:
    """A lock ConfigMap the Go controller made (its annotation), not one of ours."""
    annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    return annotations.get(LOCK_ANNOTATION) == "true"


def lock_restore(obj: dict[str, Any]) -> str | None:
    """The name of the Go controller's PVCRestore holding a lock, when the lock names a valid one (ConfigMap data
    anyone who may write ConfigMaps can set: never shown unless it is a name)."""
    value = (obj.get("data") or {}).get("restore")
    return value if is_name(value) else None


def lock_message(pvc: str, lock: dict[str, Any]) -> str:
    """Why a restore waits on a lock of the Go controller, and what ends the wait."""
    name = lock["metadata"]["name"]
    holder = lock_restore(lock)
    by = f"its PVCRestore {holder} ({PVC_RESTORES.plural}.{GROUP})" if holder else f"a {PVC_RESTORES.plural}.{GROUP}"
    return (f"PVC {pvc} is locked by the seed's Go pvc-restore controller, for {by} (ConfigMap {name}). That "
            f"controller deletes the lock when its restore ends, or {LOCK_TIMEOUT_MINUTES} minutes after it last "
            f"looked at it; if it no longer runs, delete the ConfigMap: kubectl delete configmap {name} -n "
            f"{lock['metadata'].get('namespace', '')}")
