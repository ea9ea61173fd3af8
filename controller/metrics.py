"""Prometheus metrics (prometheus-client), served on the metrics address.

Two kinds: counters and histograms the phase handlers update as they act (since this process started), and gauges
computed at each poll from the listed state (``controller/observed.py``: restores by phase and result, what restores
hold stopped, locks, with timestamps for "since when"), which a restarted controller reports alike. The chart's
alerting rules (``charts/pvc-restore/templates/prometheusrule.yaml``) and dashboard use these names.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .observed import State

RESTORES_STARTED = Counter("pvc_restore_restores_started", "PVCRestores that entered Initialize.")
RESTORES_FINISHED = Counter("pvc_restore_restores_finished", "PVCRestores that reached Finished, by result.",
                            ["result"])
PHASE_DURATION = Histogram("pvc_restore_phase_duration_seconds", "Time spent in each phase.", ["phase"],
                           buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600))
IN_PROGRESS = Gauge("pvc_restore_restores_in_progress", "PVCRestores not Finished, by phase (at the last poll).",
                    ["phase"])
POLL_DURATION = Histogram("pvc_restore_poll_duration_seconds", "Duration of one poll (the LISTs and dispatch).",
                          buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
API_ERRORS = Counter("pvc_restore_api_errors", "Failed Kubernetes API calls, by verb and HTTP status "
                     "(0: no answer).", ["verb", "status"])
LEADER = Gauge("pvc_restore_leader", "1 while this replica holds the leader lease (or election is off).")
FINALIZE_BLOCKED = Gauge("pvc_restore_finalize_blocked", "PVCRestores whose Finalize the API server refused (HTTP "
                         "401/403) at the last attempt: their workloads stay scaled down until that is fixed "
                         "(see their FinalizeBlocked events).")

LAST_POLL = Gauge("pvc_restore_last_poll_success_timestamp_seconds", "When this replica last finished a poll whose "
                  "lists all answered (Unix time; 0: never). Only the leader polls.")

PHASES = ("Initialize", "ScaleDown", "Restore", "Finalize")


class StateCollector(Collector):
    """The gauges computed from one poll's lists (``observed.State``), published by the replica that polls. A replica
    that does not lead (or has not polled yet) exports these names with no samples, so that across replicas the
    leader's are the only values."""

    def __init__(self) -> None:
        self._state: State | None = None
        self._lock = threading.Lock()

    def publish(self, state: State | None) -> None:
        with self._lock:
            self._state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            state = self._state

        def family(name: str, doc: str, labels: list[str], samples: Any) -> GaugeMetricFamily:
            metric = GaugeMetricFamily(name, doc, labels=labels)
            for key, value in (samples or {}).items():
                metric.add_metric(list(key) if isinstance(key, tuple) else [key] if labels else [], value)
            return metric

        def single(value: float | None) -> dict | None:
            return None if value is None else {(): value}

        s = state
        yield family("pvc_restore_restores", "PVCRestores at the last poll, by phase and result (result none until "
                     "Finished; Finished ones are kept as history, see --history-max-age/--history-max-count).",
                     ["phase", "result"], s and s.restores)
        yield family("pvc_restore_oldest_phase_start_timestamp_seconds", "When the unfinished PVCRestore that has "
                     "been in its phase longest entered it, by phase (Unix time; a restore queued behind another "
                     "restore of its PVC is not counted). No sample: no restore in that phase.", ["phase"],
                     s and s.oldest_in_phase)
        yield family("pvc_restore_oldest_restore_start_timestamp_seconds", "When the oldest unfinished PVCRestore "
                     "started (Unix time). No sample: none is running.", [], s and single(s.oldest_restore_start))
        yield family("pvc_restore_last_failed_restore_timestamp_seconds", "When the newest failed PVCRestore still "
                     "listed finished (Unix time). No sample: none.", [], s and single(s.last_failure))
        yield family("pvc_restore_workloads_held", "Workloads a restore keeps scaled to 0 (recorded with replicas > "
                     "0), by reason: restore_in_progress, or partial_data (the restore ended on partial data and "
                     "keeps them stopped until a retry, undo or scale-back).", ["reason"], s and s.workloads_held)
        yield family("pvc_restore_workloads_held_since_timestamp_seconds", "Since when the longest-held of those "
                     "workloads is held (the restore's ScaleDown; Unix time), by reason. No sample: none held.",
                     ["reason"], s and s.workloads_held_since)
        yield family("pvc_restore_replication_sources_paused", "ReplicationSources a restore keeps paused (no backup "
                     "is taken), by reason; sources paused before the restore are not counted.", ["reason"],
                     s and s.sources_paused)
        yield family("pvc_restore_replication_sources_paused_since_timestamp_seconds", "Since when the longest-paused "
                     "of those sources is paused (Unix time), by reason. No sample: none.", ["reason"],
                     s and s.sources_paused_since)
        yield family("pvc_restore_stops", "Objects a restore keeps stopped besides scaling (status.stopped), by "
                     "method: nodeSelector (DaemonSet), suspend (CronJob, Flux), argoAutomated, kedaPause, "
                     "pvcRetention.",
                     ["method"], s and s.stops)
        yield family("pvc_restore_locks", "Restore lock ConfigMaps, by holder: active, holding (partial data), "
                     "finished or gone (abandoned: deleted after --lock-ttl).", ["holder"], s and s.locks)
        yield family("pvc_restore_oldest_lock_acquired_timestamp_seconds", "When the oldest lock was acquired, by "
                     "holder (Unix time). No sample: no lock.", ["holder"], s and s.oldest_lock)


STATE = StateCollector()
REGISTRY.register(STATE)


def publish_state(state: State | None) -> None:
    """The state of the last complete poll (None: this replica does not poll, so it reports none)."""
    STATE.publish(state)


def record_api_error(method: str, status: int | None) -> None:
    API_ERRORS.labels(verb=method.lower(), status=str(status or 0)).inc()


def set_in_progress(phases: list[str]) -> None:
    for phase in PHASES:
        IN_PROGRESS.labels(phase=phase).set(sum(1 for p in phases if p == phase))


def serve(address: str) -> None:
    """Serve /metrics in a daemon thread; address is ``host:port`` (``:8080`` = all interfaces)."""
    from prometheus_client import start_http_server

    host, port = split_address(address)
    start_http_server(port, addr=host or "0.0.0.0")


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not _ or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{address!r} is not host:port (for example :8080 or 127.0.0.1:8080)")
    return host.strip("[]"), int(port)
