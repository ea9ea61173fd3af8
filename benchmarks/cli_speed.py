"""Wall time of the plugin next to kubectl, on the local control plane (prints numbers; asserts nothing).

    .venv/bin/python benchmarks/cli_speed.py [--runs 10] [--restores 50]

Measures `kubectl pvc-restore --help` (click only), `kubectl pvc-restore list -A` and `kubectl get pvcrestores -A`,
each run through kubectl's plugin discovery as a user would, and reports median and min over the runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.controlplane import ControlPlane  # noqa: E402


def timed(cmd: list[str], env: dict[str, str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--restores", type=int, default=50, help="PVCRestores to create first")
    args = parser.parse_args()
    cp = ControlPlane("bench-cli")
    kubeconfig = cp.start()
    try:
        env = dict(os.environ, KUBECONFIG=str(kubeconfig),
                   PATH=f"{Path(sys.executable).parent}{os.pathsep}{cp.bin}{os.pathsep}{os.environ['PATH']}")
        manifests = "".join(
            f"---\napiVersion: pvc-restore.homelab-helper.benfiola.com/v1\nkind: PVCRestore\n"
            f"metadata: {{name: r{i}, namespace: default}}\nspec: {{pvc: data-{i % 7}}}\n" for i in range(args.restores))
        cp.kubectl("apply", "-f", "-", input=manifests)
        cases = {
            "kubectl pvc-restore --help": ["kubectl", "pvc-restore", "--help"],
            "kubectl pvc-restore list -A": ["kubectl", "pvc-restore", "list", "-A"],
            "kubectl get pvcrestores -A": ["kubectl", "get", "pvcrestores", "-A"],
        }
        print(f"{args.runs} runs each, {args.restores} PVCRestores in the cluster")
        print(f"{'command':<32} {'median':>8} {'min':>8}")
        for name, cmd in cases.items():
            times = timed(cmd, env, args.runs)
            print(f"{name:<32} {statistics.median(times) * 1000:7.0f}ms {min(times) * 1000:7.0f}ms")
    finally:
        cp.stop(quiet=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
