"""The soak (issue 13): many restores over 20 PVCs in 3 namespaces, requested at random through the annotation and the
CLI while others run, with the real controller process behind the fault-injecting proxy (a share of its requests
spoiled, all kinds mixed) and SIGKILLed at random moments (restarted at once). After each restore finishes:

- it is the only restore its request made, it finished without an error and restored the snapshot asked for;
- the mover ran once for it, and no workload pod mounted the PVC when it started;
- its ReplicationDestination is gone, and once no other restore of the PVC is pending its workload is back at the
  replicas it had and the lock is gone.

At the end: restores of one PVC never overlapped (their ScaleDown-to-Finished spans, from status.timeline, and their
movers' runs), every request made exactly one restore, and neither the controller's API token nor a restic repository
password appears in any controller log, Event, status or CLI output.

``--soak-restores N`` sets the number of restores (CI runs the short form), ``--fault-rate F`` the share of spoiled
requests. The random choices come from one seed, printed, so a failure can be replayed: ``PVC_RESTORE_SOAK_SEED``."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from devtools import mover_simulator
from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import locks, volsync
from kubectl_pvc_restore.model import RESTORE_ANNOTATION
from tests.chaos import grant_controller, secrets_absent
from tests.helpers import Cluster, cli, wait_for
from tests.reliability import soak_budget
from tests.scenario import SNAPSHOTS

NAMESPACES = 3
PVCS = 20
IN_FLIGHT = 6
#: selector -> the snapshot it must restore (SNAPSHOTS: aaaa1111 05-01, bbbb2222 05-02, cccc3333 05-03)
ANNOTATIONS = {"": "cccc3333", "1": "bbbb2222", "2": "aaaa1111", "2024-05-02T12:00:00Z": "bbbb2222"}
CLI_ARGS = {("--latest",): "cccc3333", ("--previous", "1"): "bbbb2222", ("--previous", "2"): "aaaa1111",
            ("--as-of", "2024-05-01T12:00:00Z"): "aaaa1111"}
EVENTS = k.Resource("v1", "Event", "events")
SECRETS = k.Resource("v1", "Secret", "secrets")


@dataclass
class Volume:
    ns: str
    pvc: str
    app: str
    replicas: int
    requests: list[dict[str, Any]] = field(default_factory=list)  # {"via", "expect", "restore"}


def parse(at: str) -> dt.datetime:
    return dt.datetime.fromisoformat(at.replace("Z", "+00:00"))


def span(restore: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    """From entering ScaleDown (or Initialize, if it never scaled) to Finished."""
    timeline = {e["phase"]: parse(e["at"]) for e in (restore.get("status") or {}).get("timeline") or []}
    return timeline.get("ScaleDown", timeline["Initialize"]), timeline["Finished"]


@pytest.mark.soak
def test_soak(request, kube, control_plane, kubeconfig, namespace, mover_simulator, fault_proxy, proxied_controller,
              ledger):
    total = request.config.getoption("--soak-restores")
    rate = request.config.getoption("--fault-rate")
    seed = int(os.environ.get("PVC_RESTORE_SOAK_SEED") or secrets.randbelow(10**6))
    print(f"soak: {total} restores, fault rate {rate}, seed {seed}")
    rnd = random.Random(seed)

    # -- set-up: 3 namespaces, 20 PVCs, each mounted by a Deployment and backed up by a restic ReplicationSource ----
    extra = [f"{namespace}-{i}"[:63] for i in range(1, NAMESPACES)]
    for ns in extra:
        kube.create(k.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    namespaces = [namespace, *extra]
    try:
        run_soak(request, kube, control_plane, kubeconfig, namespaces, fault_proxy, proxied_controller, ledger, rnd,
                 total, rate)
    finally:
        for ns in extra:
            kube.delete(k.NAMESPACES, ns)
            for pv in kube.list(k.PVS, label_selector=f"test-namespace={ns}"):
                kube.delete(k.PVS, pv["metadata"]["name"])


def run_soak(request, kube, control_plane, kubeconfig, namespaces, fault_proxy, proxied_controller, ledger, rnd, total,
             rate) -> None:
    clusters = {ns: Cluster(kube, ns) for ns in namespaces}
    passwords: dict[str, str] = {}
    volumes: list[Volume] = []
    for i in range(PVCS):
        ns = namespaces[i % len(namespaces)]
        c = clusters[ns]
        v = Volume(ns, f"data-{i}", f"app-{i}", 1 + i % 2)
        c.pvc(v.pvc)
        c.deployment(v.app, replicas=v.replicas, pvc=v.pvc)
        c.replication_source(f"src-{i}", v.pvc)
        passwords[f"restic password of src-{i}"] = password = secrets.token_urlsafe(24)
        kube.create(SECRETS, {"apiVersion": "v1", "kind": "Secret",
                              "metadata": {"name": f"src-{i}-restic", "namespace": ns},
                              "stringData": {"RESTIC_REPOSITORY": f"s3:http://minio.invalid/bucket/src-{i}",
                                             "RESTIC_PASSWORD": password}}, ns)
        volumes.append(v)
    for c in clusters.values():
        c.simulate(snapshots={f"src-{i}-restic": SNAPSHOTS for i in range(PVCS)}, delay=0.5)
    for ns in namespaces[1:]:
        grant_controller(kube, control_plane, ns, namespaces[0])
    for ns, c in clusters.items():
        c.wait_running(sum(v.replicas for v in volumes if v.ns == ns), timeout=180)

    # -- the run ----------------------------------------------------------------------------------------------------
    args = ("--history-max-count", "0")
    procs = [proxied_controller(*args, namespaces=tuple(namespaces))]
    fault_proxy.reset()
    fault_proxy.configure(rate=rate, kinds=["500", "429", "409", "stall", "reset", "latency"])
    outputs: dict[str, str] = {}
    by_name: dict[tuple[str, str], tuple[Volume, dict[str, Any]]] = {}
    pending: dict[tuple[str, str], dict[str, Any]] = {}  # annotation requests not yet seen as a PVCRestore
    checked: set[tuple[str, str]] = set()
    issued = 0
    kill_every = 12.0
    next_kill = time.monotonic() + rnd.uniform(4, kill_every)
    deadline = time.monotonic() + soak_budget(request.config)
    try:
        while True:
            assert time.monotonic() < deadline, (f"the soak did not finish in time: {issued}/{total} requested, "
                                                 f"{len(checked)} checked, pending {sorted(pending)}")
            items = {ns: kube.list(k.PVC_RESTORES, ns) for ns in namespaces}
            known = {(ns, r["metadata"]["name"]): r for ns, rs in items.items() for r in rs}
            # annotation requests: the restore they made, once the controller has made it
            for key, req in list(pending.items()):
                v = req["volume"]
                new = [name for (ns, name), r in known.items() if ns == v.ns and r["spec"]["pvc"] == v.pvc
                       and (ns, name) not in by_name]
                annotations = kube.get(k.PVCS, v.pvc, v.ns)["metadata"].get("annotations") or {}
                if RESTORE_ANNOTATION not in annotations and new:
                    ledger.check(len(new) == 1, f"one annotation on {v.ns}/{v.pvc} made restores {new}")
                    req["restore"] = new[0]
                    by_name[(v.ns, new[0])] = (v, req)
                    del pending[key]
            stray = [key for key, r in known.items() if key not in by_name
                     and not any(p["volume"].ns == key[0] and p["volume"].pvc == r["spec"]["pvc"]
                                 for p in pending.values())]
            ledger.check(not stray, f"restores nobody asked for: {stray}")
            for key, r in known.items():
                if key in by_name and key not in checked and finished(r):
                    check_finished(kube, clusters[key[0]], ledger, by_name, known, pending, key, r)
                    checked.add(key)
            running = len(pending) + sum(1 for key in by_name if key not in checked)
            if issued >= total and running == 0:
                break
            if issued < total and running < IN_FLIGHT:
                free = [v for v in volumes if (v.ns, v.pvc) not in pending]
                busy = [v for v in free if any(v2 is v for key, (v2, _) in by_name.items() if key not in checked)]
                # Often a PVC that is being restored: the new restore must wait for the lock, never overlap.
                v = rnd.choice(busy if busy and rnd.random() < 0.4 else free)
                if v in busy:
                    ledger.count("requests queued behind a running restore")
                if rnd.random() < 0.5:
                    selector, expect = rnd.choice(list(ANNOTATIONS.items()))
                    req = {"via": "annotation", "expect": expect, "volume": v}
                    pending[(v.ns, v.pvc)] = req
                    kube.patch(k.PVCS, v.pvc, v.ns, {"metadata": {"annotations": {RESTORE_ANNOTATION: selector}}})
                else:
                    flags, expect = rnd.choice(list(CLI_ARGS.items()))
                    result = cli("start", v.pvc, *flags, "-o", "name", kubeconfig=kubeconfig, namespace=v.ns)
                    outputs[f"start {v.pvc} {' '.join(flags)}"] = result.output
                    ledger.check(result.exit_code == 0, f"start {v.pvc} {flags} failed: {result.output}")
                    name = result.output.strip().rpartition("/")[2]
                    req = {"via": "cli", "expect": expect, "volume": v, "restore": name}
                    by_name[(v.ns, name)] = (v, req)
                v.requests.append(req)
                issued += 1
            if time.monotonic() >= next_kill and issued < total:
                procs[-1].kill()
                procs[-1].wait()
                ledger.count("controller kills")
                procs.append(proxied_controller(*args, namespaces=tuple(namespaces)))
                next_kill = time.monotonic() + rnd.uniform(4, kill_every)
            time.sleep(0.3)
    finally:
        stats = fault_proxy.configure(rate=0.0)
        for kind, n in stats["faults"].items():
            ledger.count("faults injected", n, kind=kind)

    # -- at the end: nothing overlapped, nothing left, every request made exactly one restore -----------------------
    restores = {key: r for ns in namespaces for r in kube.list(k.PVC_RESTORES, ns)
                for key in [(ns, r["metadata"]["name"])]}
    for v in volumes:
        mine = [r for (ns, _), r in restores.items() if ns == v.ns and r["spec"]["pvc"] == v.pvc]
        ledger.check(len(mine) == len(v.requests),
                     f"{v.ns}/{v.pvc}: {len(v.requests)} requests made {len(mine)} restores")
        spans = sorted(span(r) for r in mine)
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            ledger.check(end <= start, f"two restores of {v.ns}/{v.pvc} overlapped ({end} > {start})")
        record = kube.get(k.CONFIGMAPS, mover_simulator.RECORD, v.ns)["data"] if mine else {}
        runs = sorted((parse(e["startedAt"]), parse(e["finishedAt"])) for r in mine
                      for e in [json.loads(record[volsync.destination_name(r["metadata"]["name"])])])
        for (_, end), (start, _) in zip(runs, runs[1:], strict=False):
            ledger.check(end <= start, f"two movers of {v.ns}/{v.pvc} overlapped")
        c = clusters[v.ns]
        ledger.check(c.replicas(k.DEPLOYMENTS, v.app) == v.replicas, f"{v.app} is not back at {v.replicas}")
    for ns, c in clusters.items():
        ledger.check(kube.list(k.REPLICATION_DESTINATIONS, ns) == [], f"ReplicationDestinations left in {ns}")
        left = [cm["metadata"]["name"] for cm in kube.list(k.CONFIGMAPS, ns)
                if cm["metadata"]["name"].startswith(locks.PREFIX)]
        ledger.check(left == [], f"locks left in {ns}: {left}")
        c.wait_running(sum(v.replicas for v in volumes if v.ns == ns), timeout=120)
    outputs["list -A"] = cli("list", "-A", kubeconfig=kubeconfig).output
    some = next(iter(restores))
    outputs["describe"] = cli("describe", some[1], kubeconfig=kubeconfig, namespace=some[0]).output
    texts = {f"CLI {what}": out for what, out in outputs.items()}
    texts.update({f"log of controller process {i}": p.log_path.read_text() for i, p in enumerate(procs)})
    texts.update({f"events in {ns}": json.dumps(kube.list(EVENTS, ns)) for ns in namespaces})
    texts["every restore's status"] = json.dumps([r.get("status") for r in restores.values()])
    secrets_absent(ledger, {"the controller's API token": proxied_controller.token, **passwords}, texts)
    for i, p in enumerate(procs):
        log = p.log_path.read_text()
        ledger.check("Traceback" not in log, f"controller process {i} logged a traceback")


def finished(r: dict[str, Any]) -> bool:
    return (r.get("status") or {}).get("phase") == "Finished" and not r["metadata"].get("finalizers")


def check_finished(kube, cluster, ledger, by_name, known, pending, key, r) -> None:
    """The invariants of one finished restore, checked as soon as it finished."""
    v, req = by_name[key]
    status = r["status"]
    ledger.count("restores run")
    ledger.check(status.get("error") is None, f"{key[1]} failed: {status.get('error')}")
    ledger.check(status.get("restoredSnapshot") == req["expect"],
                 f"{key[1]} ({req['via']}) restored {status.get('restoredSnapshot')}, not {req['expect']}")
    rd = status.get("replicationDestination") or volsync.destination_name(key[1])
    record = kube.get(k.CONFIGMAPS, mover_simulator.RECORD, v.ns)["data"]
    ledger.check(f"{rd}.started" in record and rd in record, f"{key[1]}: the mover never ran")
    ledger.check(json.loads(record[rd])["podsMountingPVC"] == [],
                 f"{key[1]}: the mover ran while a workload pod mounted {v.pvc}")
    ledger.check(kube.get_or_none(k.REPLICATION_DESTINATIONS, rd, v.ns) is None, f"{key[1]}: {rd} left behind")
    others = [k2 for k2, (v2, _) in by_name.items() if v2 is v and k2 != key and not finished(known.get(k2, {
        "metadata": {}}))] + [k2 for k2 in pending if k2 == (v.ns, v.pvc)]
    if not others:
        owners = {(o["kind"], o["name"]): o["replicas"] for o in status.get("pvcOwners") or []}
        ledger.check(owners == {("Deployment", v.app): v.replicas},
                     f"{key[1]} recorded {owners}, not {v.app}: {v.replicas}")
        wait_for(lambda: cluster.replicas(k.DEPLOYMENTS, v.app) == v.replicas, timeout=10,
                 message=f"{v.app} back at {v.replicas}")
        ledger.check(kube.get_or_none(k.CONFIGMAPS, locks.lock_name(v.pvc), v.ns) is None,
                     f"{key[1]}: the lock on {v.pvc} was left")
