"""What an idle poll costs as PVCs grow, next to the full list it replaces and the raw HTTP floor, on one local
control plane (prints numbers side by side; asserts nothing). Read the ratios, not the times: the machine is small.

    .venv/bin/python benchmarks/poll_cost.py [--pvcs 10000] [--polls 10] [--pickups 10]

For N PVCs (metadata only, in one namespace, created first):
- raw GET floor: one plain HTTPS GET of the metadata-only PVC list (httpx, the bytes read, no parsing kept);
- full list: the metadata list paged as kubectl pages it, parsed whole; and as the controller reads it (one request,
  only the metadata it keeps decoded, with msgspec): what a poll did before changes were followed, and what the first
  poll and every relist still do;
- idle poll: Controller.poll() after the first, when nothing changed (the PVCs come from the followed changes;
  the locks and PVCRestores are still listed);
- pickup: annotation written -> PVCRestore created, with --poll-interval 1s, median and worst;
- the controller process' RSS after the polls (this process: the list held in memory).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.loop import Controller  # noqa: E402
from controller.settings import Settings  # noqa: E402
from controller.watched_list import KEPT_METADATA  # noqa: E402
from devtools.controlplane import ControlPlane  # noqa: E402
from kubectl_pvc_restore import kube as k  # noqa: E402
from kubectl_pvc_restore.model import RESTORE_ANNOTATION  # noqa: E402

NS = "bench"


def pvc(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": NS},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}


async def create_pvcs(kube: k.Kube, n: int) -> None:
    have = len(await kube.list(k.PVCS, NS, metadata_only=True))
    gate = asyncio.Semaphore(32)

    async def one(i: int) -> None:
        async with gate:
            try:
                await kube.create(k.PVCS, pvc(f"pvc-{i:06d}"), NS)
            except k.AlreadyExists:
                pass

    await asyncio.gather(*(one(i) for i in range(have, n)))


async def raw_get(kube: k.Kube) -> tuple[float, int]:
    started = time.perf_counter()
    async with kube.api.call_api("GET", version="", base="/api/v1/namespaces/" + NS, url="persistentvolumeclaims",
                                 headers={"Accept": k.METADATA_LIST}) as response:
        size = len(response.content)
    return time.perf_counter() - started, size


def controller_rss(kubeconfig: Path) -> tuple[float, float]:
    """Run the real controller on the namespace for a few polls; its resident memory then and at its peak (MB)."""
    import subprocess

    proc = subprocess.Popen([sys.executable, "-m", "controller", "--kubeconfig", str(kubeconfig), "--namespace", NS,
                             "--poll-interval", "1", "--health-address", "", "--metrics-address", ""],
                            cwd=Path(__file__).resolve().parents[1], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(8)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def timed(fn, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - started)
    return times


async def pickup(kube: k.Kube, runs: int) -> list[float]:
    """Annotation -> PVCRestore created, by a controller polling every second in this process."""
    ctl = Controller(kube, Settings(namespace=NS, poll_interval=1.0))
    stop = asyncio.Event()
    task = asyncio.create_task(ctl.run(stop))
    await asyncio.sleep(2)
    latencies = []
    try:
        for i in range(runs):
            name = f"pvc-{i:06d}"
            before = {r["metadata"]["name"] for r in await kube.list(k.PVC_RESTORES, NS)}
            await asyncio.sleep(0.37 * i % 1.0)  # spread the writes over the poll cycle
            started = time.perf_counter()
            await kube.patch(k.PVCS, name, NS, {"metadata": {"annotations": {RESTORE_ANNOTATION: ""}}})
            while True:
                now = {r["metadata"]["name"] for r in await kube.list(k.PVC_RESTORES, NS)}
                if now - before:
                    latencies.append(time.perf_counter() - started)
                    break
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
    return latencies


async def run(args: argparse.Namespace, kubeconfig: Path) -> None:
    kube = await k.Kube.connect(kubeconfig=str(kubeconfig), timeout=60)
    try:
        await kube.create(k.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    except k.AlreadyExists:
        pass
    started = time.perf_counter()
    await create_pvcs(kube, args.pvcs)
    print(f"{args.pvcs} PVCs in namespace {NS} (created in {time.perf_counter() - started:.0f}s)")

    raw = [await raw_get(kube) for _ in range(args.polls)]
    full = await timed(lambda: kube.list(k.PVCS, NS, metadata_only=True), args.polls)
    full_big = await timed(lambda: kube.list_metadata(k.PVCS, NS, keep=KEPT_METADATA, limit=10000), args.polls)
    full_one = await timed(lambda: kube.list_metadata(k.PVCS, NS, keep=KEPT_METADATA, limit=None), args.polls)
    ctl = Controller(kube, Settings(namespace=NS, poll_interval=1.0))
    first = await timed(ctl.poll, 1)
    idle = []
    for _ in range(args.polls):
        await ctl._follow_changes(0.2)  # the wait between polls (shortened: nothing changes here)
        idle += await timed(ctl.poll, 1)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    floor = statistics.median(t for t, _ in raw)
    print(f"{'measure':<52} {'median':>9} {'vs floor':>9}")
    print(f"{'raw GET of the metadata list (floor, %.1f MB)' % (raw[0][1] / 1e6):<52} {floor * 1000:8.0f}ms {1:8.2f}x")
    print(f"{'full list (paged 500 as kubectl, parsed)':<52} {statistics.median(full) * 1000:8.0f}ms "
          f"{statistics.median(full) / floor:8.2f}x")
    print(f"{'full list (pages of 10000, decoded as the controller does)':<52} "
          f"{statistics.median(full_big) * 1000:8.0f}ms "
          f"{statistics.median(full_big) / floor:8.2f}x")
    print(f"{'full list (one request, as the controller reads it)':<52} "
          f"{statistics.median(full_one) * 1000:8.0f}ms {statistics.median(full_one) / floor:8.2f}x")
    print(f"{'first poll (lists PVCs in full)':<52} {first[0] * 1000:8.0f}ms {first[0] / floor:8.2f}x")
    print(f"{'idle poll (PVC changes followed, none listed)':<52} {statistics.median(idle) * 1000:8.0f}ms "
          f"{statistics.median(idle) / floor:8.2f}x")
    followed = ctl.pvc_lists[NS]
    print(f"PVC lists during the idle polls: {followed.lists - 1}; watches: {followed.watches}; "
          f"max RSS of this benchmark process: {rss:.0f} MB")
    now_mb, peak_mb = controller_rss(kubeconfig)
    print(f"the controller process (python -m controller, 8 s of polls at 1s): RSS {now_mb:.0f} MB, "
          f"peak {peak_mb:.0f} MB")
    if args.pickups:
        lat = await pickup(kube, args.pickups)
        print(f"pickup at --poll-interval 1s ({len(lat)} annotations): median {statistics.median(lat):.2f}s, "
              f"worst {max(lat):.2f}s (goal: median <= 0.7s, worst <= 1.3s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pvcs", type=int, default=10000)
    parser.add_argument("--polls", type=int, default=10)
    parser.add_argument("--pickups", type=int, default=10)
    args = parser.parse_args()
    logging.getLogger("pvc-restore").setLevel(logging.ERROR)  # the picked-up restores fail (no source): expected
    cp = ControlPlane("bench-poll", nodes=0)
    kubeconfig = cp.start()
    try:
        asyncio.run(run(args, kubeconfig))
    finally:
        cp.stop(quiet=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
