"""Throughput of the real controller: N restores of N PVCs asked for at once, next to one restore alone; and the API
requests each restore costs, counted through a proxy, next to the fewest the phase machine needs (issue 14). Prints
numbers side by side; asserts nothing.

    .venv/bin/python benchmarks/throughput.py [--restores 50] [--runs 3] [--mover-seconds 10] [--quick]

On a local control plane of its own: N PVCs, each mounted by a one-replica Deployment and backed up by a restic
ReplicationSource; volsync's mover simulated with a fixed mover time (devtools/mover_simulator.py); the real
controller process (``python -m controller --poll-interval 1s``, the chart's RBAC, a ServiceAccount token) talking to
the API server through devtools/fault_proxy.py with fault rate 0, which counts its requests by method and resource.

- one restore: annotation set -> Finished (status.timeline's Finished entry), median of ``--runs``;
- N restores: all N PVCs annotated together -> the last one Finished;
- requests per restore: the controller's requests during the N restores, minus its idle polling (measured right
  after over the same duration with no restore, subtracted per poll the run made), divided by N; next to ``FEWEST``
  below, the list of calls controller/phases.py makes on the shortest path.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _scenario import Bench, machine, median, names, print_phases, table  # noqa: E402

#: The fewest API requests one restore needs as controller/phases.py (and triggers.py) are written, for this
#: scenario (one Deployment with one replica mounting the PVC, a restic ReplicationSource, no safety backup, no
#: CronJob/HPA/GitOps/KEDA object to stop): every wait is taken as met at its first look, except the mover's, which
#: cannot have finished when its ReplicationDestination is created, so Restore is looked at twice, the second time
#: woken by the change (wake.py). Discovery (GET /apis/apps/v1, keda.sh's) is cached per process and not counted. Keys
#: are the proxy's "VERB resource", the verb as the audit log has it (GET one object, LIST, WATCH, POST, ...). Each
#: look that finds the wait not over adds to this (see the end of the output).
FEWEST: list[tuple[str, str, str]] = [
    # -- the annotation (controller/triggers.py, in the poll; loop.py reads the PVC it wrote again) --
    ("trigger", "PATCH persistentvolumeclaims", "claim the PVCRestore's name in an annotation (conditional)"),
    ("trigger", "POST pvcrestores", "create the PVCRestore"),
    ("trigger", "PATCH persistentvolumeclaims", "remove the restore and claim annotations"),
    ("trigger", "GET persistentvolumeclaims", "the next poll reads the written PVC again (never a stale copy)"),
    # -- Initialize --
    ("Initialize", "PUT pvcrestores/status", "enter Initialize (phase, timeline, condition)"),
    ("Initialize", "POST events", "Event: Initialize"),
    ("Initialize", "GET persistentvolumeclaims", "the PVC exists: its uid"),
    ("Initialize", "PUT pvcrestores/status", "record the PVC's uid"),
    ("Initialize", "PATCH pvcrestores", "add the finalizer"),
    ("Initialize", "PUT pvcrestores/status", "record startTime"),
    ("Initialize", "POST configmaps", "take the per-PVC lock"),
    ("Initialize", "PUT pvcrestores/status", "enter ScaleDown"),
    ("Initialize", "POST events", "Event: ScaleDown"),
    # -- ScaleDown --
    ("ScaleDown", "GET persistentvolumeclaims", "check_pvc: still the same uid"),
    ("ScaleDown", "LIST replicationsources", "find the PVC's source (in the namespace)"),
    ("ScaleDown", "PUT pvcrestores/status", "intent: the source and its paused value"),
    ("ScaleDown", "LIST pods", "pods mounting the PVC (in the namespace)"),
    ("ScaleDown", "GET replicasets", "the pod's owner"),
    ("ScaleDown", "GET deployments", "the ReplicaSet's owner"),
    ("ScaleDown", "GET deployments/scale", "its replicas, to record"),
    ("ScaleDown", "LIST cronjobs", "CronJobs mounting the PVC"),
    ("ScaleDown", "LIST horizontalpodautoscalers", "HPAs targeting the workload (for a note)"),
    ("ScaleDown", "PUT pvcrestores/status", "intent: the workloads and their replicas"),
    ("ScaleDown", "GET configmaps", "the lock (guard.hold off)"),
    ("ScaleDown", "PATCH configmaps", "the held workloads into the lock"),
    ("ScaleDown", "GET replicationsources", "the source, to pause"),
    ("ScaleDown", "PATCH replicationsources", "pause it"),
    ("ScaleDown", "PATCH deployments/scale", "scale to 0"),
    ("ScaleDown", "LIST pods", "no pod mounts the PVC any more (taken as met at once)"),
    ("ScaleDown", "GET configmaps", "the lock (guard.hold on)"),
    ("ScaleDown", "PATCH configmaps", "guard on: only the mover from now on"),
    ("ScaleDown", "PUT pvcrestores/status", "enter Restore"),
    ("ScaleDown", "POST events", "Event: Restore"),
    # -- Restore, first look --
    ("Restore", "GET persistentvolumeclaims", "check_pvc"),
    ("Restore", "LIST pods", "guard: no pod but the mover mounts the PVC"),
    ("Restore", "PUT pvcrestores/status", "intent: the destination's name and trigger"),
    ("Restore", "GET replicationdestinations", "does it exist already? (404)"),
    ("Restore", "GET replicationsources", "the source to copy the mover settings from"),
    ("Restore", "POST replicationdestinations", "create it (copyMethod Direct into the PVC)"),
    ("Restore", "POST events", "Event: DestinationCreated"),
    ("Restore", "LIST pods", "check_mover: a failed mover pod? (label selector)"),
    ("Restore", "PUT pvcrestores/status", "wait: 'waiting for the volsync mover to start'"),
    ("Restore", "WATCH replicationdestinations", "follow the destination until volsync changes it (wake.py)"),
    # -- Restore, the look that sees the mover done (woken by that change) --
    ("Restore", "GET pvcrestores", "the PVCRestore read afresh before looking again"),
    ("Restore", "GET persistentvolumeclaims", "check_pvc"),
    ("Restore", "LIST pods", "guard"),
    ("Restore", "GET replicationdestinations", "its status: lastManualSync == trigger"),
    ("Restore", "PUT pvcrestores/status", "record moverStarted (partial data from here on)"),
    ("Restore", "GET persistentvolumeclaims", "check_pvc: the mover wrote the same volume"),
    ("Restore", "PUT pvcrestores/status", "enter Finalize"),
    ("Restore", "POST events", "Event: Finalize"),
    # -- Finalize --
    ("Finalize", "GET replicationdestinations", "ours? (ownerReference)"),
    ("Finalize", "DELETE replicationdestinations", "delete it"),
    ("Finalize", "LIST pods", "mover pods still mounting the PVC?"),
    ("Finalize", "GET configmaps", "the lock (guard off)"),
    ("Finalize", "PATCH configmaps", "guard off: let the workloads come back"),
    ("Finalize", "GET deployments/scale", "current replicas"),
    ("Finalize", "PATCH deployments/scale", "back to the recorded replicas"),
    ("Finalize", "GET replicationsources", "the source"),
    ("Finalize", "PATCH replicationsources", "un-pause it"),
    ("Finalize", "GET configmaps", "the lock, still ours?"),
    ("Finalize", "DELETE configmaps", "release it"),
    ("Finalize", "PUT pvcrestores/status", "enter Finished"),
    ("Finalize", "POST events", "Event: Finished"),
    ("Finalize", "PATCH pvcrestores", "remove the finalizer"),
]


def polls(counts: dict[str, int]) -> int:
    """Polls made: each lists the PVCRestores once, and nothing else lists them."""
    return counts.get("LIST pvcrestores", 0)


def per_restore(run: dict[str, int], idle: dict[str, int], n: int) -> dict[str, float]:
    """(the run's requests - its polls x the idle polling's requests per poll) / n, by method and resource. Per poll,
    not per second: a busy poll takes longer, so a run makes fewer polls than the same time spent idle."""
    per_poll = {key: count / max(polls(idle), 1) for key, count in idle.items()}
    return {key: (run.get(key, 0) - polls(run) * per_poll.get(key, 0.0)) / n for key in set(run) | set(per_poll)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--restores", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3, help="runs of the single restore (median)")
    parser.add_argument("--mover-seconds", type=float, default=10.0, help="the simulated mover's fixed time")
    parser.add_argument("--quick", action="store_true", help="10 restores, 1 run, a 5 s mover")
    args = parser.parse_args()
    if args.quick:
        args.restores, args.runs, args.mover_seconds = 10, 1, 5.0
    print(machine(), flush=True)
    with Bench("bench-throughput", pvcs=args.restores, mover_seconds=args.mover_seconds) as b:
        b.setup()
        pvcs = [names(i)[0] for i in range(args.restores)]

        def one_then_many(label: str, *, counted: bool) -> tuple[list[float], list, tuple]:
            """``runs`` single restores, then all N at once: (single times, [(counts, window)], (wall, each, cpu,
            counts, window))."""
            singles, single_counts = [], []
            for run in range(args.runs):
                if counted:
                    b.proxy.reset()
                window = time.perf_counter()
                elapsed, _, phases = b.restore(pvcs[:1], timeout=300)
                if counted:
                    single_counts.append((b.counts(), time.perf_counter() - window))
                singles.append(elapsed)
                print(f"{label}: one restore, run {run + 1}: {elapsed:.2f}s", flush=True)
                print_phases("time in each step", phases)
                b.wait_apps_running()
            if counted:
                b.proxy.reset()
            window = time.perf_counter()
            cpu_before, served_before = b.cpu_seconds(), b.apiserver_requests()
            wall, each, phases = b.restore(pvcs, timeout=600)
            cpu = {name: used - cpu_before.get(name, 0.0) for name, used in b.cpu_seconds().items()}
            served = b.apiserver_requests() - served_before
            many_counts = b.counts() if counted else {}
            window = time.perf_counter() - window
            print(f"{label}: {args.restores} restores at once: the last Finished {wall:.2f}s after the annotations "
                  f"(each: median {median(each):.2f}s, fastest {min(each):.2f}s)", flush=True)
            print_phases("time in each step, median of the restores", phases)
            print(f"  CPU seconds used meanwhile ({wall:.0f}s on {os.cpu_count()} shared cores): " + ", ".join(
                f"{name} {used:.1f}" for name, used in sorted(cpu.items(), key=lambda kv: -kv[1])), flush=True)
            print(f"  requests the API server served meanwhile, from all its clients: {served}", flush=True)
            b.wait_apps_running()
            return singles, single_counts, (wall, each, cpu, many_counts, window, served)

        # 1. Counted: the controller talks to the API server through the counting proxy.
        b.start_controller(proxied=True)
        _, single_counts, (wall_counted, _, cpu_counted, many_counts, duration, served_counted) = one_then_many(
            "through the counting proxy", counted=True)
        b.proxy.reset()
        time.sleep(duration)
        idle = b.counts()
        warnings = sum(1 for line in (b.workdir / "controller.log").read_text().splitlines()
                       if " WARNING " in line or " ERROR " in line)
        # 2. Timed: directly (the proxy is the benchmark's instrument, and it costs CPU the machine has to share).
        b.stop_controller()
        b.start_controller(proxied=False)
        singles, _, (wall, _, cpu, _, _, _) = one_then_many("directly", counted=False)

    one = median(singles)
    fewest = Counter(key for _, key, _ in FEWEST)
    many = per_restore(many_counts, idle, args.restores)
    single = [per_restore(c, idle, 1) for c, _ in single_counts]
    single_med = {key: median([s.get(key, 0.0) for s in single]) for key in set().union(*single)}
    total_many, total_single, total_fewest = sum(many.values()), sum(single_med.values()), sum(fewest.values())
    idle_rate = sum(idle.values()) / duration

    print("\nThe fewest requests one restore needs (controller/phases.py and triggers.py as written; see FEWEST):")
    for i, (phase, key, why) in enumerate(FEWEST, 1):
        print(f"  {i:2d}. {phase:<10} {key:<34} {why}")
    print(f"  = {total_fewest} requests ({sum(1 for p, _, _ in FEWEST if p != 'trigger')} by the phase machine, "
          f"{sum(1 for p, _, _ in FEWEST if p == 'trigger')} for the annotation)")

    print(f"\nRequests per restore by method and resource (the controller's, through the proxy), idle polling "
          f"subtracted: with no restore it made {sum(idle.values())} requests in {polls(idle)} polls over "
          f"{duration:.0f}s ({idle_rate:.1f}/s); subtracted per poll made during the run ({polls(many_counts)} polls "
          f"during the {args.restores} restores):")
    print(f"{'request':<34} {'fewest':>7} {'one alone':>10} {f'{args.restores} at once':>12}")
    for key in sorted(set(fewest) | {k for k, v in many.items() if abs(v) >= 0.05}
                      | {k for k, v in single_med.items() if abs(v) >= 0.05}):
        print(f"{key:<34} {fewest.get(key, 0):>7} {single_med.get(key, 0.0):>10.1f} {many.get(key, 0.0):>12.1f}")
    print(f"{'total':<34} {total_fewest:>7} {total_single:>10.1f} {total_many:>12.1f}")
    print(f"(controller log: {warnings} warning/error lines)")
    print("Beyond the fewest: each look that finds a wait not over costs again what its phase reads - in ScaleDown "
          "(pods still stopping) about 10 requests (check_pvc, the pods list, their owners, CronJobs, the lock, the "
          "source, the scale to 0 again, the pods list), in Restore (the mover running) 4 (check_pvc, the guard's pods "
          "list, the destination, the mover pods) - plus the watch and the fresh read of each wake-up; a look happens "
          "on each change of what the restore waits for (wake.py), or at a poll when nothing changed for a poll "
          "interval.")

    cpu_total, counted_total = sum(cpu.values()), sum(cpu_counted.values())
    cpu_others = cpu_total - cpu.get("controller", 0.0)
    cores = os.cpu_count() or 1
    controller_requests = sum(many_counts.values())
    print(f"\n{machine('at the end')}")
    print(f"Simulated mover time {args.mover_seconds:g}s, --poll-interval 1s, --workers 16 (default); "
          f"{args.runs} run(s) of one restore.")
    print(f"CPU seconds of every process on the machine's {cores} cores during the {args.restores} restores: "
          f"{cpu_total:.0f} directly ({cpu_total / args.restores:.2f} per restore), {counted_total:.0f} through the "
          f"proxy; with all cores busy that alone takes {cpu_total / cores:.1f}s, against {2 * one:.1f}s for 2x one "
          f"restore.\n")
    print(table([
        ("one restore: annotation -> Finished (median of %d)" % args.runs, f"{one:.2f} s", "", ""),
        (f"{args.restores} restores on {args.restores} PVCs annotated at once -> all Finished", f"{wall:.2f} s",
         f"one restore: {one:.2f} s", f"{wall / one:.2f}x (goal <= 2x)"),
        (f"CPU seconds, all processes, during the {args.restores} restores / cores", f"{cpu_total / cores:.1f} s",
         f"one restore: {one:.2f} s", f"{cpu_total / cores / one:.2f}x"),
        ("the same, every process but the controller's (API server, etcd, kube-controller-manager, scheduler, "
         "kwok, mover simulator, this script)", f"{cpu_others / cores:.1f} s", f"one restore: {one:.2f} s",
         f"{cpu_others / cores / one:.2f}x"),
        (f"requests the API server served during the {args.restores} restores (through the proxy), all clients",
         f"{served_counted}", f"the controller's: {controller_requests}",
         f"{controller_requests / max(served_counted, 1):.0%} the controller's"),
        (f"{args.restores} at once, through the counting proxy", f"{wall_counted:.2f} s",
         f"one restore: {one:.2f} s", f"{wall_counted / one:.2f}x"),
        ("API requests per restore, one alone (idle polling subtracted)", f"{total_single:.0f}",
         f"fewest: {total_fewest}", f"{total_single / total_fewest:.2f}x"),
        (f"API requests per restore, {args.restores} at once (idle polling subtracted)", f"{total_many:.0f}",
         f"fewest: {total_fewest}", f"{total_many / total_fewest:.2f}x"),
        ("idle polling (per poll in one namespace: 3 lists, 2 bounded watches)", f"{idle_rate:.1f} requests/s", "",
         ""),
    ], ("measure", "figure", "comparison", "ratio")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
