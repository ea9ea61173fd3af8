"""pvc-restore against what users do instead: volsync's manual restore into an existing PVC, scripted with kubectl
as a careful user would (issue 14). Prints both times and the ratio; asserts nothing.

    .venv/bin/python benchmarks/manual_procedure.py [--runs 3] [--mover-seconds 10] [--quick]

On a local control plane of its own: one PVC mounted by a one-replica Deployment and backed up by a restic
ReplicationSource, volsync's mover simulated with a fixed mover time (devtools/mover_simulator.py). Timed in turns,
``--runs`` times each, on the same cluster and mover:

- the manual procedure: ``MANUAL`` below, run by bash with the control plane's kubectl (volsync's documented restore
  into an existing PVC: copyMethod Direct, destinationPVC, a manual trigger, then wait until
  status.lastManualSync equals it), from its first command to its last;
- pvc-restore: the restore annotation set -> Finished (status.timeline), with the real controller process
  (``python -m controller --poll-interval 1s``, the chart's RBAC and a ServiceAccount token, direct to the API
  server), which also records and checks everything the script leaves to the user (see the README).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _scenario import NS, Bench, machine, median, names, parse_time, print_phases, table  # noqa: E402

#: The manual procedure (volsync's docs, "restoring into an existing PVC"), as a careful user scripts it: note the
#: replicas, scale down, wait until the pods are gone, create the ReplicationDestination, wait for the sync to end,
#: scale back to the noted replicas, delete the destination. Arguments: namespace, PVC, Deployment (its pods are
#: labelled app=NAME), restic repository Secret, destination name, trigger, working directory.
MANUAL = r"""
set -euo pipefail
ns=$1 pvc=$2 app=$3 repository=$4 name=$5 trigger=$6 dir=$7
replicas=$(kubectl -n "$ns" get deployment "$app" -o jsonpath='{.spec.replicas}')
kubectl -n "$ns" scale deployment "$app" --replicas=0
kubectl -n "$ns" wait --for=delete pod -l app="$app" --timeout=300s
cat > "$dir/rd.yaml" <<EOF
apiVersion: volsync.backube/v1alpha1
kind: ReplicationDestination
metadata:
  name: $name
spec:
  trigger:
    manual: $trigger
  restic:
    repository: $repository
    destinationPVC: $pvc
    copyMethod: Direct
EOF
kubectl -n "$ns" apply -f "$dir/rd.yaml"
kubectl -n "$ns" wait --for=jsonpath='{.status.lastManualSync}'="$trigger" "replicationdestination/$name" --timeout=600s
kubectl -n "$ns" scale deployment "$app" --replicas="$replicas"
kubectl -n "$ns" delete replicationdestination "$name"
"""


def mover_run(b: Bench, destination: str) -> float | None:
    """The simulated mover's own run time for ``destination`` (from the simulator's record)."""
    from devtools import mover_simulator
    from kubectl_pvc_restore import kube as k

    record = (b.kube.get_or_none(k.CONFIGMAPS, mover_simulator.RECORD, NS) or {}).get("data") or {}
    entry = json.loads(record[destination]) if destination in record else None
    if entry is None:
        return None
    return (parse_time(entry["finishedAt"]) - parse_time(entry["startedAt"])).total_seconds()


def manual(b: Bench, run: int) -> tuple[float, float | None]:
    pvc, app, _, repository = names(0)
    name, trigger = f"{pvc}-manual-{run}", f"manual-restore-{run}-{int(time.time())}"
    env = dict(os.environ, KUBECONFIG=b.kubeconfig, PATH=f"{b.cp.bin}{os.pathsep}{os.environ['PATH']}")
    started = time.perf_counter()
    proc = subprocess.run(["bash", "-c", MANUAL, "manual", NS, pvc, app, repository, name, trigger, str(b.workdir)],
                          env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError(f"the manual procedure failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return elapsed, mover_run(b, name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs of each (median), in turns")
    parser.add_argument("--mover-seconds", type=float, default=10.0, help="the simulated mover's fixed time")
    parser.add_argument("--quick", action="store_true", help="1 run each, a 5 s mover")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.mover_seconds = 1, 5.0
    print(machine(), flush=True)
    manual_times: list[float] = []
    ours: list[float] = []
    movers: dict[str, list[float]] = {"manual": [], "pvc-restore": []}
    with Bench("bench-manual", pvcs=1, mover_seconds=args.mover_seconds, proxied=False) as b:
        b.setup()
        b.start_controller()
        pvc = names(0)[0]
        print("the manual procedure (bash, the control plane's kubectl):" + MANUAL.replace("\n", "\n    "))
        for run in range(args.runs):
            elapsed, mover = manual(b, run)
            manual_times.append(elapsed)
            movers["manual"] += [mover] if mover is not None else []
            print(f"run {run + 1}: manual procedure {elapsed:.2f}s (the mover {mover or 0:.2f}s of it)", flush=True)
            b.wait_apps_running()
            elapsed, _, phases = b.restore([pvc], timeout=300)
            ours.append(elapsed)
            movers["pvc-restore"] += phases.get("the mover", [])
            print(f"run {run + 1}: pvc-restore annotation -> Finished {elapsed:.2f}s", flush=True)
            print_phases("time in each step", phases)
            b.wait_apps_running()

    m, p = median(manual_times), median(ours)
    mover_m = median(movers["manual"]) if movers["manual"] else args.mover_seconds
    mover_p = median(movers["pvc-restore"]) if movers["pvc-restore"] else args.mover_seconds
    print(f"\n{machine('at the end')}")
    print(f"Simulated mover time {args.mover_seconds:g}s; controller --poll-interval 1s; median of {args.runs} run(s) "
          f"each, in turns.\n")
    print(table([
        ("the manual procedure (7 kubectl commands in bash), first to last", f"{m:.2f} s", "", ""),
        ("pvc-restore: annotation -> Finished", f"{p:.2f} s", f"manual: {m:.2f} s", f"{p / m:.2f}x (goal <= 1x)"),
        ("time outside the mover's own run (each minus its median mover run)", f"{p - mover_p:.2f} s",
         f"manual: {m - mover_m:.2f} s", f"{(p - mover_p) / max(m - mover_m, 0.01):.2f}x"),
    ], ("measure", "figure", "comparison", "ratio")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
