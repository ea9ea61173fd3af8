"""``/healthz`` (the loop is alive: it completed a poll, or an election round, recently) and ``/readyz``
(connected to the API server and, with leader election, leading or standing by healthily; and no restore's Finalize
refused by the API server, which would leave its workloads scaled down)."""

from __future__ import annotations

import http.server
import threading
import time
from typing import Callable

from .metrics import split_address


class Health:
    """State the loop updates and the HTTP thread reads (plain floats and bools: no locking needed)."""

    def __init__(self, stale_after: float) -> None:
        self.stale_after = stale_after
        self.last_loop = 0.0      # monotonic time of the last completed poll or election round
        self.last_api_ok = 0.0    # monotonic time of the last successful API call
        self.election_ok = True   # False when election is on and the last lease read/write failed
        #: "namespace/name: what was refused" of each restore whose Finalize the API server refuses (401/403);
        #: replaced as a whole by the loop
        self.finalize_blocked: tuple[str, ...] = ()

    def alive(self) -> tuple[bool, str]:
        age = time.monotonic() - self.last_loop
        if self.last_loop and age <= self.stale_after:
            return True, f"ok: last loop {age:.1f}s ago"
        return False, "no completed loop yet" if not self.last_loop else f"last loop {age:.1f}s ago"

    def ready(self) -> tuple[bool, str]:
        age = time.monotonic() - self.last_api_ok
        if not self.last_api_ok or age > self.stale_after:
            return False, "not connected to the Kubernetes API server"
        if not self.election_ok:
            return False, "leader election is failing"
        blocked = self.finalize_blocked
        if blocked:
            return False, (f"Finalize blocked (refused by the API server) for {len(blocked)} restore(s); their "
                           "workloads stay scaled down until it is fixed: " + "; ".join(blocked))
        return True, "ok"


def serve(address: str, health: Health) -> http.server.ThreadingHTTPServer:
    checks: dict[str, Callable[[], tuple[bool, str]]] = {"/healthz": health.alive, "/livez": health.alive,
                                                          "/readyz": health.ready}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            check = checks.get(self.path.split("?")[0])
            if check is None:
                self.send_error(404)
                return
            ok, text = check()
            body = (text + "\n").encode()
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # probes every few seconds: keep the log quiet
            pass

    host, port = split_address(address)
    server = http.server.ThreadingHTTPServer((host or "0.0.0.0", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
