"""The TUI's first full screen with many PVCs, next to `kubectl get pvc -A` (prints numbers; asserts nothing).

    .venv/bin/python benchmarks/tui_speed.py [--pvcs 1000] [--runs 3]

Starts its own local control plane, creates the PVCs (in 4 namespaces, four `kubectl create -f -` at once), then
measures, through Textual's pilot (``app.run_test()``), from the app's start (a new app and a new connection each run,
with the modules already imported) to the PVC table holding every PVC's row, rendered; and `kubectl get pvc -A` wall
time. Goal (issue 14): within 1 s with 1,000 PVCs. Reports the medians and their ratio; then the CPU the TUI uses
while it polls every second and nothing changes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cli_speed import time_once  # noqa: E402 - wall and CPU time of one command, as cli_speed measures it

from devtools.controlplane import ControlPlane  # noqa: E402
from kubectl_pvc_restore.cli import common  # noqa: E402
from kubectl_pvc_restore.tui.app import PVCRestoreApp  # noqa: E402
from kubectl_pvc_restore.tui.data import Cluster  # noqa: E402
from kubectl_pvc_restore.tui.screens.pvcs import PVCsScreen  # noqa: E402

NAMESPACES = ("apps", "media", "db", "home")
SIZE = (160, 50)
GOAL_SECONDS = 1.0


def pvc_manifests(count: int) -> list[str]:
    """One YAML stream per namespace."""
    streams = []
    for n, ns in enumerate(NAMESPACES):
        docs = [f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"]
        docs += [f"---\napiVersion: v1\nkind: PersistentVolumeClaim\n"
                 f"metadata: {{name: data-{i:04d}, namespace: {ns}}}\n"
                 "spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n"
                 for i in range(n, count, len(NAMESPACES))]
        streams.append("".join(docs))
    return streams


def create_pvcs(cp: ControlPlane, count: int) -> float:
    started = time.perf_counter()
    errors: list[str] = []

    def create(stream: str) -> None:
        proc = cp.kubectl("create", "-f", "-", input=stream, check=False)
        if proc.returncode:
            errors.append(proc.stderr[-500:])

    threads = [threading.Thread(target=create, args=(s,)) for s in pvc_manifests(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("creating the PVCs failed: " + "\n".join(errors))
    return time.perf_counter() - started


async def first_screen(kubeconfig: str, expected: int) -> tuple[float, float]:
    """Seconds from the app's start to its PVC table holding ``expected`` rows, rendered; and the CPU seconds this
    process used meanwhile (the API server's work not included)."""
    opts = common.GlobalOptions(kubeconfig=kubeconfig)

    async def connect() -> Cluster:
        return Cluster(await common.connect(opts), None)

    app = PVCRestoreApp(connect, poll_interval=60.0)  # one load: no second poll within the measurement
    started, cpu = time.perf_counter(), time.process_time()
    async with app.run_test(size=SIZE) as pilot:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while True:
            screen = app.screen
            if isinstance(screen, PVCsScreen) and screen.table.row_count >= expected:
                break
            if loop.time() > deadline:
                raise AssertionError(f"the table did not fill: {app.status_message}")
            await asyncio.sleep(0.005)
        await pilot.pause()  # the refresh the new rows asked for is painted
        elapsed, used = time.perf_counter() - started, time.process_time() - cpu
        assert isinstance(screen, PVCsScreen) and screen.table.row_count == expected
    return elapsed, used


async def idle_cpu(kubeconfig: str, expected: int, seconds: float, interval: float) -> tuple[float, int]:
    """With the table full and polled every ``interval`` s while nothing changes: the share of one core this process
    uses over ``seconds`` (the API server's work is not counted), and the polls in that time."""
    opts = common.GlobalOptions(kubeconfig=kubeconfig)
    polls = 0

    async def connect() -> Cluster:
        cluster = Cluster(await common.connect(opts), None)
        pvcs = cluster.pvcs

        async def counted() -> list:
            nonlocal polls
            polls += 1
            return await pvcs()

        cluster.pvcs = counted  # type: ignore[method-assign]
        return cluster

    app = PVCRestoreApp(connect, poll_interval=interval)
    async with app.run_test(size=SIZE) as pilot:
        while not (isinstance(app.screen, PVCsScreen) and app.screen.table.row_count >= expected):
            await asyncio.sleep(0.01)
        await pilot.pause(interval)
        first, cpu = polls, time.process_time()
        await asyncio.sleep(seconds)
        used = time.process_time() - cpu
        return used / seconds, polls - first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pvcs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cp = ControlPlane(f"bench-tui-{os.getpid()}")
    try:
        kubeconfig = cp.start()
        env = dict(os.environ, KUBECONFIG=str(kubeconfig))
        took = create_pvcs(cp, args.pvcs)
        print(f"{args.pvcs} PVCs in {len(NAMESPACES)} namespaces created in {took:.1f}s; "
              f"load average {os.getloadavg()[0]:.2f}")
        asyncio.run(first_screen(str(kubeconfig), args.pvcs))  # warm: imports, the API server's caches
        time_once([str(cp.bin / "kubectl"), "get", "pvc", "-A"], env)
        tui, kubectl = [], []
        for _ in range(args.runs):  # interleaved, so that a burst of load hits both alike
            tui.append(asyncio.run(first_screen(str(kubeconfig), args.pvcs)))
            kubectl.append(time_once([str(cp.bin / "kubectl"), "get", "pvc", "-A"], env))
        tui_med, kubectl_med = statistics.median(t for t, _ in tui), statistics.median(t for t, _ in kubectl)
        tui_cpu, kubectl_cpu = statistics.median(c for _, c in tui), statistics.median(c for _, c in kubectl)
        print(f"{args.runs} runs each, interleaved (medians; wall times of all runs in brackets); "
              f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
        print(f"{'measure':<46} {'wall':>7} {'ratio':>6} {'CPU':>7} {'ratio':>6}")
        print(f"{'kubectl get pvc -A':<46} {kubectl_med * 1000:5.0f}ms {1:5.2f}x {kubectl_cpu * 1000:5.0f}ms "
              f"{1:5.2f}x  [{', '.join(f'{t * 1000:.0f}' for t, _ in kubectl)}]")
        print(f"{'TUI first full screen (table with every PVC)':<46} {tui_med * 1000:5.0f}ms "
              f"{tui_med / kubectl_med:5.2f}x {tui_cpu * 1000:5.0f}ms {tui_cpu / kubectl_cpu:5.2f}x  "
              f"[{', '.join(f'{t * 1000:.0f}' for t, _ in tui)}]")
        print(f"goal: within {GOAL_SECONDS:g} s with 1,000 PVCs: {tui_med / GOAL_SECONDS:.2f}x of it")
        share, polls = asyncio.run(idle_cpu(str(kubeconfig), args.pvcs, 10.0, 1.0))
        print(f"then, polled every 1 s with nothing changing: {share * 100:.0f}% of one core over 10 s "
              f"({polls} polls; the TUI process only)")
    finally:
        cp.stop(quiet=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
