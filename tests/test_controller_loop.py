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
    from controller.watched_list import slim
    from controller.triggers import wants_restore

    pvc = {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": {
        "name": "data", "namespace": "apps", "uid": "u1", "resourceVersion": "42",
        "annotations": {"pvc-restore.homelab-helper.benfiola.com/restore": ""}, "labels": {"app": "web"},
        "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:metadata": {}}}], "finalizers": ["x"]}}
    held = slim(pvc)
    assert "managedFields" not in held["metadata"] and "finalizers" not in held["metadata"]
    assert {key: held["metadata"][key] for key in ("name", "namespace", "uid", "resourceVersion", "labels")} == {
        "name": "data", "namespace": "apps", "uid": "u1", "resourceVersion": "42", "labels": {"app": "web"}}
    assert wants_restore(held) and held["metadata"]["annotations"] == pvc["metadata"]["annotations"]
