"""Workloads without a /scale subresource: DaemonSets (stopped by a nodeSelector no node matches, given back their
own), CronJobs (suspended, resumed as they were; their running Jobs waited for or failing the restore), bare Pods
(deleted only when allowed). Including a controller crash at each new step."""

from __future__ import annotations

import pytest

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import model
from tests import scenario as sc
from tests.helpers import wait_for


def create(cluster, name="r1", **spec):
    return cluster.kube.create(k.PVC_RESTORES, model.manifest(name, cluster.ns, model.Spec.from_dict(
        {"pvc": sc.PVC, **spec})), cluster.ns)


def daemonset(cluster, name="agent", node_selector=None):
    template = cluster.pod_template(name, sc.PVC)
    if node_selector is not None:
        template["spec"]["nodeSelector"] = node_selector
    return cluster.kube.create(k.DAEMONSETS, {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": cluster.ns},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": template}}, cluster.ns)


def cronjob(cluster, name="nightly", suspend=None, pvc=sc.PVC):
    spec = {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {
        "spec": {**cluster.pod_template(name, pvc)["spec"], "restartPolicy": "Never"}}}}}
    if suspend is not None:
        spec["suspend"] = suspend
    return cluster.kube.create(k.CRONJOBS, {"apiVersion": "batch/v1", "kind": "CronJob",
                                            "metadata": {"name": name, "namespace": cluster.ns}, "spec": spec},
                               cluster.ns)


def node_selector(cluster, name="agent"):
    return cluster.kube.get(k.DAEMONSETS, name, cluster.ns)["spec"]["template"]["spec"].get("nodeSelector")


@pytest.mark.parametrize("original", [None, {"kubernetes.io/os": "linux"}])
def test_daemonset_and_cronjob_are_stopped_and_given_back(cluster, controller, original):
    sc.setup(cluster, statefulset=0, deployment=1)
    daemonset(cluster, node_selector=original)
    cronjob(cluster, suspend=None)
    cronjob(cluster, name="weekly", suspend=False)
    cronjob(cluster, name="unrelated", pvc="other")
    expected_pods = 3  # the Deployment's pod and one per kwok node (they are labelled kubernetes.io/os=linux)
    cluster.wait_running(expected_pods, pvc=sc.PVC)
    controller()
    create(cluster)
    restore = sc.wait_finished(cluster, "r1")
    assert restore["status"].get("error") is None, restore["status"]
    stopped = {(s["kind"], s["name"]): s for s in restore["status"]["stopped"]}
    assert set(stopped) == {("DaemonSet", "agent"), ("CronJob", "nightly"), ("CronJob", "weekly")}
    assert stopped[("CronJob", "weekly")]["original"] == "false"  # the API server defaults suspend to false
    record = cluster.simulator_record(restore["status"]["replicationDestination"])
    assert record["podsMountingPVC"] == []
    assert node_selector(cluster) == original
    assert cluster.kube.get(k.CRONJOBS, "nightly", cluster.ns)["spec"].get("suspend") in (None, False)
    assert cluster.kube.get(k.CRONJOBS, "weekly", cluster.ns)["spec"]["suspend"] is False
    cluster.wait_running(expected_pods, pvc=sc.PVC)


def test_daemonset_pods_are_gone_while_the_mover_runs(cluster, controller):
    sc.setup(cluster, statefulset=0, deployment=0, delay=8.0)  # time to look at the Restore phase while it lasts
    daemonset(cluster)
    cluster.wait_running(2, pvc=sc.PVC)
    controller()
    create(cluster)
    sc.wait_phase(cluster, "r1", "Restore")
    assert cluster.pods(pvc=sc.PVC) == []
    assert node_selector(cluster) == {"pvc-restore.homelab-helper.benfiola.com/stopped-for-restore": "r1"}
    sc.wait_finished(cluster, "r1")
    assert node_selector(cluster) is None
    cluster.wait_running(2, pvc=sc.PVC)


def test_bare_pod_is_deleted_only_when_allowed(cluster, controller):
    sc.setup(cluster, statefulset=0, deployment=1)
    template = cluster.pod_template("debug", sc.PVC)
    cluster.kube.create(k.PODS, {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"],
                                 "metadata": {"name": "debug", "namespace": cluster.ns}}, cluster.ns)
    cluster.wait_running(2, pvc=sc.PVC)
    controller()
    create(cluster, "refused")
    refused = sc.wait_finished(cluster, "refused")
    assert "Pod debug mounts the PVC but has no controller" in refused["status"]["error"]
    assert cluster.kube.get_or_none(k.PODS, "debug", cluster.ns) is not None
    create(cluster, "allowed", deleteBarePods=True)
    allowed = sc.wait_finished(cluster, "allowed")
    assert allowed["status"].get("error") is None
    assert [s["method"] for s in allowed["status"]["stopped"]] == ["delete"]
    assert cluster.kube.get_or_none(k.PODS, "debug", cluster.ns) is None
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 1


def stuck_job(cluster, name="migrate"):
    """A Job whose pod mounts the PVC and stays Pending (no node matches it): a Job still running."""
    spec = {**cluster.pod_template(name, sc.PVC)["spec"], "restartPolicy": "Never",
            "nodeSelector": {"example.com/none": "x"}}
    cluster.kube.create(k.JOBS, {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
                                 "spec": {"template": {"spec": spec}, "backoffLimit": 0}}, cluster.ns)
    # (The Job's own pod: the setup's Deployment has one mounting the PVC already.)
    wait_for(lambda: [p for p in cluster.pods(pvc=sc.PVC)
                      if (p["metadata"].get("labels") or {}).get("job-name") == name], message="the job's pod")


def test_running_jobs_fail_the_restore_when_asked(cluster, controller):
    sc.setup(cluster, statefulset=0, deployment=1)
    stuck_job(cluster)
    controller()
    create(cluster, runningJobs="Fail")
    restore = sc.wait_finished(cluster, "r1")
    assert "Jobs are running on the PVC" in restore["status"]["error"]
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 1


def test_running_jobs_are_waited_for(cluster, controller):
    sc.setup(cluster, statefulset=0, deployment=1)
    stuck_job(cluster)
    controller()
    create(cluster)
    wait_for(lambda: "running Jobs" in ((cluster.kube.get(k.PVC_RESTORES, "r1", cluster.ns).get("status") or {})
                                        .get("message") or ""), message="ScaleDown to wait for the Job")
    cluster.kube.delete(k.JOBS, "migrate", cluster.ns, propagation="Foreground")
    restore = sc.wait_finished(cluster, "r1")
    assert restore["status"].get("error") is None
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 1


@pytest.mark.parametrize("point", ["stopped:agent", "stopped:nightly", "unstopped:nightly", "unstopped:agent"])
def test_crash_at_each_new_step(cluster, controller_process, point):
    sc.setup(cluster, statefulset=0, deployment=1)
    daemonset(cluster)
    cronjob(cluster, suspend=False)
    cluster.wait_running(3, pvc=sc.PVC)
    create(cluster)
    crashed = controller_process(crash_at=point)
    assert crashed.wait(timeout=90) == -9, f"did not reach {point}"
    controller_process()
    restore = sc.wait_finished(cluster, "r1")
    assert restore["status"].get("error") is None, restore["status"]
    assert node_selector(cluster) is None
    assert cluster.kube.get(k.CRONJOBS, "nightly", cluster.ns)["spec"]["suspend"] is False
    assert cluster.simulator_record(restore["status"]["replicationDestination"])["podsMountingPVC"] == []
    cluster.wait_running(3, pvc=sc.PVC)


def test_dry_run_and_describe_show_the_extra_actions(cluster, controller, kubeconfig):
    from click.testing import CliRunner

    from kubectl_pvc_restore.cli import cli

    sc.setup(cluster, statefulset=0, deployment=1, source=False)
    cluster.replication_source(sc.SOURCE, sc.PVC, extra={"moverSecurityContext": None})
    daemonset(cluster)
    cronjob(cluster)
    cluster.wait_running(3, pvc=sc.PVC)

    def run(*args):
        return CliRunner().invoke(cli, [*args, "--kubeconfig", kubeconfig, "-n", cluster.ns])

    dry = run("start", "data", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "DaemonSet agent: stopped with a nodeSelector no node matches" in dry.output
    assert "CronJob" in dry.output and "nightly: suspended, then resumed" in dry.output
    assert "sets no moverSecurityContext" in dry.output
    assert sc.restores(cluster) == [] and node_selector(cluster) is None
    controller()
    name = run("start", "data", "--wait").output.splitlines()[0]
    described = run("describe", name)
    assert "Also stopped:" in described.output and "DaemonSet agent" in described.output
