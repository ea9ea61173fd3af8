"""Restores through the fault-injecting proxy (issue 13): the real controller process talks to the API server through
devtools/fault_proxy.py, which spoils a share of its requests with one kind of fault at a time (and all kinds mixed).
Every restore must still end Finished without an error, with every workload back at its recorded replicas, no
ReplicationDestination or lock left, the mover run exactly once with no pod mounting the PVC, and the controller's
API token nowhere in what it logged, recorded or reported."""

from __future__ import annotations

import json

import pytest

from devtools import mover_simulator
from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore.model import RESTORE_ANNOTATION
from tests import scenario as sc
from tests.chaos import secrets_absent
from tests.helpers import ROLE_BINDINGS, wait_for, wait_for_rbac

#: (fault kinds, share of the controller's requests spoiled)
CASES = {
    "500": (["500"], 0.3),
    "429": (["429"], 0.15),
    "409": (["409"], 0.5),  # updates only: a share of all requests would be too few to matter
    "stall": (["stall"], 0.15),  # each held 2.5 s, past the controller's 1 s timeout, after the write was applied
    "reset": (["reset"], 0.3),
    "latency": (["latency"], 0.5),
    "mixed": (["500", "429", "409", "stall", "reset", "latency"], 0.25),
}


def check_restore(cluster, ledger, restore) -> None:
    status = restore["status"]
    ledger.check(status.get("error") is None, f"the restore failed: {status.get('error')}")
    ledger.check(status.get("restoredSnapshot") == "bbbb2222", f"restored {status.get('restoredSnapshot')}")
    owners = {(o["kind"], o["name"]): o["replicas"] for o in status.get("pvcOwners") or []}
    ledger.check(owners == {("Deployment", "web"): 3, ("StatefulSet", "db"): 2}, f"recorded owners {owners}")
    ledger.check(len(sc.restores(cluster)) == 1, "the request created more than one PVCRestore")
    annotations = cluster.kube.get(k.PVCS, sc.PVC, cluster.ns)["metadata"].get("annotations") or {}
    ledger.check(RESTORE_ANNOTATION not in annotations, "the trigger annotation was left on the PVC")
    record = cluster.kube.get(k.CONFIGMAPS, mover_simulator.RECORD, cluster.ns)["data"]
    started = [key for key in record if key.endswith(".started")]
    ledger.check(started == [status["replicationDestination"] + ".started"], f"mover runs: {started}")
    ledger.check(json.loads(record[status["replicationDestination"]])["podsMountingPVC"] == [],
                 "the mover ran while a workload pod mounted the PVC")
    sc.assert_cleaned_up(cluster)


@pytest.mark.parametrize("case", list(CASES))
def test_restore_survives_api_faults(cluster, proxied_controller, fault_proxy, ledger, case):
    kinds, rate = CASES[case]
    sc.setup(cluster, delay=1.0)
    controller = proxied_controller()
    fault_proxy.reset()
    fault_proxy.configure(rate=rate, kinds=kinds)
    try:
        sc.annotate(cluster, "1")
        try:
            restore = sc.wait_finished(cluster, timeout=150)
        except AssertionError as exc:  # say where it stood: the restore's status and what the controller said last
            statuses = [(r["metadata"]["name"], r.get("status")) for r in sc.restores(cluster)]
            log_tail = "\n".join(controller.log_path.read_text().splitlines()[-60:])
            raise AssertionError(f"{exc}\nrestores: {statuses}\ncontroller log (last 60 lines):\n{log_tail}") from None
    finally:
        stats = fault_proxy.configure(rate=0.0)
    ledger.count("restores run")
    for kind, n in stats["faults"].items():
        ledger.count("faults injected", n, kind=kind)
    spoiled = sum(stats["faults"].get(kind, 0) for kind in kinds)
    assert spoiled >= 3, f"too few faults to prove anything: {stats['faults']}"
    check_restore(cluster, ledger, restore)
    events = json.dumps(cluster.kube.list(k.Resource("v1", "Event", "events"), cluster.ns))
    secrets_absent(ledger, {"the controller's API token": proxied_controller.token}, {
        "the controller's log": controller.log_path.read_text(), "the namespace's events": events,
        "the restore's status": json.dumps(restore["status"])})
    assert "Traceback" not in controller.log_path.read_text(), controller.log_path.read_text()[-3000:]


def test_a_permission_refused_for_a_moment_does_not_fail_the_restore(cluster, proxied_controller, ledger):
    """403 for a few seconds, as from an API server whose authorizer is still loading RBAC after a restart (or a Role
    being re-applied): the restore waits it out (--forbidden-grace) instead of failing."""
    import time

    roles = k.Resource("rbac.authorization.k8s.io/v1", "Role", "roles")
    sc.setup(cluster, delay=0.5)
    role = cluster.kube.get(roles, "controller-role", cluster.ns)
    full_rules = json.loads(json.dumps(role["rules"]))
    for rule in role["rules"]:
        if any(r.endswith("/scale") for r in rule.get("resources", [])):
            rule["verbs"] = [v for v in rule["verbs"] if v not in ("patch", "update")]
    cluster.kube.replace(roles, role)
    [subject] = cluster.kube.get(ROLE_BINDINGS, "controller-role", cluster.ns)["subjects"]
    scale = {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch"]}
    wait_for_rbac(cluster.kube, cluster.ns, subject["namespace"], subject["name"], scale, allowed=False,
                  message="RBAC to apply the narrowed Role before the controller starts")
    controller = proxied_controller("--forbidden-grace", "60s")
    sc.annotate(cluster, "1")
    refused = time.monotonic()
    wait_for(lambda: "permission denied" in controller.log_path.read_text(), timeout=60,
             message="the controller to be refused the scale")
    time.sleep(3)
    role = cluster.kube.get(roles, "controller-role", cluster.ns)
    role["rules"] = full_rules
    cluster.kube.replace(roles, role)
    restore = sc.wait_finished(cluster, timeout=90)
    ledger.count("restores run")
    ledger.count("permission refusals waited out")
    assert time.monotonic() - refused < 60, "the restore should not have needed the whole grace"
    check_restore(cluster, ledger, restore)
