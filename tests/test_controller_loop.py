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
