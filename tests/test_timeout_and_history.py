"""Per-restore timeout (spec.timeout) and history pruning of Finished PVCRestores."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from controller.history import expired
from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import model
from kubectl_pvc_restore.cli import cli
from tests import scenario as sc
from tests.helpers import wait_for


def test_spec_timeout_overrides_the_controller_default(cluster, controller, kubeconfig):
    sc.setup(cluster, statefulset=0, deployment=1, result="Hang")
    controller(restore_timeout=600)
    result = CliRunner().invoke(cli, ["start", "data", "--restore-timeout", "2s", "--partial-data", "ScaleBack",
                                      "--kubeconfig", kubeconfig, "-n", cluster.ns])
    assert result.exit_code == 0, result.output
    name = result.output.strip()
    assert cluster.kube.get(k.PVC_RESTORES, name, cluster.ns)["spec"]["timeout"] == "2s"
    restore = sc.wait_finished(cluster, name)
    assert restore["status"]["error"].startswith("timed out after 2s of restoring: the volsync mover")
    sc.assert_cleaned_up(cluster, statefulset=0, deployment=1)  # the destination (volsync's retry loop) is gone


def test_spec_timeout_is_validated_by_the_api_server(cluster):
    body = model.manifest("bad", cluster.ns, model.Spec(pvc="data", timeout="soon"))
    with pytest.raises(k.Invalid, match="spec.timeout"):
        cluster.kube.create(k.PVC_RESTORES, body, cluster.ns)


def test_history_keeps_the_newest_per_pvc(cluster, controller):
    sc.setup(cluster, statefulset=0, deployment=0)
    cluster.pvc("other")
    for i in range(3):
        for pvc in ("data", "other"):
            name = f"{pvc}-{i}"
            obj = cluster.kube.create(k.PVC_RESTORES, model.manifest(name, cluster.ns, model.Spec(pvc=pvc)),
                                      cluster.ns)
            cluster.kube.replace(k.PVC_RESTORES, {**obj, "status": {
                "phase": "Finished", "completionTime": f"2026-01-0{i + 1}T00:00:00Z"}}, subresource="status")
    controller(history_max_count=2, history_max_age=0)
    wait_for(lambda: sorted(r["metadata"]["name"] for r in sc.restores(cluster)) ==
             ["data-1", "data-2", "other-1", "other-2"], message="the oldest of each PVC to be deleted")


def test_history_max_age(cluster, controller):
    sc.setup(cluster, statefulset=0, deployment=0)
    for name, done in (("old", "2020-01-01T00:00:00Z"), ("new", model.format_time(model.now()))):
        obj = cluster.kube.create(k.PVC_RESTORES, model.manifest(name, cluster.ns, model.Spec(pvc="data")),
                                  cluster.ns)
        cluster.kube.replace(k.PVC_RESTORES, {**obj, "status": {"phase": "Finished", "completionTime": done}},
                             subresource="status")
    controller(history_max_count=0, history_max_age=3600)
    wait_for(lambda: [r["metadata"]["name"] for r in sc.restores(cluster)] == ["new"], message="old to go")


def test_expired_never_touches_unfinished_restores():
    def r(name, phase, done):
        return model.PVCRestore.from_dict({"metadata": {"name": name, "namespace": "n", "creationTimestamp": done},
                                           "spec": {"pvc": "p"}, "status": {"phase": phase,
                                                                            "completionTime": done}})
    items = [r("a", "Restore", "2020-01-01T00:00:00Z"), r("b", "Finished", "2020-01-01T00:00:00Z"),
             r("c", "Finished", "2020-01-02T00:00:00Z")]
    assert [x.name for x in expired(items, max_age=60, max_count=0)] == ["c", "b"]
    assert [x.name for x in expired(items, max_age=0, max_count=1)] == ["b"]
    assert expired(items, max_age=0, max_count=0) == []
