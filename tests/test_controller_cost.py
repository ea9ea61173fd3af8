"""The poll loop's cost and independence: the PVCs are listed once (metadata only) and then only their changes are
followed between polls, so an idle poll costs no PVC list whatever their number; and one stuck restore does not hold
up another."""

from __future__ import annotations

from controller.loop import Controller
from controller.settings import Settings
from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import model
from tests import scenario as sc
from tests.helpers import wait_for


class CountingKube(k.Kube):
    def __init__(self, api):
        super().__init__(api)
        self.calls: list[tuple[str, str, str | None]] = []

    async def request(self, method, url, **kwargs):
        self.calls.append((method, url, kwargs.get("accept")))
        return await super().request(method, url, **kwargs)


def pvc_names(kube, ns):
    return sorted(p["metadata"]["name"] for p in kube.list(k.PVCS, ns))


def test_pvcs_are_listed_once_then_only_their_changes_are_followed(cluster, portal, kube):
    counting = CountingKube(kube.kube.api)
    ctl = Controller(counting, Settings(namespace=cluster.ns, poll_interval=0.5))
    for n in (1, 25):
        while len(kube.list(k.PVCS, cluster.ns)) < n:
            cluster.pvc(f"pvc-{len(kube.list(k.PVCS, cluster.ns))}")
        counting.calls.clear()
        for _ in range(3):
            portal.call(ctl.poll)
            portal.call(ctl._follow_changes, 0.5)  # the wait between polls
        pvc_lists = [c for c in counting.calls if c[1].endswith("/persistentvolumeclaims")]
        # The first poll lists the PVCs (metadata only); later ones, and the round with 24 more PVCs, list none:
        # what was created in between arrived through the followed changes.
        assert len(pvc_lists) == (1 if n == 1 else 0), counting.calls
        assert all(accept == k.METADATA_LIST for _, _, accept in pvc_lists)
        assert len(counting.calls) == len(pvc_lists) + 3 * 2  # each poll: the locks and the PVCRestores
        assert all(method == "GET" for method, _, _ in counting.calls)
        followed = ctl.pvc_lists[cluster.ns]
        assert sorted(name for _, name in followed.items) == pvc_names(kube, cluster.ns)
    # A deleted PVC leaves the followed list too.
    kube.delete(k.PVCS, "pvc-3", cluster.ns)
    # (It goes once kube-controller-manager's pvc-protection controller has removed its finalizer.)
    wait_for(lambda: kube.get_or_none(k.PVCS, "pvc-3", cluster.ns) is None, timeout=30, message="pvc-3 to go")
    portal.call(ctl._follow_changes, 1.0)
    assert ("pvc-3" not in {name for _, name in ctl.pvc_lists[cluster.ns].items})


def test_a_watch_the_api_server_refuses_lists_again(cluster, portal, kube):
    counting = CountingKube(kube.kube.api)
    ctl = Controller(counting, Settings(namespace=cluster.ns, poll_interval=0.5))
    cluster.pvc("first")
    portal.call(ctl.poll)
    followed = ctl.pvc_lists[cluster.ns]
    # A resourceVersion the API server cannot watch from (as after etcd compacted it away: 410 Gone, the same path).
    followed.version = "not-a-version"
    portal.call(ctl._follow_changes, 2.0)
    assert followed.version is None, "a refused watch must lead to a full list"
    cluster.pvc("second")
    counting.calls.clear()
    portal.call(ctl.poll)
    assert [c for c in counting.calls if c[1].endswith("/persistentvolumeclaims")], "no full list after the refusal"
    assert sorted(name for _, name in followed.items) == pvc_names(kube, cluster.ns)


def test_a_stuck_restore_does_not_delay_another(cluster, controller):
    sc.setup(cluster, statefulset=0, deployment=1, delay=0.3, pvcs={"data": {"result": "Hang"}})
    cluster.pvc("other")
    cluster.deployment("other-app", replicas=1, pvc="other")
    cluster.replication_source("other-backup", "other")
    cluster.simulate(snapshots={sc.REPOSITORY: sc.SNAPSHOTS, "other-backup-restic": sc.SNAPSHOTS}, delay=0.3,
                     pvcs={"data": {"result": "Hang"}})
    cluster.wait_running(1, pvc="other")
    controller(restore_timeout=600)
    for name, pvc in (("stuck", "data"), ("quick", "other")):
        cluster.kube.create(k.PVC_RESTORES, model.manifest(name, cluster.ns, model.Spec(pvc=pvc)), cluster.ns)
    quick = sc.wait_finished(cluster, "quick", timeout=60)
    assert quick["status"].get("error") is None
    assert cluster.kube.get(k.PVC_RESTORES, "stuck", cluster.ns)["status"]["phase"] == "Restore"
    assert cluster.replicas(k.DEPLOYMENTS, "other-app") == 1
