"""``Kube.list_shared``: restores of one namespace that look at its pods at the same time share one list, and every
caller still gets a list sent after it asked (it sees everything written before it asked)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubectl_pvc_restore import kube as k


class Lists(k.Kube):
    """A Kube whose lists answer, after ``delay``, the number of the list: which callers shared which request."""

    def __init__(self, delay: float = 0.01) -> None:
        super().__init__(api=None, namespace="ns")
        self.delay = delay
        self.sent: list[float] = []  # when each list was sent (loop time)
        self.fail_next = False

    async def list_versioned(self, res, namespace=None, **kwargs):
        self.sent.append(asyncio.get_running_loop().time())
        number = len(self.sent)
        await asyncio.sleep(self.delay)
        if self.fail_next:
            self.fail_next = False
            raise k.Unreachable("lost")
        return [{"metadata": {"name": f"list-{number}"}}], str(number)


def test_callers_at_the_same_time_share_one_list():
    async def main():
        kube = Lists()
        results = await asyncio.gather(*(kube.list_shared(k.PODS, "ns") for _ in range(10)))
        return kube, results

    kube, results = asyncio.run(main())
    assert len(kube.sent) == 1
    assert {version for _, version in results} == {"1"}


def test_a_caller_that_asks_while_a_list_is_being_sent_gets_the_next_one():
    async def main():
        kube = Lists(delay=0.05)
        first = asyncio.ensure_future(kube.list_shared(k.PODS, "ns"))
        await asyncio.sleep(0.01)  # the first list is on its way
        asked = asyncio.get_running_loop().time()
        later = await asyncio.gather(*(kube.list_shared(k.PODS, "ns") for _ in range(5)))
        return kube, await first, later, asked

    kube, first, later, asked = asyncio.run(main())
    assert first[1] == "1"
    assert {version for _, version in later} == {"2"}  # not the list sent before they asked
    assert kube.sent[1] >= asked
    assert len(kube.sent) == 2


def test_other_namespaces_and_resources_are_not_shared():
    async def main():
        kube = Lists()
        return kube, await asyncio.gather(kube.list_shared(k.PODS, "a"), kube.list_shared(k.PODS, "b"),
                                          kube.list_shared(k.CONFIGMAPS, "a"))

    kube, _ = asyncio.run(main())
    assert len(kube.sent) == 3


def test_a_failed_list_fails_each_caller_that_shared_it_and_the_next_one_is_sent_again():
    async def main():
        kube = Lists()
        kube.fail_next = True
        results = await asyncio.gather(*(kube.list_shared(k.PODS, "ns") for _ in range(3)), return_exceptions=True)
        again = await kube.list_shared(k.PODS, "ns")
        return results, again

    results, again = asyncio.run(main())
    assert all(isinstance(r, k.Unreachable) for r in results)
    assert again[1] == "2"


def test_a_cancelled_caller_does_not_cancel_the_list_of_the_others():
    async def main():
        kube = Lists(delay=0.05)
        quitter = asyncio.ensure_future(kube.list_shared(k.PODS, "ns"))
        stayer = asyncio.ensure_future(kube.list_shared(k.PODS, "ns"))
        await asyncio.sleep(0.01)
        quitter.cancel()
        return await stayer

    assert asyncio.run(main())[1] == "1"


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=0.03), min_size=1, max_size=12))
def test_every_caller_gets_a_list_sent_after_it_asked(gaps):
    async def main():
        kube = Lists(delay=0.01)
        loop = asyncio.get_running_loop()
        calls = []

        async def call(wait):
            await asyncio.sleep(wait)
            asked = loop.time()
            _, version = await kube.list_shared(k.PODS, "ns")
            calls.append((asked, int(version)))

        await asyncio.gather(*(call(sum(gaps[:i])) for i in range(len(gaps))))
        return kube, calls

    kube, calls = asyncio.run(main())
    for asked, number in calls:
        assert kube.sent[number - 1] >= asked
    assert len(kube.sent) <= len(calls)


# -- Kube.list_metadata: only the kept metadata is decoded ---------------------------------------------------------

class Pages(k.Kube):
    """Answers a paged metadata list from ``pages`` (raw bytes, as the API server sends them)."""

    def __init__(self, pages: list[dict]) -> None:
        super().__init__(api=None, namespace="ns")
        self.pages = pages
        self.params: list[dict] = []

    async def request(self, method, url, *, raw=False, params=None, **kwargs):
        assert raw and method == "GET"
        self.params.append(dict(params or {}))
        import json

        return json.dumps(self.pages[len(self.params) - 1]).encode()


def pvc_meta(name: str, **extra) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "resourceVersion": "7",
                         "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}], **extra}}


def test_a_metadata_list_keeps_only_what_is_asked_and_follows_continue():
    from controller.watched_list import KEPT_METADATA, slim

    first = [pvc_meta("a", annotations={"x": "1"}, labels={"l": "v"}, deletionTimestamp=None),
             pvc_meta("b", ownerReferences=[{"kind": "StatefulSet", "name": "db", "uid": "u"}], generation=2)]
    second = [pvc_meta("c", finalizers=["kubernetes.io/pvc-protection"])]
    kube = Pages([{"metadata": {"resourceVersion": "41", "continue": "next"}, "items": first},
                  {"metadata": {"resourceVersion": "41"}, "items": second}])
    items, version = asyncio.run(kube.list_metadata(k.PVCS, "ns", keep=KEPT_METADATA, limit=2))
    assert version == "41"
    assert [p.get("continue") for p in kube.params] == [None, "next"]
    assert items == [slim(o) for o in first + second]  # what decoding everything and dropping the rest gives
    assert all("managedFields" not in i["metadata"] and "finalizers" not in i["metadata"] for i in items)


@pytest.mark.parametrize("answer", [{"items": "not a list"}, {"items": [{"metadata": "x"}]}, {"metadata": []}])
def test_an_answer_that_is_not_a_list_is_one_clear_error(answer):
    kube = Pages([answer])
    with pytest.raises(k.KubeError, match="list persistentvolumeclaims in namespace ns: an answer that is not a list"):
        asyncio.run(kube.list_metadata(k.PVCS, "ns", keep=("name",)))


def test_an_empty_list_whose_items_are_null_is_empty():
    """The API server encodes an empty PartialObjectMetadataList's items as null."""
    kube = Pages([{"kind": "PartialObjectMetadataList", "metadata": {"resourceVersion": "5"}, "items": None}])
    assert asyncio.run(kube.list_metadata(k.PVCS, "ns", keep=("name",))) == ([], "5")
