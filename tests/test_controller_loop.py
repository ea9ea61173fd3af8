"""Controller.run, the loop around the polls: one poll failing, for whatever reason, never ends the controller."""

from __future__ import annotations

import asyncio
import logging

from controller.loop import Controller
from controller.settings import Settings
from kubectl_pvc_restore import kube as k


def test_the_loop_survives_any_exception_from_one_poll(caplog):
    polls: list[int] = []

    async def main() -> None:
        stop = asyncio.Event()
        controller = Controller(None, Settings(poll_interval=0.01))  # type: ignore[arg-type]  # poll() is replaced

        async def poll() -> None:
            polls.append(len(polls))
            if len(polls) == 1:
                raise RuntimeError("an answer nobody foresaw")
            if len(polls) == 2:
                raise k.KubeError("the API server is away")
            stop.set()

        controller.poll = poll  # type: ignore[method-assign]
        await asyncio.wait_for(controller.run(stop), timeout=30)

    with caplog.at_level(logging.WARNING, logger="pvc-restore"):
        asyncio.run(main())
    assert polls == [0, 1, 2]  # the third poll ran after both failures
    failed = [r for r in caplog.records if "poll failed" in r.getMessage()]
    assert [r.levelno for r in failed] == [logging.ERROR, logging.WARNING]
    assert failed[0].exc_info is not None  # the unexpected one is logged with its traceback


def test_a_held_pvc_keeps_what_a_poll_reads_and_drops_managed_fields():
    from controller.triggers import wants_restore
    from controller.watched_list import slim

    pvc = {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": {
        "name": "data", "namespace": "apps", "uid": "u1", "resourceVersion": "42",
        "annotations": {"pvc-restore.homelab-helper.benfiola.com/restore": ""}, "labels": {"app": "web"},
        "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:metadata": {}}}], "finalizers": ["x"]}}
    held = slim(pvc)
    assert "managedFields" not in held["metadata"] and "finalizers" not in held["metadata"]
    assert {key: held["metadata"][key] for key in ("name", "namespace", "uid", "resourceVersion", "labels")} == {
        "name": "data", "namespace": "apps", "uid": "u1", "resourceVersion": "42", "labels": {"app": "web"}}
    assert wants_restore(held) and held["metadata"]["annotations"] == pvc["metadata"]["annotations"]


def test_a_poll_reads_only_the_annotated_pvcs_kept_as_their_changes_arrive():
    """The followed PVC list keeps the annotated ones apart (``index``): a poll reads those, not all of them, and a
    change that adds or removes the annotation moves a PVC in or out; so does a PVC read again or deleted."""
    import asyncio

    from controller.triggers import wants_restore
    from controller.watched_list import WatchedList
    from kubectl_pvc_restore import kube as k
    from kubectl_pvc_restore.model import RESTORE_ANNOTATION

    def pvc(name, version, annotated=False):
        annotations = {RESTORE_ANNOTATION: ""} if annotated else {"other": "x"}
        return {"metadata": {"name": name, "namespace": "apps", "resourceVersion": str(version),
                             "annotations": annotations}}

    class Fake:
        def __init__(self):
            self.events = []
            self.again = {}

        async def list_metadata(self, res, namespace, **kwargs):
            return [pvc(f"p{i}", i, annotated=i in (3, 7)) for i in range(10)], "10"

        async def watch(self, res, namespace, version, **kwargs):
            for event in self.events:
                yield event

        async def get_metadata(self, res, name, namespace):
            return self.again.get(name)

    fake = Fake()
    followed = WatchedList(fake, k.PVCS, "apps", metadata_only=True, index=wants_restore)
    names = lambda items: sorted(o["metadata"]["name"] for o in items)  # noqa: E731

    async def main():
        assert names(await followed.read_matching()) == ["p3", "p7"]
        fake.events = [("MODIFIED", pvc("p3", 11)), ("MODIFIED", pvc("p5", 12, annotated=True)),
                       ("ADDED", pvc("p10", 13, annotated=True)), ("DELETED", pvc("p7", 14, annotated=True)),
                       ("MODIFIED", pvc("p5", 9))]  # older than what is held: not applied
        await followed.follow(1.0)
        assert names(await followed.read_matching()) == ["p10", "p5"]
        fake.again = {"p10": pvc("p10", 20)}  # written by the trigger: read again, no longer annotated
        followed.reread("apps", "p10")
        followed.reread("apps", "p5")  # gone meanwhile
        assert names(await followed.read_matching()) == []
        assert len(await followed.read()) == 9

    asyncio.run(main())


def test_a_follow_that_meets_an_unforeseen_error_lists_again(caplog):
    """A change applied and then an error no one foresaw (not a KubeError): what is held may be half updated, so the
    next read lists in full instead of trusting it, and the error is logged with its traceback, not raised into the
    wait between polls (where it would leave the other follows running)."""
    from controller.watched_list import WatchedList

    lists: list[int] = []

    class Fake:
        async def list_metadata(self, res, namespace, **kwargs):
            lists.append(1)
            return [{"metadata": {"name": "p1", "namespace": "apps", "resourceVersion": "1"}}], "1"

        async def watch(self, res, namespace, version, **kwargs):
            yield "MODIFIED", {"metadata": {"name": "p1", "namespace": "apps", "resourceVersion": "2"}}
            raise RuntimeError("an answer nobody foresaw")

    followed = WatchedList(Fake(), k.PVCS, "apps", metadata_only=True)

    async def main() -> None:
        await followed.read()
        await followed.follow(1.0)  # does not raise
        assert followed.version is None
        await followed.read()

    with caplog.at_level(logging.ERROR, logger="pvc-restore"):
        asyncio.run(main())
    assert len(lists) == 2
    assert [r.exc_info is not None for r in caplog.records if "unexpectedly" in r.getMessage()] == [True]


def test_after_sigterm_no_reconcile_starts_and_none_goes_on_to_wait():
    """``drain`` (SIGTERM) lets the step in flight finish; that reconcile then ends instead of waiting for the change
    it named, and one that was waiting for a worker slot never starts: the next controller takes both from there."""
    from controller import phases, wake
    from controller.loop import Controller
    from controller.settings import Settings
    from kubectl_pvc_restore import model

    def restore(name: str) -> dict:
        obj = model.manifest(name, "apps", model.Spec(pvc="data"))
        obj["metadata"].update(uid=f"uid-{name}", resourceVersion="1")
        obj["status"] = {"phase": "ScaleDown"}
        return obj

    started: list[str] = []
    watched: list[str] = []

    class Kube:
        async def watch(self, *args, **kwargs):
            watched.append("watch")
            yield "MODIFIED", {}

    async def main() -> None:
        controller = Controller(Kube(), Settings(namespace="apps", poll_interval=1.0, workers=1))  # type: ignore[arg-type]
        step = asyncio.Event()

        async def reconcile(run: phases.Run) -> None:
            started.append(run.r.name)
            await step.wait()
            run.wake = wake.Wake(k.PODS, "apps", "5")  # it waits for pods to go

        phases_reconcile, phases.reconcile = phases.reconcile, reconcile
        try:
            first = asyncio.create_task(controller._reconcile(restore("a"), []))
            second = asyncio.create_task(controller._reconcile(restore("b"), []))
            controller.tasks.update({"uid-a": first, "uid-b": second})
            await asyncio.sleep(0.05)  # a runs its step; b waits for the only worker
            draining = asyncio.create_task(controller.drain())
            await asyncio.sleep(0.05)
            step.set()
            await asyncio.wait_for(draining, 5)
        finally:
            phases.reconcile = phases_reconcile

    asyncio.run(main())
    assert started == ["a"] and watched == []
