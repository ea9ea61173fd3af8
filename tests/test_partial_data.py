"""Partial data: a restore that ends after the mover started writing never brings the workloads back silently onto a
half-overwritten PVC. It keeps them stopped (and the source paused, the PVC locked), says what to do next, and a
retry takes the record over; `scale-back` brings them back on purpose; `partialData: ScaleBack` is the old way."""

from __future__ import annotations

from click.testing import CliRunner

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import locks, model
from kubectl_pvc_restore.cli import cli
from tests import scenario as sc
from tests.helpers import wait_for


def held(cluster):
    """The workloads are stopped, the source paused, the PVC locked."""
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 0 and cluster.replicas(k.STATEFULSETS, "db") == 0
    assert cluster.kube.get(k.REPLICATION_SOURCES, sc.SOURCE, cluster.ns)["spec"].get("paused") is True
    assert cluster.kube.get_or_none(k.CONFIGMAPS, locks.lock_name(sc.PVC), cluster.ns) is not None
    assert cluster.kube.list(k.REPLICATION_DESTINATIONS, cluster.ns) == []


def cli_run(kubeconfig, cluster, *args):
    result = CliRunner().invoke(cli, [*args, "--kubeconfig", kubeconfig, "-n", cluster.ns],
                                prog_name="kubectl pvc-restore")
    assert "Traceback" not in result.output
    return result


def test_a_failed_mover_keeps_the_workloads_stopped_until_scale_back(cluster, controller, kubeconfig):
    sc.setup(cluster, result="Failed")
    controller()
    sc.create_restore(cluster)
    r1 = sc.wait_holding(cluster, "r1")
    status = r1["status"]
    assert status["dataIncomplete"] is True and status["moverStarted"]
    assert "the volsync mover failed" in status["error"] and "simulated failure" in status["error"]
    [condition] = [c for c in status["conditions"] if c["type"] == "DataIncomplete"]
    assert condition["status"] == "True"
    assert f"kubectl pvc-restore start data -n {cluster.ns}" in condition["message"]
    assert f"kubectl pvc-restore scale-back r1 -n {cluster.ns}" in condition["message"]
    assert model.FINALIZER in r1["metadata"]["finalizers"]
    held(cluster)
    shown = cli_run(kubeconfig, cluster, "describe", "r1")
    assert "Data:          INCOMPLETE" in shown.output and "scale-back r1" in shown.output

    result = cli_run(kubeconfig, cluster, "scale-back", "r1", "--wait", "--timeout", "60")
    assert result.exit_code == 0, result.output
    done = sc.wait_finished(cluster, "r1")
    assert done["status"]["scaledBackAt"] and done["status"]["dataIncomplete"] is True
    sc.assert_cleaned_up(cluster)
    again = cli_run(kubeconfig, cluster, "scale-back", "r1")
    assert again.exit_code == 0 and "already scaled back" in again.output


def test_a_retry_takes_the_held_workloads_over_and_brings_them_back(cluster, controller):
    sc.setup(cluster, result="Failed")
    controller()
    sc.create_restore(cluster, "r1", previous=1)
    sc.wait_holding(cluster, "r1")
    held(cluster)
    cluster.simulate(snapshots={sc.REPOSITORY: sc.SNAPSHOTS}, result="Successful")
    sc.create_restore(cluster, "r2", previous=1)
    r2 = sc.wait_finished(cluster, "r2")
    assert r2["status"].get("error") is None, r2["status"]
    assert r2["status"]["inheritedFrom"] == "r1"
    assert {(o["kind"], o["replicas"]) for o in r2["status"]["pvcOwners"]} == {("Deployment", 3), ("StatefulSet", 2)}
    r1 = sc.wait_finished(cluster, "r1")  # no longer holding: its finalizer is gone
    assert r1["status"]["handedOverTo"] == "r2"
    sc.assert_cleaned_up(cluster)


def test_cancel_after_the_mover_started_keeps_the_workloads_stopped(cluster, controller, kubeconfig):
    sc.setup(cluster, statefulset=0, deployment=2, result="Hang")
    controller()
    sc.create_restore(cluster)
    wait_for(lambda: (cluster.kube.get(k.PVC_RESTORES, "r1", cluster.ns).get("status") or {}).get("moverStarted"),
             message="the mover to start")
    result = cli_run(kubeconfig, cluster, "cancel", "r1", "--wait")
    assert result.exit_code == 1 and "holds the PVC" in result.output, result.output
    r1 = cluster.kube.get(k.PVC_RESTORES, "r1", cluster.ns)
    assert r1["metadata"]["deletionTimestamp"] and r1["status"]["dataIncomplete"] is True
    assert "deleted before it finished" in r1["status"]["error"]
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 0
    assert cli_run(kubeconfig, cluster, "scale-back", "r1", "--wait").exit_code == 0
    wait_for(lambda: cluster.kube.get_or_none(k.PVC_RESTORES, "r1", cluster.ns) is None, message="r1 gone")
    sc.assert_cleaned_up(cluster, statefulset=0, deployment=2)


def test_scale_back_is_still_an_option(cluster, controller):
    sc.setup(cluster, result="Failed")
    controller()
    sc.create_restore(cluster, partialData="ScaleBack")
    done = sc.wait_finished(cluster, "r1")
    assert done["status"]["dataIncomplete"] is True
    assert any(c["type"] == "DataIncomplete" and "scaled back onto it" in c["message"]
               for c in done["status"]["conditions"])
    sc.assert_cleaned_up(cluster)


def test_the_copy_timeout_counts_from_the_mover_start_and_holds(cluster, controller):
    sc.setup(cluster, statefulset=0, deployment=2, result="Hang")
    controller(restore_timeout=2.0, mover_start_timeout=600.0)
    sc.create_restore(cluster)
    r1 = sc.wait_holding(cluster, "r1")
    assert "timed out after 2s of restoring" in r1["status"]["error"]
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 0


def test_a_mover_that_never_starts_changes_nothing(cluster, controller):
    """No lastSyncStartTime ever (volsync not running): the start timeout fails the restore, nothing was written,
    so the workloads come straight back."""
    sc.setup(cluster, statefulset=0, deployment=2, result="NotRunning")
    controller(restore_timeout=3600.0, mover_start_timeout=2.0)
    sc.create_restore(cluster)
    done = sc.wait_finished(cluster, "r1")
    assert "did not start within 2s" in done["status"]["error"] and "nothing was written" in done["status"]["error"]
    assert not done["status"].get("dataIncomplete")
    sc.assert_cleaned_up(cluster, statefulset=0, deployment=2)
