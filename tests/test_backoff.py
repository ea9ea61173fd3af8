"""A restore that fails is retried with exponential back-off, unless it changed something in the cluster before it
failed (a workload scaled back, a lock released): then the next attempt comes at once, as the next poll. Under many
transient API errors Finalize makes progress one write at a time; backing off as if it had made none held
workloads down for minutes (CI: the 500-fault chaos case past 150 s). Events are a record, not progress."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from controller import phases
from controller.loop import Controller
from controller.settings import Settings
from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore import model
from tests.fake_api import FakeApi, codes_by_method

NS = "ns"


def restore_obj() -> dict[str, Any]:
    obj = model.manifest("r1", NS, model.Spec(pvc="data"))
    obj["metadata"].update(uid="uid-1", resourceVersion="1")
    obj["status"] = {"phase": "Finalize"}
    return obj


async def one_failed_reconcile(monkeypatch, answers: dict[str, list[int]], steps) -> tuple[Controller, FakeApi]:
    api = FakeApi(codes_by_method(answers))
    kube = k.Kube(api, namespace=NS)
    controller = Controller(kube, Settings(namespace=NS, poll_interval=1.0))

    async def reconcile(run: phases.Run) -> None:
        await steps(run)

    monkeypatch.setattr(phases, "reconcile", reconcile)
    monkeypatch.setattr(k, "TRANSIENT_DELAY", 0.001)
    assert await controller._reconcile_once(restore_obj(), []) is None
    return controller, api


def cm(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS}}


@pytest.mark.parametrize("accepted", [0, 1])
def test_a_reconcile_that_changed_something_backs_off_afresh(monkeypatch, accepted):
    async def steps(run: phases.Run) -> None:
        if accepted:
            await run.kube.create(k.CONFIGMAPS, cm("progress"), NS)  # accepted: the cluster changed
        await run.kube.get(k.CONFIGMAPS, "next", NS)  # then a 500, three times (the request's own retries)

    answers = {"POST": [201], "GET": [500, 500, 500]}

    async def twice() -> tuple[Controller, FakeApi]:
        controller, api = await one_failed_reconcile(monkeypatch, answers, steps)
        assert controller.backoff["uid-1"][0] == 1  # the first failure waits one poll interval
        answers.update(POST=[201], GET=[500, 500, 500])
        assert await controller._reconcile_once(restore_obj(), []) is None
        return controller, api

    controller, api = asyncio.run(twice())
    assert api.methods == (["POST"] * accepted + ["GET"] * 3) * 2
    # The second failure: after progress, one interval again; after none, twice as long.
    assert controller.backoff["uid-1"][0] == (1 if accepted else 2), controller.backoff


def test_refused_writes_events_and_updates_sent_every_time_are_not_progress(monkeypatch):
    async def steps(run: phases.Run) -> None:
        await run.event("Something", "a record of what happened")
        await run.events_sent()
        await run.kube.patch(k.CONFIGMAPS, "same", NS, {"data": {"x": "y"}})  # accepted, maybe changing nothing
        with contextlib.suppress(k.KubeError):
            await run.kube.create(k.CONFIGMAPS, cm("refused"), NS)  # a 409: nothing changed
        await run.kube.get(k.CONFIGMAPS, "next", NS)

    answers = {"POST": [201, 409], "PATCH": [200], "GET": [500, 500, 500]}
    controller, api = asyncio.run(one_failed_reconcile(monkeypatch, answers, steps))
    assert api.methods == ["POST", "PATCH", "POST", "GET", "GET", "GET"]
    answers.update(POST=[201, 409], PATCH=[200], GET=[500, 500, 500])
    assert asyncio.run(controller._reconcile_once(restore_obj(), [])) is None
    assert controller.backoff["uid-1"][0] == 2, controller.backoff
