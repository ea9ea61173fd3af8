"""Between polls the controller follows what it waits for (controller/wake.py): a new request (a restore annotation,
a PVCRestore created with kubectl) starts a poll at once, and a restore waiting for pods to stop or for the mover
looks again as soon as that changes. With a poll interval far longer than the whole restore, a restore must still
finish after one poll (the one its request started); and when the API server refuses those watches, the polls alone
must still finish it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller import wake
from controller.loop import Controller
from controller.triggers import CLAIM_ANNOTATION, TRIGGER_CREATED_BY, asked_by_someone, new_request
from controller.watched_list import older
from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import model
from kubectl_pvc_restore.model import CREATED_BY_ANNOTATION, RESTORE_ANNOTATION
from tests import scenario as sc
from tests.helpers import in_process_controllers, wait_for

#: Far longer than a restore in these tests (a mover of 0.5 s): a restore that waited for polls could not finish in
#: the time the tests give it.
LONG_POLL = 120.0


def meta(**annotations: str) -> dict:
    return {"metadata": {"name": "x", "annotations": annotations}}


# -- which changes count (pure) ----------------------------------------------------------------------------------

def test_only_an_unclaimed_restore_annotation_is_a_new_request():
    assert new_request(meta(**{RESTORE_ANNOTATION: ""}))
    assert new_request(meta(**{RESTORE_ANNOTATION: "2"}))
    assert not new_request(meta(**{RESTORE_ANNOTATION: "", CLAIM_ANNOTATION: "x-1"}))  # the claim's own write
    assert not new_request(meta(**{CLAIM_ANNOTATION: "x-1"}))
    assert not new_request(meta())
    assert not new_request({"metadata": {}})


def test_a_restore_the_trigger_made_is_not_a_new_request():
    assert not asked_by_someone(meta(**{CREATED_BY_ANNOTATION: TRIGGER_CREATED_BY}))
    assert asked_by_someone(meta(**{CREATED_BY_ANNOTATION: "kubectl pvc-restore start"}))
    assert asked_by_someone(meta())


def test_a_wait_for_pods_to_go_counts_only_their_deletion():
    w = wake.gone(k.PODS, "ns", "10", ["a", "b"])
    assert w.matters("DELETED", {"metadata": {"name": "a"}})
    assert not w.matters("DELETED", {"metadata": {"name": "c"}})
    assert not w.matters("MODIFIED", {"metadata": {"name": "a"}})
    assert not w.matters("BOOKMARK", {"metadata": {"resourceVersion": "11"}})
    any_change = wake.Wake(k.REPLICATION_DESTINATIONS, "ns", "10", name="d")
    assert any_change.matters("MODIFIED", {"metadata": {"name": "d"}})
    assert not any_change.matters("BOOKMARK", {"metadata": {}})


class RefusedWatches(k.Kube):
    """The API server as an older chart's RBAC makes it: every watch but the PVCs' refused (403)."""

    def __init__(self, api):
        super().__init__(api)
        self.refused = 0

    async def watch(self, res, *args, **kwargs):
        if res is not k.PVCS:
            self.refused += 1
            raise k.Forbidden(f"watch {res.plural}: forbidden")
        async for event in super().watch(res, *args, **kwargs):
            yield event


def test_a_refused_watch_is_no_wake_up_and_is_warned_about_once(portal, kube, namespace, caplog, monkeypatch):
    monkeypatch.setattr(wake, "_refused", set())
    refusing = RefusedWatches(kube.kube.api)
    with caplog.at_level("WARNING", logger="pvc-restore.wake"):
        for _ in range(2):
            assert not portal.call(wake.woken, refusing, wake.gone(k.PODS, namespace, "1", ["p"]), 1.0)
    assert refusing.refused == 2
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and warned[0].startswith("may not watch pods (watch pods: forbidden): restores waiting "
                                                     "for them look again at each poll"), warned


# -- on the control plane ------------------------------------------------------------------------------------------

@pytest.fixture
def long_poll_controller(portal, kube, namespace):
    with in_process_controllers(portal, kube.kube, namespace, poll_interval=LONG_POLL) as start:
        yield start


def first_poll_done(ctl: Controller) -> int:
    """Once the first poll has read the PVCs and the PVCRestores (it lists them in that order), anything created
    after can only reach it through a later poll. Returns the polls made so far."""
    wait_for(lambda: ctl.restore_versions, message="the controller's first poll")
    return ctl.polls


def test_an_annotation_starts_a_poll_and_every_wait_ends_on_its_change(cluster, long_poll_controller):
    sc.setup(cluster, deployment=1, statefulset=1, delay=0.5)
    ctl = long_poll_controller()
    before = first_poll_done(ctl)
    sc.annotate(cluster, "")
    done = sc.wait_finished(cluster, timeout=60)
    assert done["status"].get("error") is None, done["status"]
    # Its own poll (the annotation's), no other: ScaleDown waited for the pods to go, Restore for the mover, and
    # each looked again on the change, not on a poll (the next one is minutes away).
    assert ctl.polls == before + 1
    phases = [e["phase"] for e in done["status"]["timeline"]]
    assert phases == ["Initialize", "ScaleDown", "Restore", "Finalize", "Finished"]
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 1
    assert cluster.replicas(k.STATEFULSETS, "db") == 1


def test_a_pvcrestore_created_with_kubectl_starts_a_poll(cluster, long_poll_controller):
    sc.setup(cluster, deployment=1, statefulset=0, delay=0.5)
    ctl = long_poll_controller()
    before = first_poll_done(ctl)
    cluster.kube.create(k.PVC_RESTORES, model.manifest("by-hand", cluster.ns, model.Spec(pvc=sc.PVC), annotations={
        CREATED_BY_ANNOTATION: "kubectl pvc-restore start"}), cluster.ns)
    done = sc.wait_finished(cluster, "by-hand", timeout=60)
    assert done["status"].get("error") is None, done["status"]
    assert ctl.polls == before + 1


def test_with_every_watch_refused_the_polls_still_finish_the_restore(cluster, portal, kube):
    sc.setup(cluster, deployment=1, statefulset=0, delay=0.5)
    refusing = RefusedWatches(kube.kube.api)
    with in_process_controllers(portal, refusing, cluster.ns, poll_interval=0.3) as start:
        ctl = start()
        sc.annotate(cluster, "")
        done = sc.wait_finished(cluster, timeout=60)
    assert done["status"].get("error") is None, done["status"]
    assert refusing.refused > 0
    assert ctl.polls > 2  # the waits ended on polls
    assert cluster.replicas(k.DEPLOYMENTS, "web") == 1


def rv(version: str) -> dict:
    return {"metadata": {"resourceVersion": version}}


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=10**12))
def test_a_change_older_than_the_copy_read_again_is_not_applied(a, b):
    assert older(rv(str(a)), rv(str(b))) == (a < b)


@pytest.mark.parametrize("mine, theirs", [("", "5"), ("5", ""), ("²", "9"), ("abc", "9"), ("9", "x1")])
def test_resource_versions_not_in_the_api_servers_form_are_never_called_older(mine, theirs):
    assert not older(rv(mine), rv(theirs))
    assert not older(rv("1"), None)
