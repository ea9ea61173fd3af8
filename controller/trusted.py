"""What the controller accepts from a PVCRestore's status before acting on it.

Status is the controller's record, but it is an API field: whoever may write ``pvcrestores/status`` can put anything
there (the chart's ValidatingAdmissionPolicy lets only the controller write it, and the CRD's rules keep the record
append-only, but neither may be installed). So before any recorded object is scaled, patched or deleted, the record
must be one the controller itself could have written: names and namespaces valid, workloads in the restore's own
namespace, kinds from a known set for each kind of action. Anything else is skipped and reported, never acted on.
"""

from __future__ import annotations

from kubectl_pvc_restore import names, stops
from kubectl_pvc_restore.model import Owner, Stop

#: Workload kinds ScaleDown scales through /scale (more with the controller's --extra-scale-kind).
SCALABLE = frozenset({("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("apps/v1", "ReplicaSet"),
                      ("v1", "ReplicationController")})


def owner_problem(owner: Owner, namespace: str, extra_kinds: frozenset[tuple[str, str]] = frozenset()) -> str | None:
    """Why the controller must not scale ``owner`` for a restore in ``namespace``; None when it may."""
    problem = names.subdomain_problem(owner.name)
    if problem:
        return f"status.pvcOwners names {owner.kind} {owner.name!r}, which is not a valid name: {problem}"
    if owner.namespace != namespace:
        return (f"status.pvcOwners names {owner.kind} {owner.name} in namespace {owner.namespace!r}; a restore acts "
                f"only in its own namespace ({namespace})")
    if (owner.api_version, owner.kind) not in SCALABLE | extra_kinds:
        return f"status.pvcOwners names a {owner.api_version} {owner.kind}, which is not a kind this controller scales"
    if owner.replicas < 0:
        return f"status.pvcOwners gives {owner.kind} {owner.name} {owner.replicas} replicas"
    return None


def stop_problem(stop: Stop, namespace: str) -> str | None:
    """Why the controller must not act on ``stop`` for a restore in ``namespace``; None when it may."""
    problem = names.subdomain_problem(stop.name) or names.label_problem(stop.namespace)
    if problem:
        return f"status.stopped names {stop.kind} {stop.name!r} in {stop.namespace!r}: {problem}"
    kind = stops.kind_of(stop)
    if kind is None or (stop.api_version, stop.kind) not in kind.kinds:
        return (f"status.stopped asks for {stop.method!r} on a {stop.api_version} {stop.kind}, which the controller "
                "never does")
    if stop.namespace != namespace and not kind.may_live_elsewhere(stop):
        return (f"status.stopped names {stop.kind} {stop.name} in namespace {stop.namespace}; a restore acts only in "
                f"its own namespace ({namespace})")
    return None


def split_owners(recorded: list[Owner], namespace: str, extra_kinds: frozenset[tuple[str, str]] = frozenset()
                 ) -> tuple[list[Owner], list[str]]:
    """The recorded owners that may be acted on, and a note for each one that may not."""
    good, notes = [], []
    for owner in recorded:
        problem = owner_problem(owner, namespace, extra_kinds)
        if problem:
            notes.append(f"ignored: {problem}")
        else:
            good.append(owner)
    return good, notes


def split_stops(recorded: list[Stop], namespace: str) -> tuple[list[Stop], list[str]]:
    good, notes = [], []
    for stop in recorded:
        problem = stop_problem(stop, namespace)
        if problem:
            notes.append(f"ignored: {problem}")
        else:
            good.append(stop)
    return good, notes
