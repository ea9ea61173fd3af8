"""Wall time of the plugin next to kubectl, on the local control plane (prints numbers; asserts nothing).

    .venv/bin/python benchmarks/cli_speed.py [--runs 10] [--restores 50] [--pythonpath DIR]

Each figure is printed next to what it is compared with, and the ratio (issue 14's goals: `--help` and completion
within 100 ms, `list -A` within 1.5x of `kubectl get pvcrestores -A`):

- `kubectl pvc-restore --help` (through kubectl's plugin discovery, as a user runs it, and the executable alone)
  against `python -c pass` (the interpreter's floor) and `kubectl --help`;
- completion of a command name (`kubectl __complete pvc-restore st`, which runs kubectl_complete-pvc_restore, and that
  executable alone), against the same;
- `kubectl pvc-restore list -A` against `kubectl get pvcrestores -A`, with ``--restores`` PVCRestores; and, as
  yardsticks for that goal, the least a Python client needs for the same list (``python_floor.py``: the standard
  library and PyYAML, then the same with click imported).

Wall-time medians and minimums, and the median CPU time (user + system; kubectl's Go runtime may use more than one
core), over ``--runs`` runs, run interleaved (one of each in turn) so that a burst of load on the machine
hits them alike. ``--pythonpath DIR`` runs the plugin from another copy of the package (e.g. ``git archive`` of an
older commit) to compare before and after on the same cluster.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.controlplane import ControlPlane  # noqa: E402

FLOOR = Path(__file__).resolve().parent / "python_floor.py"
HELP_GOAL_MS = 100.0
LIST_GOAL_RATIO = 1.5


def time_once(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time, and the CPU time (user + system) the command used: less sensitive to other work on the machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--restores", type=int, default=50, help="PVCRestores to create first")
    parser.add_argument("--pythonpath", help="import kubectl_pvc_restore from this directory instead")
    args = parser.parse_args()
    cp = ControlPlane(f"bench-cli-{os.getpid()}")
    try:
        kubeconfig = cp.start()
        venv_bin = Path(sys.executable).parent
        env = dict(os.environ, KUBECONFIG=str(kubeconfig),
                   PATH=f"{venv_bin}{os.pathsep}{cp.bin}{os.pathsep}{os.environ['PATH']}")
        if args.pythonpath:
            env["PYTHONPATH"] = args.pythonpath
        manifests = "".join(
            f"---\napiVersion: pvc-restore.homelab-helper.benfiola.com/v1\nkind: PVCRestore\n"
            f"metadata: {{name: r{i}, namespace: default}}\nspec: {{pvc: data-{i % 7}}}\n"
            for i in range(args.restores))
        cp.kubectl("apply", "-f", "-", input=manifests)
        kubectl = str(cp.bin / "kubectl")
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "kubectl --help": [kubectl, "--help"],
            "kubectl pvc-restore --help": [kubectl, "pvc-restore", "--help"],
            "kubectl-pvc_restore --help": [str(venv_bin / "kubectl-pvc_restore"), "--help"],
            "kubectl __complete pvc-restore st": [kubectl, "__complete", "pvc-restore", "st"],
            "kubectl_complete-pvc_restore st": [str(venv_bin / "kubectl_complete-pvc_restore"), "st"],
            "kubectl get pvcrestores -A": [kubectl, "get", "pvcrestores", "-A"],
            "kubectl pvc-restore list -A": [kubectl, "pvc-restore", "list", "-A"],
            # Yardsticks (benchmarks/python_floor.py): the least a Python client needs for the same list.
            "python floor: stdlib list": [sys.executable, str(FLOOR), str(kubeconfig)],
            "python floor + import click": [sys.executable, str(FLOOR), str(kubeconfig), "--click"],
        }
        for cmd in cases.values():  # warm: page cache, kubectl's discovery cache, .pyc files
            time_once(cmd, env)
        times: dict[str, list[float]] = {name: [] for name in cases}
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, cmd in cases.items():
                wall, used = time_once(cmd, env)
                times[name].append(wall)
                cpu[name].append(used)
        med = {name: statistics.median(t) * 1000 for name, t in times.items()}
        low = {name: min(t) * 1000 for name, t in times.items()}
        med_cpu = {name: statistics.median(t) * 1000 for name, t in cpu.items()}
        compare = {
            "kubectl pvc-restore --help": ["kubectl --help", "python -c pass"],
            "kubectl-pvc_restore --help": ["python -c pass"],
            "kubectl __complete pvc-restore st": ["kubectl --help", "python -c pass"],
            "kubectl_complete-pvc_restore st": ["python -c pass"],
            "kubectl pvc-restore list -A": ["kubectl get pvcrestores -A"],
            "python floor: stdlib list": ["kubectl get pvcrestores -A"],
            "python floor + import click": ["kubectl get pvcrestores -A"],
        }
        print(f"{args.runs} runs each, interleaved; {args.restores} PVCRestores in the cluster; "
              f"load average {os.getloadavg()[0]:.2f} (1 min) at the end, {os.cpu_count()} CPUs")
        print(f"{'command':<36} {'median':>8} {'min':>8} {'CPU':>8}   compared with (wall medians): ratio")
        for name in cases:
            against = "; ".join(f"{other} {med[name] / med[other]:.2f}x" for other in compare.get(name, []))
            goal = ""
            if "--help" in name and "pvc" in name or "complete" in name:
                goal = f"; goal {HELP_GOAL_MS:.0f} ms: {med[name] / HELP_GOAL_MS:.2f}x"
            elif name == "kubectl pvc-restore list -A":
                goal = f" (goal {LIST_GOAL_RATIO:g}x)"
            print(f"{name:<36} {med[name]:6.0f}ms {low[name]:6.0f}ms {med_cpu[name]:6.0f}ms   {against}{goal}")
    finally:
        cp.stop(quiet=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
