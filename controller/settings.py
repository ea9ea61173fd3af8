"""Controller settings (filled from flags / environment by __main__)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Settings:
    kubeconfig: str | None = None
    context: str | None = None
    #: Only this namespace (None: all namespaces).
    namespace: str | None = None
    #: Seconds between polls; phases that need no waiting run back to back within one poll.
    poll_interval: float = 5.0
    #: Seconds the Restore phase may wait for the mover before the restore fails.
    restore_timeout: float = 300.0
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
    #: HTTP timeout of every API call (seconds).
    api_timeout: float = 15.0
    #: At most this many restores reconcile at the same time.
    workers: int = 16
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
