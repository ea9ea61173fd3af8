"""What every kind of stop is: a value in an object that the restore sets (recording the value to put back first)
and puts back in Finalize. Each kind lives in its own module of this package and registers one ``StopKind``."""

from __future__ import annotations

import json
from typing import Any

from .. import kube as k
from ..model import Stop


def dump_original(value: Any) -> str | None:
    """The JSON a Stop records as the value to put back (``None``: the field was absent)."""
    return None if value is None else json.dumps(value)


async def resource(kube: k.Kube, api_version: str, kind: str) -> k.Resource | None:
    return k.KNOWN.get((api_version, kind)) or await kube.resource_for(api_version, kind, scalable=False)


class StopKind:
    """One kind of stop, named by the ``method`` a Stop records in status.stopped.

    A kind reads one value of the live object (``current``), sets it to ``stopped_value`` in ``apply`` and back to
    the recorded original in ``undo``, each only when the live value differs, so repeating either is a no-op.
    """

    #: The name recorded in status.stopped[].method (stored in the cluster: never rename one).
    method: str = ""
    #: The (apiVersion, kind) pairs this stop is ever done to; a recorded stop naming another is refused.
    kinds: frozenset[tuple[str, str]] = frozenset()
    #: Objects of these kinds may live in another namespace than the restore's (GitOps owners).
    elsewhere: bool = False
    #: Apply order: what would fight the restore first (GitOps 0, autoscalers and retention 1), then what runs
    #: (2), deletions last (3). Undo runs in reverse.
    order: int = 2
    #: False: undo does nothing (a deleted pod does not come back), and the object need not exist any more.
    puts_back: bool = True

    def priority(self, stop: Stop) -> int:
        return self.order

    def may_live_elsewhere(self, stop: Stop) -> bool:
        return self.elsewhere

    def describe(self, stop: Stop) -> str:
        raise NotImplementedError

    def current(self, obj: dict[str, Any]) -> Any:
        raise NotImplementedError

    def stopped_value(self, stop: Stop, restore_name: str) -> Any:
        raise NotImplementedError

    async def write(self, kube: k.Kube, res: k.Resource, stop: Stop, value: Any) -> None:
        raise NotImplementedError

    async def apply(self, kube: k.Kube, res: k.Resource, obj: dict[str, Any], stop: Stop, restore_name: str) -> None:
        wanted = self.stopped_value(stop, restore_name)
        if self.current(obj) != wanted:
            await self.write(kube, res, stop, wanted)

    async def undo(self, kube: k.Kube, res: k.Resource, obj: dict[str, Any], stop: Stop) -> None:
        original = None if stop.original is None else json.loads(stop.original)
        if self.current(obj) != original:
            await self.write(kube, res, stop, original)


def spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("spec") or {}
