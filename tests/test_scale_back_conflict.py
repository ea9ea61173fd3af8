"""``scale-back`` asks with a conditional patch (the resourceVersion it read). A 409 means the PVCRestore changed since:
by this very patch when its answer was lost and the copy sent again was refused (the access layer sends a merge patch
again after a 5xx), or by someone else. The command reads again: asked already when the annotation is there (exit 0),
else it says nothing was asked, instead of reporting a Conflict for a request that was taken."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import click
import pytest

from kubectl_pvc_restore import kube as k
from kubectl_pvc_restore.cli import scale_back
from kubectl_pvc_restore.cli.common import Client, GlobalOptions
from kubectl_pvc_restore.model import SCALE_BACK_ANNOTATION

HOLDING = {"phase": "Finished", "dataIncomplete": True}


class Kube:
    namespace = "apps"

    def __init__(self, annotated_meanwhile: bool) -> None:
        self.annotated_meanwhile = annotated_meanwhile
        self.patches: list[dict[str, Any]] = []

    async def get(self, res: k.Resource, name: str, namespace: str) -> dict[str, Any]:
        asked = self.patches and self.annotated_meanwhile
        annotations = {SCALE_BACK_ANNOTATION: "2026-01-01T00:00:00Z"} if asked else {}
        return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": str(1 + len(self.patches)),
                             "annotations": annotations}, "spec": {"pvc": "data"}, "status": HOLDING}

    async def patch(self, res: k.Resource, name: str, namespace: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.patches.append(patch)
        raise k.Conflict("PVCRestore r1: the object has been modified", code=409)


def run(kube: Kube) -> int:
    body = inspect.unwrap(scale_back.command.callback)
    return asyncio.run(body(Client(kube, GlobalOptions()), "r1", False, None))


def test_a_conflict_after_the_annotation_was_set_is_success(capsys):
    kube = Kube(annotated_meanwhile=True)
    assert run(kube) == 0
    assert len(kube.patches) == 1 and "asked the controller to scale the workloads back" in capsys.readouterr().out


def test_a_conflict_without_the_annotation_says_nothing_was_asked():
    kube = Kube(annotated_meanwhile=False)
    with pytest.raises(click.ClickException, match="nothing was asked: run the command again"):
        run(kube)
