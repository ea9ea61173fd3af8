"""What a waiting restore waits for, and the short watch that notices it.

A phase that has to wait (pods still stopping, the mover still running) would otherwise look again only at the next
poll whose list was asked for after it stopped: up to two poll intervals later per wait. Instead the handler names
what it waits for (``Wake``: a resource, the resourceVersion it read it at, and which change matters), and the
reconcile task follows that resource's changes for at most one poll interval (a watch from that resourceVersion,
never a long-lived one). On the change it reconciles again at once, reading everything afresh: the watch only says
*when* to look, never *what* is true, so a missed or failed watch only means the next poll looks, as before.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from typing import Any, Callable, Iterable

from kubectl_pvc_restore import kube as k

log = logging.getLogger("pvc-restore.wake")
CHANGES = frozenset({"ADDED", "MODIFIED", "DELETED"})


@dataclasses.dataclass(frozen=True)
class Wake:
    res: k.Resource
    namespace: str | None
    #: The resourceVersion the handler read at: changes after it count.
    version: str
    #: Only this object (a field selector on its name); None: any object of the namespace.
    name: str | None = None
    #: The kinds of change that count: ADDED, MODIFIED, DELETED.
    kinds: frozenset[str] = CHANGES
    #: Only changes of these objects count (pods being waited for to go away); empty: of any.
    names: frozenset[str] = frozenset()
    #: And only objects (their metadata) this accepts.
    accept: Callable[[dict[str, Any]], bool] | None = None

    def matters(self, kind: str, obj: dict[str, Any]) -> bool:
        if kind not in self.kinds:
            return False  # BOOKMARK among others
        if self.names and (obj.get("metadata") or {}).get("name") not in self.names:
            return False
        return self.accept is None or self.accept(obj)


def gone(res: k.Resource, namespace: str, version: str, names: Iterable[str]) -> Wake:
    """Wake when one of these objects is deleted."""
    return Wake(res, namespace, version, kinds=frozenset({"DELETED"}), names=frozenset(names))


async def woken(kube: k.Kube, wake: Wake, seconds: float) -> bool:
    """Follow ``wake``'s resource for at most ``seconds``: True as soon as a change that matters arrives, False when
    none did (or the watch failed: the next poll looks instead)."""
    if not wake.version or seconds <= 0:
        return False

    async def follow() -> bool:
        async for kind, obj in kube.watch(wake.res, wake.namespace, wake.version, metadata_only=True,
                                          field_selector=f"metadata.name={wake.name}" if wake.name else None,
                                          timeout_seconds=max(1, math.ceil(seconds))):
            if wake.matters(kind, obj):
                return True
        return False

    try:
        return await asyncio.wait_for(follow(), seconds)
    except asyncio.TimeoutError:
        return False
    except k.Forbidden as exc:  # an older chart's RBAC, without watch: say once why restores are slower
        if exc.code == 401:  # credentials, not RBAC (``watch`` loaded them again if it could)
            log.info("not following %s in %s (%s): the next poll looks instead", wake.res.plural, wake.namespace, exc)
            return False
        if wake.res.plural not in _refused:
            _refused.add(wake.res.plural)
            log.warning("may not watch %s (%s): restores waiting for them look again at each poll instead of at "
                        "once; the chart's RBAC of this version grants watch", wake.res.plural, exc)
        return False
    except k.KubeError as exc:  # 410 Gone, a lost connection
        log.debug("not following %s in %s (%s): the next poll looks instead", wake.res.plural, wake.namespace, exc)
        return False


#: Resources whose watch was refused (warned about once per process).
_refused: set[str] = set()
