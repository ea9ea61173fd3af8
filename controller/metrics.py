"""Prometheus metrics (prometheus-client), served on the metrics address."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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

PHASES = ("Initialize", "ScaleDown", "Restore", "Finalize")


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
