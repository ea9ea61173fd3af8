"""Unit tests: walking pods' controller ownerReferences to the top-level workloads."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kubectl_pvc_restore import owners as og


def obj(kind, name, owner=None, api="apps/v1", controller=True):
    meta = {"name": name}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": owner[0], "kind": owner[1], "name": owner[2],
                                    "controller": controller}]
    return {"apiVersion": api, "kind": kind, "metadata": meta}


def pod(name, owner=None, pvc="data", phase="Running", controller=True):
    p = obj("Pod", name, owner, api="v1", controller=controller)
    p["spec"] = {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": pvc}}]}
    p["status"] = {"phase": phase}
    return p


RS = ("apps/v1", "ReplicaSet", "web-1")
DEP = ("apps/v1", "Deployment", "web")
STS = ("apps/v1", "StatefulSet", "db")


def test_deployment_statefulset_and_rc():
    objects = {RS: obj("ReplicaSet", "web-1", DEP), DEP: obj("Deployment", "web"), STS: obj("StatefulSet", "db"),
               ("v1", "ReplicationController", "old"): obj("ReplicationController", "old", api="v1")}
    pods = [pod("web-1-a", RS), pod("web-1-b", RS), pod("db-0", STS),
            pod("old-x", ("v1", "ReplicationController", "old"))]
    graph = og.walk(pods, objects)
    assert graph.problems == []
    assert graph.tops == {DEP: ["web-1-a", "web-1-b"], STS: ["db-0"], ("v1", "ReplicationController", "old"): ["old-x"]}


def test_bare_pod_missing_owner_and_cycle_are_problems():
    a, b = ("x/v1", "A", "a"), ("x/v1", "B", "b")
    objects = {a: obj("A", "a", b, api="x/v1"), b: obj("B", "b", a, api="x/v1"), RS: None}
    graph = og.walk([pod("bare"), pod("orphan", RS), pod("loop", a)], objects)
    assert graph.tops == {}
    assert graph.bare == ["bare"]
    assert len(graph.problems) == 2
    assert "ReplicaSet web-1 does not exist" in graph.problems[0]
    assert "cycle" in graph.problems[1]


def test_non_controller_owner_is_not_followed():
    graph = og.walk([pod("p", RS, controller=False)], {RS: obj("ReplicaSet", "web-1", DEP)})
    assert graph.tops == {} and graph.bare == ["p"] and graph.problems == []


def test_mounts_ignores_completed_pods_and_other_claims():
    assert og.mounts(pod("a"), "data")
    assert not og.mounts(pod("a", pvc="other"), "data")
    assert not og.mounts(pod("a", phase="Succeeded"), "data")
    assert not og.mounts(pod("a", phase="Failed"), "data")


chains = st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=6)


@given(chains)
def test_every_pod_reaches_exactly_the_top_of_its_chain(depths):
    """Random forests of owner chains: each pod ends at its chain's root, and every pod is accounted for."""
    objects, pods, expected = {}, [], {}
    for i, depth in enumerate(depths):
        keys = [(f"g{i}/v1", f"K{level}", f"o{i}-{level}") for level in range(depth)]
        for level, key in enumerate(keys):
            parent = keys[level + 1] if level + 1 < depth else None
            objects[key] = obj(key[1], key[2], parent, api=key[0])
        pods.append(pod(f"p{i}", keys[0]))
        expected[keys[-1]] = [f"p{i}"]
    known: dict = {}
    frontier = list(pods)
    while needed := og.parents_needed(frontier, known):  # the fetch rounds plan.py performs
        frontier = []
        for key in needed:
            known[key] = objects[key]
            frontier.append(objects[key])
    graph = og.walk(pods, known)
    assert graph.problems == []
    assert graph.tops == expected
