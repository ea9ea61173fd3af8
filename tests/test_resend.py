"""Which requests the client sends again after a transient error (a 5xx, a broken connection): reads, and the writes
for which a second copy cannot do harm: a JSON merge patch (applying it twice gives what applying it once gave) and a
PUT carrying ``metadata.resourceVersion`` (a copy of one already applied is refused with 409 Conflict). Creations,
deletions and JSON patches are sent once: the first may have been applied. Under many 5xx (the chaos suite's 30 %)
every status save and scale that failed at once cost a failed reconcile and a doubled back-off (CI: a restore past
150 s)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kubectl_pvc_restore import kube as k
from tests.fake_api import FakeApi, codes_in_turn

NS = "ns"


def cm(**meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": NS, **meta}}


CALLS = {
    "GET": lambda kube: kube.get(k.CONFIGMAPS, "c", NS),
    "GET /version": lambda kube: kube.version(),
    "merge PATCH": lambda kube: kube.patch(k.CONFIGMAPS, "c", NS, {"data": {"a": "1"}}),
    "scale": lambda kube: kube.set_scale(k.DEPLOYMENTS, "web", NS, 0),
    "PUT with resourceVersion": lambda kube: kube.replace(k.CONFIGMAPS, cm(resourceVersion="7")),
    "PUT without resourceVersion": lambda kube: kube.replace(k.CONFIGMAPS, cm()),
    "PUT of a Lease (its loop retries)": lambda kube: kube.replace(k.LEASES, cm(resourceVersion="7"), resend=False),
    "POST": lambda kube: kube.create(k.CONFIGMAPS, cm(), NS),
    "DELETE": lambda kube: kube.delete(k.CONFIGMAPS, "c", NS),
    "JSON PATCH": lambda kube: kube.json_patch(k.CONFIGMAPS, "c", NS, [{"op": "add", "path": "/data/a", "value": "1"}]),
}
RESENT = {"GET", "GET /version", "merge PATCH", "scale", "PUT with resourceVersion"}


def send(monkeypatch, call: str, codes: list[int]) -> tuple[FakeApi, Any]:
    monkeypatch.setattr(k, "TRANSIENT_DELAY", 0.001)
    api = FakeApi(codes_in_turn(codes))
    kube = k.Kube(api, namespace=NS)

    async def go() -> Any:
        try:
            return await CALLS[call](kube)
        except k.KubeError as exc:
            return exc
    return api, asyncio.run(go())


@pytest.mark.parametrize("code", [500, 503])
@pytest.mark.parametrize("call", list(CALLS))
def test_only_requests_safe_to_repeat_are_sent_again(monkeypatch, call, code):
    api, result = send(monkeypatch, call, [code, code, 200])
    if call in RESENT:
        assert len(api.sent) == 3 and not isinstance(result, k.KubeError), (api.sent, result)
    else:
        assert len(api.sent) == 1 and isinstance(result, k.KubeError) and result.code == code, (api.sent, result)


@pytest.mark.parametrize("call", sorted(RESENT))
def test_a_request_sent_again_gives_up_after_two_retries(monkeypatch, call):
    api, result = send(monkeypatch, call, [500, 500, 500, 200])
    assert len(api.sent) == 3 and isinstance(result, k.KubeError) and result.code == 500


def test_a_put_applied_before_its_error_is_refused_when_sent_again(monkeypatch):
    """The 500 came after the write was applied: the copy meets the new resourceVersion, and the caller hears of a
    Conflict (it reads again on the next attempt), never of a second write."""
    api, result = send(monkeypatch, "PUT with resourceVersion", [500, 409])
    assert api.methods == ["PUT", "PUT"] and isinstance(result, k.Conflict)


def test_the_version_is_asked_where_kr8s_asks_for_it(monkeypatch):
    api, result = send(monkeypatch, "GET /version", [200])
    assert [path for _, path in api.sent] == ["/version/"] and result == {}
