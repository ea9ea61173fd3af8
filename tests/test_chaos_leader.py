"""Two controller replicas with leader election (issue 13): the leader dies during each phase and the other replica
takes over and finishes the restore; a leader frozen (SIGSTOP) past its lease and then resumed (SIGCONT) must not
make a single write after it wakes. Both replicas are the real controller process, on the chart's RBAC (its
ClusterRole and its leader-election Role), talking to the API server through devtools/fault_proxy.py, which logs every
write with the writer's User-Agent (``pvc-restore-controller/VERSION (IDENTITY)``): from that log, the writes of the
two replicas other than to the Lease never interleave. A last, in-process test checks the write fence the frozen case
needs (controller/leader.py ``fence``) deterministically: a pause after a renew was applied blocks every write."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest

from controller.leader import LeaderElector, NotLeader
from kubectl_pvc_restore import kube as k
from tests import scenario as sc
from tests.chaos import CONTROLLER_AGENT, bind_chart_leader_election, lease_holder, writes_of
from tests.helpers import wait_for
from tests.test_chaos_faults import check_restore

PHASES = ["Initialize", "ScaleDown", "Restore", "Finalize"]
LEASE = 3.0  # seconds: short, so that a takeover happens within a test
ELECTION = ("--leader-election", "--lease-duration", f"{LEASE:g}s", "--renew-deadline", "2s", "--retry-period", "0.5s")
#: Frozen during the phases that write the most (Initialize is short and Restore mostly waits for the mover).
FREEZE_PHASES = ["ScaleDown", "Finalize"]
#: The frozen leader's requests are slowed by the proxy's latency (0.3 s) before the freeze: a renew (GET and PUT)
#: takes 0.6 s, so a longer renew deadline keeps it from stepping down by itself before it is frozen.
FREEZE_LEASE = 4.0
FREEZE_ELECTION = ("--leader-election", "--lease-duration", f"{FREEZE_LEASE:g}s", "--renew-deadline", "3s",
                   "--retry-period", "0.5s")

#: phase -> the crash point at which the leader SIGKILLs itself (inside that phase, mid-work where there is a point)
KILL_POINTS = {
    "Initialize": "enter:Initialize",     # phase saved, finalizer/lock not yet taken
    "ScaleDown": "scaled-down:web",       # replicas recorded, first of two owners scaled to 0
    "Restore": "created-destination",     # ReplicationDestination created, the mover not finished
    "Finalize": "scaled-up:web",          # destination deleted, first of two owners scaled back
}


def start_pair(cluster, control_plane, proxied_controller, fault_proxy, *, crash_at: str | None = None,
               election: tuple[str, ...] = ELECTION) -> tuple[Any, Any]:
    """Replica "a" (the leader: started first) and replica "b" (the standby, started once "a" holds the Lease)."""
    ns = cluster.ns
    bind_chart_leader_election(cluster.kube, control_plane, ns)
    fault_proxy.configure(rate=0.0)
    fault_proxy.reset()
    args = (*election, "--leader-election-namespace", ns)
    a = proxied_controller(*args, identity="a", crash_at=crash_at)
    wait_for(lambda: lease_holder(cluster.kube, ns) == "a" or a.poll() is not None, timeout=30,
             message="replica a to take the Lease")
    assert a.poll() is None, a.log_path.read_text()[-3000:]
    b = proxied_controller(*args, identity="b")
    wait_for(lambda: any("(b) GET leases" in key for key in fault_proxy.stats()["requests"]) or b.poll() is not None,
             timeout=30, message="replica b to look at the Lease")
    assert b.poll() is None, b.log_path.read_text()[-3000:]
    assert lease_holder(cluster.kube, ns) == "a"
    return a, b


def check_no_overlap(ledger, stats: dict[str, Any], first: str, second: str) -> tuple[float, float]:
    """Every write of ``first`` but to the Lease comes before the first such write of ``second``; both acted.
    Returns (``first``'s last write, ``second``'s first write) times."""
    by_first, by_second = writes_of(stats, first), writes_of(stats, second)
    ledger.check(by_first, f"replica {first} never acted: the case proves nothing")
    ledger.check(by_second, f"replica {second} never acted: it did not take over")
    late = [w for w in by_first if w["time"] >= by_second[0]["time"]]
    ledger.check(not late, f"both replicas acted: replica {first} wrote {[(w['method'], w['path']) for w in late]} "
                           f"after replica {second}'s first write {by_second[0]['method']} {by_second[0]['path']}")
    return by_first[-1]["time"], by_second[0]["time"]


def check_logs(*procs: Any) -> None:
    for proc in procs:
        text = proc.log_path.read_text()
        assert "Traceback" not in text, text[-3000:]


@pytest.mark.parametrize("phase", list(KILL_POINTS))
def test_leader_killed_standby_finishes(cluster, control_plane, proxied_controller, fault_proxy, ledger, phase):
    sc.setup(cluster, delay=1.0)
    a, b = start_pair(cluster, control_plane, proxied_controller, fault_proxy, crash_at=KILL_POINTS[phase])
    sc.annotate(cluster, "1")
    killed = wait_for(lambda: a.poll() is not None and time.time(), timeout=60, interval=0.05,
                      message=f"replica a to die at {KILL_POINTS[phase]}")
    assert a.returncode == -signal.SIGKILL, a.log_path.read_text()[-3000:]
    ledger.count("controller kills")
    [restore] = sc.restores(cluster)
    assert restore["status"]["phase"] == phase, f"a died in {restore['status']['phase']}, not {phase}"
    restore = sc.wait_finished(cluster, timeout=90)
    ledger.count("restores run")
    stats = fault_proxy.stats()
    ledger.check(lease_holder(cluster.kube, cluster.ns) == "b", "replica b does not hold the Lease")
    ledger.count("leader failovers")
    last_a, first_b = check_no_overlap(ledger, stats, "a", "b")
    acquired = next(w["time"] for w in writes_of(stats, "b", lease=True) if w["status"] < 300)
    print(f"{phase}: killed at {KILL_POINTS[phase]}; b took the Lease {acquired - killed:.2f}s after the kill, "
          f"first wrote {first_b - killed:.2f}s after it ({first_b - last_a:.2f}s after a's last write)")
    check_restore(cluster, ledger, restore)
    check_logs(b)


@pytest.mark.parametrize("phase", FREEZE_PHASES)
def test_frozen_leader_does_not_act_after_resuming(cluster, control_plane, proxied_controller, fault_proxy, ledger,
                                                   phase):
    """SIGSTOP the leader during ``phase`` until the standby took over and acted, then SIGCONT it: the resumed
    replica must see it lost the Lease before it writes anything (its clock ran on while it was frozen).

    To freeze it in the middle of its work (a reconcile waiting for an answer, its next step a write), each of its
    requests is delayed by the proxy's latency from the phase before on: it wakes up to an answer and its next write."""
    sc.setup(cluster, delay=1.0)
    a, b = start_pair(cluster, control_plane, proxied_controller, fault_proxy, election=FREEZE_ELECTION)
    before = PHASES[:PHASES.index(phase)]

    def reached(phases: list[str]) -> bool:
        return any((r.get("status") or {}).get("phase") in phases for r in sc.restores(cluster))

    try:
        if before:
            sc.annotate(cluster, "1")
            wait_for(lambda: reached(PHASES[len(before) - 1:]), timeout=60, interval=0.05,
                     message=f"the restore to reach {before[-1]}")
        fault_proxy.configure(only_agent="(a)", kinds=["latency"], rate=1.0)  # replica a's requests only
        if not before:
            sc.annotate(cluster, "1")
        wait_for(lambda: reached([phase]) or reached(PHASES[PHASES.index(phase) + 1:] + ["Finished"]), timeout=60,
                 interval=0.05, message=f"the restore to reach {phase}")
        ledger.check(reached([phase]), f"the restore went past {phase} before replica a could be frozen")
        os.kill(a.pid, signal.SIGSTOP)
        stopped = time.time()
    finally:
        fault_proxy.configure(only_agent=CONTROLLER_AGENT, rate=0.0)
    try:
        wait_for(lambda: writes_of(fault_proxy.stats(), "b"), timeout=30, interval=0.1,
                 message="replica b to take over and act")
    finally:
        resumed = time.time()
        os.kill(a.pid, signal.SIGCONT)
    ledger.count("controller freezes")
    ledger.count("leader failovers")
    restore = sc.wait_finished(cluster, timeout=90)
    ledger.count("restores run")
    wait_for(lambda: "lost leadership" in a.log_path.read_text(), timeout=10,
             message="replica a to notice it lost the Lease")
    time.sleep(1.0)  # anything a would still do after noticing is logged by now
    stats = fault_proxy.stats()
    # Sent after it woke: the whole request reached the proxy after the SIGCONT (a write sent before the freeze may
    # be answered after it, when the API server is slow: that one was made while replica a still led).
    after = [w for w in writes_of(stats, "a") if w["received"] >= resumed]
    wrote = [(w["method"], w["path"], w["status"], f"received {w['received'] - resumed:+.3f}s, answered "
              f"{w['time'] - resumed:+.3f}s after the resume") for w in after]
    ledger.check(not after, f"replica a wrote after it was resumed: {wrote}")
    ledger.check(lease_holder(cluster.kube, cluster.ns) == "b", "replica b does not hold the Lease")
    last_a, first_b = check_no_overlap(ledger, stats, "a", "b")
    # b may act only once a's last renewal is a whole lease old by b's clock: b times the lease from when it sees that
    # renewal, which is after the API server applied it, which is after the proxy received it. (Not from the SIGSTOP:
    # a may have renewed up to a renew period before it was frozen.)
    first_b_sent = writes_of(stats, "b")[0]["received"]
    renewed = [w["received"] for w in writes_of(stats, "a", lease=True)
               if w["status"] < 300 and w["received"] < first_b_sent]
    ledger.check(bool(renewed) and first_b_sent - renewed[-1] > FREEZE_LEASE,
                 f"replica b acted {first_b_sent - (renewed or [stopped])[-1]:.2f}s after a's last renewal, before "
                 f"its lease of {FREEZE_LEASE:g}s could have expired")
    fenced = a.log_path.read_text().count("not sent: this replica (a)")
    print(f"{phase}: a frozen {resumed - stopped:.2f}s; b first wrote {first_b - stopped:.2f}s after the freeze "
          f"({first_b - last_a:.2f}s after a's last write); a wrote nothing after it resumed ({fenced} writes "
          f"refused by its fence)")
    check_restore(cluster, ledger, restore)
    check_logs(a, b)


def test_fence_refuses_writes_after_a_pause(portal, kube, control_plane, namespace, proxied_controller, fault_proxy):
    """The fence itself, deterministically: a replica whose event loop stood still (here: blocked for longer than the
    renew deadline right after a renew was applied, as if frozen before it read the answer) refuses every write but
    its Lease's until a renew that *began* after the pause succeeds; nothing refused reaches the API server."""
    bind_chart_leader_election(kube, control_plane, namespace)
    fault_proxy.configure(rate=0.0)
    fault_proxy.reset()

    def config_map(name: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}}

    async def scenario() -> dict[str, Any]:
        """What happened, asserted outside: a pytest failure raised inside would stop the session's portal."""
        seen: dict[str, Any] = {}
        client = await k.Kube.connect(kubeconfig=proxied_controller.kubeconfig, user_agent=f"{CONTROLLER_AGENT}x (c)")
        elector = LeaderElector(client, namespace, "c", lease_duration=3.0, renew_deadline=2.0, retry_period=0.2)
        elector.fence(client)
        renew, paused = elector.try_acquire_or_renew, asyncio.Event()
        armed = False

        async def pausing() -> bool:
            ok = await renew()
            if armed and not paused.is_set():
                time.sleep(2.5)  # the whole replica stands still: the renew is applied, its answer not yet read
                paused.set()
            return ok

        elector.try_acquire_or_renew = pausing  # type: ignore[method-assign]
        stop = asyncio.Event()
        task = asyncio.create_task(elector.run(stop))
        try:
            for _ in range(100):
                if elector.may_write():
                    break
                await asyncio.sleep(0.05)
            seen["led"] = elector.may_write()
            await client.create(k.CONFIGMAPS, config_map("before-pause"), namespace)
            armed = True
            await asyncio.wait_for(paused.wait(), 10)
            seen["leader after the pause"] = elector.is_leader  # the renew succeeded: it still counts itself leader
            try:
                await client.create(k.CONFIGMAPS, config_map("after-pause"), namespace)
                seen["after the pause"] = "sent"
            except NotLeader as exc:
                seen["after the pause"] = str(exc)
            for _ in range(100):  # the next renew begins after the pause: writing is allowed again
                if elector.may_write():
                    break
                await asyncio.sleep(0.05)
            await client.create(k.CONFIGMAPS, config_map("after-renew"), namespace)
        finally:
            stop.set()
            await task
            await elector.release()  # a Lease write: never fenced
        return seen

    seen = portal.call(scenario)
    assert seen["led"] and seen["leader after the pause"], seen
    assert "not sent: this replica (c) has not renewed lease" in seen["after the pause"], seen
    stats = fault_proxy.stats()
    sent = [w["path"].rsplit("/", 1)[-1] for w in writes_of(stats, "c")]
    assert sent == ["configmaps", "configmaps"], sent
    assert kube.get_or_none(k.CONFIGMAPS, "after-pause", namespace) is None
    assert kube.get_or_none(k.CONFIGMAPS, "after-renew", namespace) is not None
    assert lease_holder(kube, namespace) is None, "the Lease was not released"


@pytest.mark.parametrize("refused_at", ["headers", "body"])
def test_write_guard_is_asked_again_on_the_connection(portal, kube, kubeconfig, namespace, refused_at):
    """A replica can pause after the fence let a write start and before its bytes went out (waiting for a connection,
    or between the headers and the body). The guard is asked again right before each goes onto the connection: a
    refusal there sends nothing the API server acts on, and the client goes on working."""
    calls: list[str] = []
    refuse_from = {"headers": 2, "body": 3}[refused_at]  # call 1: before the request; 2: its headers; 3: its body

    def guard(url: str, what: str) -> None:
        calls.append(what)
        if len(calls) >= refuse_from:
            raise NotLeader(f"{what}: refused at call {len(calls)}")

    async def scenario() -> tuple[str, int]:
        client = await k.Kube.connect(kubeconfig=kubeconfig)
        client.write_guard = guard
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "guarded", "namespace": namespace},
                "data": {"x": "y" * 4096}}
        try:
            await client.create(k.CONFIGMAPS, body, namespace)
            outcome = "sent"
        except NotLeader as exc:
            outcome = str(exc)
        client.write_guard = None
        asked = len(calls)
        await client.create(k.CONFIGMAPS, {**body, "metadata": {"name": "after", "namespace": namespace}}, namespace)
        return outcome, asked

    outcome, asked = portal.call(scenario)
    assert f"refused at call {refuse_from}" in outcome, outcome
    assert asked == refuse_from, calls
    assert kube.get_or_none(k.CONFIGMAPS, "guarded", namespace) is None
    assert kube.get_or_none(k.CONFIGMAPS, "after", namespace) is not None
