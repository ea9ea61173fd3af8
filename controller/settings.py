"""Controller settings (filled from flags / environment by __main__)."""

from __future__ import annotations

import dataclasses

from kubectl_pvc_restore.names import check_namespace


@dataclasses.dataclass(frozen=True)
class Settings:
    kubeconfig: str | None = None
    context: str | None = None
    #: Convenience for one namespace: ``Settings(namespace="a")`` is ``Settings(namespaces=("a",))``. Only an input:
    #: the controller reads ``namespaces``.
    namespace: str | None = None
    #: Only these namespaces (empty: all namespaces). Limited, the controller lists per namespace and never needs
    #: a cluster-wide permission (Roles in these namespaces are enough).
    namespaces: tuple[str, ...] = ()
    #: Seconds between polls; phases that need no waiting run back to back within one poll.
    poll_interval: float = 5.0
    #: Between polls the PVCs' changes are followed (a watch bounded by the wait); they are listed in full at the
    #: start, after any error and at least this often (seconds).
    relist_interval: float = 600.0
    #: Seconds the mover may restore (from when it started) before the restore fails (spec.timeout overrides).
    restore_timeout: float = 86400.0
    #: Seconds the Restore phase waits for the mover to start (nothing is written before) before it fails.
    mover_start_timeout: float = 600.0
    #: Seconds ScaleDown may wait for the pods that mount the PVC to go away.
    scale_down_timeout: float = 300.0
    #: A lock whose holder is gone or Finished is deleted once it is this old (seconds).
    lock_stale_after: float = 300.0
    #: Overrides the restic cache StorageClass of every ReplicationDestination the controller creates.
    cache_storage_class: str | None = None
    #: Finished restores are deleted once older than this (seconds; 0 keeps them).
    history_max_age: float = 7 * 86400.0
    #: ... and beyond the newest this many per PVC (0 keeps them all).
    history_max_count: int = 10
    #: Where Argo CD Applications live (for workloads tracked by Argo CD).
    argocd_namespace: str = "argocd"
    #: Workload kinds scaled besides the built-in ones: {("argoproj.io/v1alpha1", "Rollout")}.
    extra_scale_kinds: frozenset = frozenset()
    #: HTTP timeout of every API call (seconds).
    api_timeout: float = 15.0
    #: A permission refused (403) fails a restore outside Finalize only once that restore has been refused for this
    #: long (seconds): an API server that has just started refuses requests until its authorizer has loaded RBAC.
    forbidden_grace: float = 10.0
    #: At most this many restores reconcile at the same time.
    workers: int = 16
    #: Seconds between two FinalizeBlocked Warning Events of one restore whose Finalize the API server refuses.
    finalize_blocked_event_interval: float = 60.0
    #: host:port of /healthz and /readyz ("" disables).
    health_address: str = ":8081"
    #: host:port of /metrics ("" disables).
    metrics_address: str = ":8080"
    #: Only the replica holding the Lease acts.
    leader_election: bool = False
    leader_election_namespace: str | None = None
    leader_election_id: str | None = None
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if isinstance(self.namespaces, str):
            raise TypeError("namespaces must be a sequence of namespace names, not a string")
        wanted = tuple(self.namespaces or ())
        if self.namespace:
            if wanted and self.namespace not in wanted:
                raise ValueError(f"namespace {self.namespace!r} is not one of namespaces {wanted!r}")
            wanted = wanted or (self.namespace,)
        # Each name is checked (it goes into API paths); duplicates are dropped, the order kept.
        object.__setattr__(self, "namespaces", tuple(dict.fromkeys(check_namespace(n) for n in wanted)))

    @property
    def scopes(self) -> tuple[str | None, ...]:
        """What each poll lists in: every watched namespace, or ``None`` once for all namespaces."""
        return self.namespaces or (None,)

    def describe_scope(self) -> str:
        if not self.namespaces:
            return "all namespaces"
        return ("namespace " if len(self.namespaces) == 1 else "namespaces ") + ", ".join(self.namespaces)
