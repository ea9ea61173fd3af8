"""The poll loop's cost and independence: an idle poll makes a constant number of LIST calls whatever the number
of PVCs (PVCs as metadata only), and one stuck restore does not hold up another."""

from __future__ import annotations

from controller.loop import Controller
from controller.settings import Settings
from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import model
from tests import scenario as sc


class CountingKube(k.Kube):
    def __init__(self, api):
        super().__init__(api)
        self.calls: list[tuple[str, str, str | None]] = []

    async def request(self, method, url, **kwargs):
        self.calls.append((method, url, kwargs.get("accept")))
        return await super().request(method, url, **kwargs)


def test_idle_poll_makes_three_lists_whatever_the_number_of_pvcs(cluster, portal, kube):
    counting = CountingKube(kube.kube.api)
    ctl = Controller(counting, Settings(namespace=cluster.ns))
    for n in (1, 25):
        while len(kube.list(k.PVCS, cluster.ns)) < n:
            cluster.pvc(f"pvc-{len(kube.list(k.PVCS, cluster.ns))}")
        counting.calls.clear()
        for _ in range(3):
            portal.call(ctl.poll)
        assert len(counting.calls) == 9, counting.calls
        assert all(method == "GET" for method, _, _ in counting.calls)
        pvc_lists = [c for c in counting.calls if c[1].endswith("/persistentvolumeclaims")]
        assert len(pvc_lists) == 3 and all(accept == k.METADATA_LIST for _, _, accept in pvc_lists)


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
