"""Shared set-up of the restore benchmarks (throughput.py, manual_procedure.py): a local control plane, N PVCs each
mounted by a one-replica Deployment and backed up by a restic ReplicationSource, volsync's mover simulated with a
fixed mover time (devtools/mover_simulator.py, its own process), and the real controller process (``python -m
controller``) on the chart's RBAC with a real ServiceAccount token, talking to the API server directly or through
devtools/fault_proxy.py (fault rate 0: it only counts requests).

Not a test: nothing here asserts a time. The scripts print figures next to their comparison.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devtools.controlplane import ControlPlane  # noqa: E402
from kubectl_pvc_restore import kube as k  # noqa: E402
from kubectl_pvc_restore.model import RESTORE_ANNOTATION, parse_time  # noqa: E402
from tests.helpers import Cluster, SyncKube, stop_process, wait_for  # noqa: E402

NS = "bench"
SNAPSHOTS = [{"id": "aaaa1111", "time": "2024-05-01T10:00:00Z"}, {"id": "bbbb2222", "time": "2024-05-02T10:00:00Z"}]
CONTROLLER_AGENT = "pvc-restore-controller/"


def machine(when: str = "at the start") -> str:
    model = "unknown CPU"
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"machine: {os.cpu_count()} cores (nproc), {model}, Python {platform.python_version()}; load average "
            f"{load} {when} (cores shared with other work: times are noisy, read the ratios)")


def names(i: int) -> tuple[str, str, str, str]:
    """(PVC, Deployment, ReplicationSource, restic repository) of scenario ``i``."""
    return f"data-{i:03d}", f"app-{i:03d}", f"data-{i:03d}-backup", f"data-{i:03d}-backup-restic"


class Bench:
    """The control plane and everything on it; ``with Bench(...) as b:`` tears it all down at the end."""

    def __init__(self, name: str, *, pvcs: int, mover_seconds: float, poll_interval: str = "1s",
                 proxied: bool = True) -> None:
        self.cp = ControlPlane(f"{name}-{os.getpid()}", nodes=2)
        self.pvcs, self.mover_seconds, self.poll_interval, self.proxied = pvcs, mover_seconds, poll_interval, proxied
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        self.procs: list[subprocess.Popen] = []
        self.portal_cm: Any = None
        self.proxy: Any = None
        self.controller: subprocess.Popen | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def __enter__(self) -> Bench:
        import anyio.from_thread

        started = time.perf_counter()
        try:
            self.kubeconfig = str(self.cp.start())
        except (RuntimeError, TimeoutError, subprocess.CalledProcessError) as exc:  # busy shared machine: once more
            print(f"the control plane did not start ({str(exc)[:200]}); trying once more", flush=True)
            self.kubeconfig = str(self.cp.start())
        self.portal_cm = anyio.from_thread.start_blocking_portal()
        self.portal = self.portal_cm.__enter__()
        self.kube = SyncKube(self.portal, self.portal.call(lambda: k.Kube.connect(kubeconfig=self.kubeconfig)))
        self.kube.create(k.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        wait_for(lambda: self.kube.get_or_none(k.Resource("v1", "ServiceAccount", "serviceaccounts"), "default", NS),
                 message="the namespace's default ServiceAccount")
        self.cluster = Cluster(self.kube, NS)
        print(f"control plane {self.cp.name} up in {time.perf_counter() - started:.0f}s", flush=True)
        return self

    def __exit__(self, *exc: Any) -> None:
        for proc in reversed(self.procs):
            stop_process(proc)
        if self.proxy is not None:
            self.proxy.stop()
        if self.portal_cm is not None:
            self.portal_cm.__exit__(None, None, None)
        self.cp.stop(quiet=True)

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen:
        env = {key: value for key, value in os.environ.items() if key not in (
            "KUBECONFIG", "WATCH_NAMESPACE", "POLL_INTERVAL", "LOG_LEVEL", "WORKERS", "PVC_RESTORE_CRASH_AT")}
        with open(self.workdir / log_name, "w") as log:  # the child has its own copy of the descriptor
            proc = subprocess.Popen([sys.executable, *args], cwd=str(REPO), env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    # -- the scenario -------------------------------------------------------------------------------------------

    def setup(self) -> None:
        """N PVCs, each with a one-replica Deployment and a restic ReplicationSource; the simulator's mover time."""
        started = time.perf_counter()
        repositories = {}
        for i in range(self.pvcs):
            pvc, app, source, repository = names(i)
            self.cluster.pvc(pvc)
            self.cluster.deployment(app, replicas=1, pvc=pvc)
            self.cluster.replication_source(source, pvc)
            repositories[repository] = SNAPSHOTS
        self.cluster.simulate(snapshots=repositories, delay=self.mover_seconds)
        self._spawn(["-m", "devtools.mover_simulator", "--kubeconfig", self.kubeconfig, "--namespace", NS,
                     "--interval", "0.2"], "mover-simulator.log")
        self.wait_apps_running(timeout=300)
        print(f"{self.pvcs} PVCs, each mounted by a 1-replica Deployment and backed up by a restic ReplicationSource "
              f"(set up in {time.perf_counter() - started:.0f}s); simulated mover time {self.mover_seconds:g}s",
              flush=True)

    def wait_apps_running(self, timeout: float = 180) -> None:
        self.cluster.wait_running(self.pvcs, timeout=timeout)

    def start_controller(self, *extra: str, proxied: bool | None = None) -> None:
        """The real controller process with the chart's RBAC, through the counting proxy (or directly)."""
        from tests.chaos import FaultProxy, controller_kubeconfig, grant_controller
        from tests.helpers import identity_kubeconfig

        path = self.workdir / "controller.kubeconfig"
        if self.proxied if proxied is None else proxied:
            self.proxy = FaultProxy(self.kubeconfig, self.workdir)
            self.proxy.configure(rate=0.0)
            controller_kubeconfig(self.kube, self.cp, self.kubeconfig, NS, self.proxy.url, path)
        else:
            grant_controller(self.kube, self.cp, NS, NS)
            identity_kubeconfig(self.kube, self.kubeconfig, NS, "pvc-restore-controller", path)
        self.controller = self._spawn(
            ["-m", "controller", "--kubeconfig", str(path), "--namespace", NS, "--poll-interval", self.poll_interval,
             "--health-address", "", "--metrics-address", "", *extra], "controller.log")
        time.sleep(3)  # its first polls (the first one lists the PVCs in full)
        if self.controller.poll() is not None:
            raise RuntimeError("the controller exited:\n" + (self.workdir / "controller.log").read_text()[-3000:])

    def stop_controller(self) -> None:
        """Stop the controller (and its proxy), e.g. to start it again without the proxy."""
        if self.controller is not None:
            stop_process(self.controller)
            self.procs.remove(self.controller)
            self.controller = None
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None

    # -- where the CPU goes -------------------------------------------------------------------------------------

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by this benchmark's processes and the control plane's components."""
        pids = {"controller": self.controller.pid if self.controller else None,
                "counting proxy": self.proxy.proc.pid if self.proxy else None,
                "mover simulator": self.procs[0].pid if self.procs else None,
                "benchmark (this process)": os.getpid()}
        pid_dir = self.cp.workdir / "kwok" / "clusters" / self.cp.name / "pids"
        for path in pid_dir.glob("*.pid"):
            try:
                pids[path.stem] = int(path.read_text().strip())
            except (OSError, ValueError):
                pass
        ticks = os.sysconf("SC_CLK_TCK")
        out = {}
        for name, pid in pids.items():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, TypeError):
                continue
            out[name] = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
        return out

    def apiserver_requests(self) -> int:
        """Requests the API server has served so far, from all its clients (``apiserver_request_total`` on its
        /metrics, which does not count the reads of /metrics itself; a watch counts when it ends)."""
        text = self.cp.kubectl("get", "--raw", "/metrics").stdout
        return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("apiserver_request_total{")))

    # -- restores -----------------------------------------------------------------------------------------------

    def restores(self) -> list[dict[str, Any]]:
        return self.kube.list(k.PVC_RESTORES, NS)

    def annotate(self, pvcs: list[str]) -> float:
        """Ask for a restore of each PVC by its annotation, all at once; returns the wall time just before."""
        async def all_at_once() -> None:
            await asyncio.gather(*(self.kube.kube.patch(k.PVCS, pvc, NS, {"metadata": {"annotations": {
                RESTORE_ANNOTATION: ""}}}) for pvc in pvcs))

        started = time.time()
        self.portal.call(all_at_once)
        return started

    def wait_finished(self, pvcs: list[str], before: set[str], timeout: float) -> dict[str, dict[str, Any]]:
        """PVC -> its new PVCRestore, once each is Finished (finalizer removed); fails on an error."""
        wanted = set(pvcs)

        def done() -> dict[str, dict[str, Any]] | None:
            new = {r["spec"]["pvc"]: r for r in self.restores() if r["metadata"]["name"] not in before
                   and r["spec"]["pvc"] in wanted}
            finished = {pvc: r for pvc, r in new.items() if (r.get("status") or {}).get("phase") == "Finished"
                        and not r["metadata"].get("finalizers")}
            return finished if len(finished) == len(wanted) else None

        # Each time comes from the restore's status.timeline, not from when this loop saw it: look once a second, so
        # that the benchmark's own lists do not load the API server it measures.
        finished = wait_for(done, timeout=timeout, interval=1.0, message=f"{len(pvcs)} restores to finish")
        errors = {pvc: r["status"]["error"] for pvc, r in finished.items() if r["status"].get("error")}
        if errors:
            raise RuntimeError(f"restores failed: {errors}")
        return finished

    def restore(self, pvcs: list[str], timeout: float = 600) -> tuple[float, list[float], dict[str, list[float]]]:
        """Annotate ``pvcs`` together and wait until all are Finished. Returns (wall time from the annotation to the
        last Finished, each restore's annotation-to-Finished time, each phase's durations), from status.timeline
        (milliseconds)."""
        before = {r["metadata"]["name"] for r in self.restores()}
        started = self.annotate(pvcs)
        finished = self.wait_finished(pvcs, before, timeout)
        each = [finished_at(r) - started for r in finished.values()]
        phases = phase_durations(finished.values(), started)
        phases.update(self.mover_split(finished.values()))
        return max(each), each, phases

    def mover_split(self, restores: Any) -> dict[str, list[float]]:
        """The Restore phase split by the simulator's record: until the simulated mover started (it polls), the
        mover's run, and from its end until the controller saw it (Finalize began)."""
        import json

        from devtools import mover_simulator

        cm = self.kube.get_or_none(k.CONFIGMAPS, mover_simulator.RECORD, NS) or {}
        record = cm.get("data") or {}
        out: dict[str, list[float]] = {}
        for r in restores:
            entry = record.get(r["status"].get("replicationDestination") or "")
            if not entry:
                continue
            entry = json.loads(entry)
            at = {e["phase"]: parse_time(e["at"]).timestamp() for e in r["status"]["timeline"]}
            begun, ended = parse_time(entry["startedAt"]).timestamp(), parse_time(entry["finishedAt"]).timestamp()
            for name, value in (("of Restore: until the mover started", begun - at["Restore"]),
                                ("the mover", ended - begun),
                                ("until the controller saw it end", at["Finalize"] - ended)):
                out.setdefault(name, []).append(value)
        return out

    def counts(self) -> dict[str, int]:
        """The controller's requests counted by the proxy since its last reset: "METHOD resource" -> count."""
        stats = self.proxy.stats()
        out: dict[str, int] = {}
        for key, n in stats["requests"].items():
            agent, method, resource = key.rsplit(" ", 2)
            if agent.startswith(CONTROLLER_AGENT):
                out[f"{method} {resource}"] = out.get(f"{method} {resource}", 0) + n
        return out


def finished_at(restore: dict[str, Any]) -> float:
    entry = next(e for e in restore["status"]["timeline"] if e["phase"] == "Finished")
    return parse_time(entry["at"]).timestamp()


def phase_durations(restores: Any, annotated: float) -> dict[str, list[float]]:
    """Seconds spent in each step, per restore: "pickup" (annotation -> Initialize), then each phase until the next."""
    out: dict[str, list[float]] = {}
    for r in restores:
        timeline = [(e["phase"], parse_time(e["at"]).timestamp()) for e in r["status"]["timeline"]]
        previous = ("pickup", annotated)
        for phase, at in timeline:
            out.setdefault(previous[0], []).append(at - previous[1])
            previous = (phase, at)
    return out


def print_phases(label: str, phases: dict[str, list[float]]) -> None:
    print(f"  {label}: " + ", ".join(f"{name} {median(values):.2f}s (max {max(values):.2f}s)"
                                     for name, values in phases.items()), flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(rows: list[tuple[str, str, str, str]], header: tuple[str, str, str, str]) -> str:
    """A Markdown table (pasted as is into the README)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
