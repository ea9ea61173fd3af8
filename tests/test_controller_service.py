"""The controller as a service, as a real subprocess on the real control plane: flags and their environment
variables, /healthz, /readyz, /metrics, JSON logs, leader election across replicas, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import model
from tests import scenario as sc
from tests.conftest import free_port
from tests.helpers import http_get, wait_for

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "pvc-restore"


get = http_get


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            if line[len(name)] in " {":
                return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize("via", ["flags", "environment"])
def test_health_metrics_and_json_logs(cluster, controller_process, kubeconfig, via):
    sc.setup(cluster, statefulset=0, deployment=1)
    health, metrics_port = free_port(), free_port()
    values = {"KUBECONFIG": kubeconfig, "WATCH_NAMESPACE": cluster.ns, "POLL_INTERVAL": "200ms",
              "HEALTH_ADDRESS": f"127.0.0.1:{health}", "METRICS_ADDRESS": f"127.0.0.1:{metrics_port}",
              "LOG_FORMAT": "json", "LOG_LEVEL": "info", "RESTORE_TIMEOUT": "1m", "LOCK_TTL": "5m",
              "CACHE_STORAGE_CLASS": "fast-local", "LEADER_ELECTION": "true", "LEADER_ELECTION_NAMESPACE": cluster.ns,
              "MOVER_START_TIMEOUT": "1m", "EXTRA_SCALE_KINDS": "argoproj.io/v1alpha1/Rollout"}
    if via == "flags":
        args = tuple(a for name, value in values.items() if name != "LEADER_ELECTION"
                     for a in (f"--{FLAG[name]}", value)) + ("--leader-election",)
        proc = controller_process(args=args)
    else:
        proc = controller_process(args=(), env_extra=values)
    wait_for(lambda: get(f"http://127.0.0.1:{health}/healthz")[0] == 200, message="/healthz")
    assert get(f"http://127.0.0.1:{health}/readyz")[0] == 200
    before = get(f"http://127.0.0.1:{metrics_port}/metrics")[1]
    assert "pvc_restore_poll_duration_seconds" in before
    cluster.kube.create(k.PVC_RESTORES, model.manifest("r1", cluster.ns, model.Spec(pvc="data")), cluster.ns)
    done = sc.wait_finished(cluster, "r1")
    record = wait_for(lambda: cluster.simulator_record(done["status"]["replicationDestination"]),
                      message="the simulator's record (written after the destination's status)")
    assert record["cacheStorageClassName"] == "fast-local"
    lease = cluster.kube.get(k.LEASES, "pvc-restore-controller", cluster.ns)
    assert lease["spec"]["holderIdentity"]
    after = wait_for(lambda: (lambda t: t if metric(t, "pvc_restore_restores_finished_total", result="succeeded")
                              > metric(before, "pvc_restore_restores_finished_total", result="succeeded") else None)(
        get(f"http://127.0.0.1:{metrics_port}/metrics")[1]), message="the finished counter to move")
    assert metric(after, "pvc_restore_restores_started_total") >= 1
    assert metric(after, "pvc_restore_phase_duration_seconds_count", phase="Restore") >= 1
    assert metric(after, "pvc_restore_leader") == 1
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    lines = [json.loads(line) for line in proc.log_path.read_text().splitlines() if line.startswith("{")]
    finished = [line for line in lines if line.get("restore") == "r1" and line.get("phase") == "Finished"]
    assert finished and finished[0]["pvc"] == "data" and finished[0]["namespace"] == cluster.ns


FLAG = {"KUBECONFIG": "kubeconfig", "WATCH_NAMESPACE": "namespace", "POLL_INTERVAL": "poll-interval",
        "HEALTH_ADDRESS": "health-address", "METRICS_ADDRESS": "metrics-address", "LOG_FORMAT": "log-format",
        "LOG_LEVEL": "log-level", "RESTORE_TIMEOUT": "restore-timeout", "LOCK_TTL": "lock-ttl",
        "CACHE_STORAGE_CLASS": "cache-storage-class", "LEADER_ELECTION_NAMESPACE": "leader-election-namespace",
        "MOVER_START_TIMEOUT": "mover-start-timeout", "EXTRA_SCALE_KINDS": "extra-scale-kind"}


@pytest.mark.parametrize("args,message", [
    (("--poll-interval", "soon"), "'soon' is not a duration"),
    (("--restore-timeout", "-5m"), "is not a duration"),
    (("--mover-start-timeout", "0"), "--mover-start-timeout"),
    (("--extra-scale-kind", "Rollout"), "is not GROUP/VERSION/KIND"),
    (("--extra-scale-kind", "../x/v1/Rollout"), "is not a valid Kubernetes apiVersion"),
    (("--log-format", "xml"), "'xml' is not one of"),
    (("--metrics-address", "8080"), "is not host:port"),
    (("--leader-election", "--renew-deadline", "20s"), "--retry-period < --renew-deadline < --lease-duration"),
])
def test_bad_flags_exit_2_with_a_message(controller_process, args, message):
    proc = controller_process(args=args)
    assert proc.wait(timeout=30) == 2
    assert message in proc.log_path.read_text()


@pytest.mark.parametrize("level,shown", [("DEBUG", "DEBUG"), ("warn", None), ("Warning", None), ("info", None),
                                         ("ERROR", None)])
def test_log_level_any_case_and_warn_are_accepted(tmp_path, level, shown):
    """No control plane: a kubeconfig that does not exist gets past option parsing and fails on credentials (exit 1),
    which shows the level was accepted (a refused option exits 2 before anything runs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    env.update(LOG_LEVEL=level, KUBECONFIG=str(tmp_path / "missing.kubeconfig"), HOME=str(tmp_path),
               HEALTH_ADDRESS="", METRICS_ADDRESS="")
    proc = subprocess.run([sys.executable, "-m", "controller"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=str(REPO))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "cannot load Kubernetes credentials" in output, output
    assert "Invalid value" not in output
    if shown:
        assert f" {shown} " in output, output  # the level took effect: debug lines are logged


@pytest.mark.parametrize("via", ["environment", "flag"])
def test_unknown_log_level_exits_2_listing_the_accepted_ones(tmp_path, via):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    env.update(KUBECONFIG=str(tmp_path / "missing.kubeconfig"), HOME=str(tmp_path))
    args = ["--log-level", "verbose"] if via == "flag" else []
    if via == "environment":
        env["LOG_LEVEL"] = "verbose"
    proc = subprocess.run([sys.executable, "-m", "controller", *args], env=env, capture_output=True, text=True,
                          timeout=60, cwd=str(REPO))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert ("'verbose' is not a log level; use one of debug, info, warning (or warn), error (in any case)"
            in proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr


def leader_of(cluster, lease_ns):
    lease = cluster.kube.get_or_none(k.LEASES, "pvc-restore-controller", lease_ns)
    return ((lease or {}).get("spec") or {}).get("holderIdentity")


def test_leader_election_failover_and_sigterm(cluster, controller_process, kubeconfig):
    sc.setup(cluster, delay=4.0)
    timing = ("--leader-election", "--leader-election-namespace", cluster.ns, "--lease-duration", "4s",
              "--renew-deadline", "3s", "--retry-period", "0.5s")
    procs = {f"r{i}": controller_process(extra=(*timing, "--leader-election-id", f"r{i}")) for i in range(3)}
    leader = wait_for(lambda: leader_of(cluster, cluster.ns), message="a leader")
    time.sleep(1.5)
    assert leader_of(cluster, cluster.ns) == leader, "leadership must be stable"
    cluster.kube.create(k.PVC_RESTORES, model.manifest("r1", cluster.ns, model.Spec(pvc="data")), cluster.ns)
    sc.wait_phase(cluster, "r1", "Restore")
    killed_at = time.monotonic()
    procs[leader].send_signal(signal.SIGKILL)
    new_leader = wait_for(lambda: (lambda h: h if h and h != leader else None)(leader_of(cluster, cluster.ns)),
                          timeout=30, message="another replica to take over")
    took_over = time.monotonic() - killed_at
    # The Lease's 4 s, a retry period, and slack for a loaded 2-core machine (three controllers, the control plane
    # and a restore share it).
    assert took_over < 4 + 0.5 + 4, f"took {took_over:.1f}s"
    restore = sc.wait_finished(cluster, "r1")
    assert restore["status"].get("error") is None
    sc.assert_cleaned_up(cluster)
    # Exactly one replica acted: only leaders log restore phases.
    actors = {name for name, p in procs.items() if '"phase"' in p.log_path.read_text() or "phase=" in
              p.log_path.read_text()}
    assert actors <= {leader, new_leader}
    # SIGTERM the new leader: exits 0 quickly and releases the lease; the last replica takes over at once.
    procs[new_leader].send_signal(signal.SIGTERM)
    assert procs[new_leader].wait(timeout=15) == 0
    last = next(n for n in procs if n not in (leader, new_leader))
    # It released the Lease before it exited (unreleased, it would name the new leader until it expired, 4 s after
    # its last renewal): cleared, or already taken by the last replica.
    assert leader_of(cluster, cluster.ns) in (None, "", last), cluster.kube.get(k.LEASES, "pvc-restore-controller",
                                                                                cluster.ns)
    wait_for(lambda: leader_of(cluster, cluster.ns) == last, timeout=30, message="the last replica to lead")


def test_sigterm_mid_restore_then_restart_finishes(cluster, controller_process):
    sc.setup(cluster, delay=3.0)
    proc = controller_process()
    cluster.kube.create(k.PVC_RESTORES, model.manifest("r1", cluster.ns, model.Spec(pvc="data")), cluster.ns)
    sc.wait_phase(cluster, "r1", "Restore")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert time.monotonic() - started < 5
    assert cluster.kube.get(k.PVC_RESTORES, "r1", cluster.ns)["status"]["phase"] == "Restore"
    controller_process()
    assert sc.wait_finished(cluster, "r1")["status"].get("error") is None
    sc.assert_cleaned_up(cluster)


def chart_controller_env(control_plane, *sets: str) -> dict[str, str]:
    """The controller's environment exactly as the chart renders it (release namespace "ops")."""
    rendered = subprocess.run([str(control_plane.bin / "helm"), "template", "pr", str(CHART), "-n", "ops", *sets],
                              capture_output=True, text=True, check=True).stdout
    [deployment] = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment"]
    return {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
            if "value" in e}


def test_old_and_new_pod_with_the_chart_defaults_never_both_act(cluster, control_plane, controller_process,
                                                               kubeconfig):
    """A rolling update or a node drain, as the chart runs it by default: the new pod starts while the old one still
    runs mid-restore, then the old one gets SIGTERM. At no moment do both act (pvc_restore_leader, sampled every
    0.1s, is what makes the loop act), and the restore finishes once, by whichever leads."""
    env = chart_controller_env(control_plane)
    # What the pod adds: POD_NAMESPACE from the downward API (the release namespace; here the test's namespace) and a
    # way to reach the API server. Faster polls keep the test short; everything else is the chart's.
    env.update(POD_NAMESPACE=cluster.ns, KUBECONFIG=kubeconfig, WATCH_NAMESPACE=cluster.ns, POLL_INTERVAL="0.2")
    sc.setup(cluster, delay=3.0)
    ports: dict[str, int] = {}

    def start(name: str):
        ports[name] = free_port()
        return controller_process(args=(), env_extra={**env, "HEALTH_ADDRESS": f"127.0.0.1:{free_port()}",
                                                      "METRICS_ADDRESS": f"127.0.0.1:{ports[name]}"})

    samples: list[tuple[float, dict[str, float]]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append((time.monotonic(), {name: metric(get(f"http://127.0.0.1:{port}/metrics")[1],
                                                            "pvc_restore_leader")
                                               for name, port in list(ports.items())}))
            time.sleep(0.1)

    old = start("old")
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        wait_for(lambda: samples and samples[-1][1].get("old") == 1, message="the old pod to act")
        cluster.kube.create(k.PVC_RESTORES, model.manifest("r1", cluster.ns, model.Spec(pvc="data")), cluster.ns)
        sc.wait_phase(cluster, "r1", "Restore")
        new = start("new")
        wait_for(lambda: "started:" in new.log_path.read_text(), message="the new pod to start")
        time.sleep(2.5)  # a few of the new pod's polls and lease rounds beside the old one
        old.send_signal(signal.SIGTERM)
        assert old.wait(timeout=30) == 0
        restore = sc.wait_finished(cluster, "r1")
        wait_for(lambda: samples and samples[-1][1].get("new") == 1, message="the new pod to lead")
    finally:
        done.set()
        sampler.join(timeout=10)
    both = [t for t, values in samples if values.get("old") == 1 and values.get("new") == 1]
    assert not both, f"both pods acted at once for {len(both)} samples ({both[-1] - both[0]:.1f}s)"
    assert restore["status"].get("error") is None, restore["status"]
    sc.assert_cleaned_up(cluster)
    assert any(values.get("old") == 1 for _, values in samples), "the old pod led while the new one started"
    # Both ran with leader election on the Lease in the release namespace; the new one took over after the old one.
    for proc in (old, new):
        assert f"(lease {cluster.ns}/pvc-restore-controller)" in proc.log_path.read_text()
    assert "released lease" in old.log_path.read_text()
    assert "acquired leadership" in new.log_path.read_text()
