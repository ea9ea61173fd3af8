"""Crash points for fault-injection tests: ``PVC_RESTORE_CRASH_AT=<point>`` makes the controller kill itself
with SIGKILL when it reaches that point, so tests can prove that every step is safe to repeat after a crash.
Unset (always, outside tests) it costs one dict lookup."""

from __future__ import annotations

import os
import signal

_TARGET = os.environ.get("PVC_RESTORE_CRASH_AT")


def crashpoint(name: str) -> None:
    if _TARGET and _TARGET == name:
        os.kill(os.getpid(), signal.SIGKILL)
