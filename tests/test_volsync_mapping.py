"""Unit tests: ReplicationSource -> ReplicationDestination, reading the mover outcome, lock naming, and the
simulator's snapshot choice."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, strategies as st

from kubectl_pvc_restore import locks, volsync
from kubectl_pvc_restore.selector import Selector

SOURCE = {
    "metadata": {"name": "src", "namespace": "ns"},
    "spec": {"sourcePVC": "data", "restic": {
        "repository": "repo-secret", "customCA": {"secretName": "ca", "key": "ca.crt"}, "retain": {"daily": 3},
        "pruneIntervalDays": 7, "copyMethod": "Snapshot", "cacheCapacity": "2Gi", "cacheStorageClassName": "fast",
        "cacheAccessModes": ["ReadWriteOnce"], "moverSecurityContext": {"runAsUser": 1000},
        "moverServiceAccount": "sa", "moverPodLabels": {"a": "b"}, "moverResources": {"limits": {"cpu": "1"}},
        "moverAffinity": {"nodeAffinity": {}}, "storageClassName": "x", "volumeSnapshotClassName": "y"}},
}


def test_restic_destination_copies_mover_config_and_restores_directly():
    rd = volsync.destination_manifest(SOURCE, restore_name="r1", namespace="ns", pvc="data",
                                      selector=Selector(previous=2), trigger="t", owner_reference={"uid": "u"})
    restic = rd["spec"]["restic"]
    assert rd["metadata"]["name"] == "pvc-restore-r1" and rd["metadata"]["ownerReferences"] == [{"uid": "u"}]
    assert rd["spec"]["trigger"] == {"manual": "t"}
    assert restic == {
        "repository": "repo-secret", "customCA": {"secretName": "ca", "key": "ca.crt"}, "cacheCapacity": "2Gi",
        "cacheStorageClassName": "fast", "cacheAccessModes": ["ReadWriteOnce"],
        "moverSecurityContext": {"runAsUser": 1000}, "moverServiceAccount": "sa", "moverPodLabels": {"a": "b"},
        "moverResources": {"limits": {"cpu": "1"}}, "moverAffinity": {"nodeAffinity": {}},
        "copyMethod": "Direct", "destinationPVC": "data", "enableFileDeletion": True, "previous": 2}


def test_cache_storage_class_setting_overrides_the_source():
    rd = volsync.destination_manifest(SOURCE, restore_name="r", namespace="ns", pvc="data",
                                      selector=Selector(restore_as_of="2024-01-01T00:00:00Z"), trigger="t",
                                      cache_storage_class="local")
    assert rd["spec"]["restic"]["cacheStorageClassName"] == "local"
    assert rd["spec"]["restic"]["restoreAsOf"] == "2024-01-01T00:00:00Z" and "previous" not in rd["spec"]["restic"]


@pytest.mark.parametrize("mover", ["rsync", "rsyncTLS", "syncthing", "external"])
def test_replicating_movers_cannot_restore(mover):
    source = {"metadata": {"name": "s"}, "spec": {"sourcePVC": "d", mover: {}}}
    with pytest.raises(volsync.VolsyncError, match=f"uses the {mover} mover"):
        volsync.check_restorable(source, Selector())


def test_rclone_latest_only():
    source = {"metadata": {"name": "s"}, "spec": {"rclone": {"rcloneConfig": "c", "rcloneDestPath": "b/p",
                                                             "rcloneConfigSection": "r"}}}
    assert volsync.check_restorable(source, Selector()) == "rclone"
    with pytest.raises(volsync.VolsyncError, match="keeps only the latest"):
        volsync.check_restorable(source, Selector(previous=1))
    rd = volsync.destination_manifest(source, restore_name="r", namespace="n", pvc="d", selector=Selector(), trigger="t")
    assert rd["spec"]["rclone"] == {"rcloneConfig": "c", "rcloneDestPath": "b/p", "rcloneConfigSection": "r",
                                    "copyMethod": "Direct", "destinationPVC": "d"}


def status(trigger, result, logs):
    return {"status": {"lastManualSync": trigger, "latestMoverStatus": {"result": result, "logs": logs}}}


def test_outcome():
    assert not volsync.outcome({"status": {"lastManualSync": "old"}}, "new").done
    ok = volsync.outcome(status("t", "Successful", "Selected restic snapshot with id: abc123\n=== Done ==="), "t")
    assert ok.done and ok.error is None and ok.snapshot == "abc123"
    failed = volsync.outcome(status("t", "Failed", "\n".join(f"line {i}" for i in range(30))), "t")
    assert failed.error.startswith("the volsync mover failed") and "line 29" in failed.error and "line 5\n" not in failed.error
    none = volsync.outcome(status("t", "Successful", "No eligible snapshots found\n=== No data will be restored ==="), "t")
    assert none.done and "no snapshot matched" in none.error


def test_lock_names_fit_kubernetes_limits():
    assert locks.lock_name("data") == "pvc-restore-lock-data"
    long = "a" * 253
    assert len(locks.lock_name(long)) <= 253 and locks.lock_name(long) != locks.lock_name("a" * 252 + "b")


def test_lock_staleness():
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    lock = {"metadata": {"creationTimestamp": "2025-12-31T23:50:00Z"}, "data": {"holder": "r", "holderUID": "u"}}
    five = dt.timedelta(minutes=5)
    assert locks.is_stale(lock, None, now=now, min_age=five)
    assert not locks.is_stale(lock, None, now=now, min_age=dt.timedelta(hours=1))
    live = {"metadata": {"uid": "u"}, "status": {"phase": "Restore"}}
    assert not locks.is_stale(lock, live, now=now, min_age=five)
    assert locks.is_stale(lock, {"metadata": {"uid": "u"}, "status": {"phase": "Finished"}}, now=now, min_age=five)
    assert locks.is_stale(lock, {"metadata": {"uid": "other"}, "status": {}}, now=now, min_age=five)


snapshot_times = st.lists(st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2025, 1, 1)),
                          min_size=0, max_size=8, unique=True)


@given(snapshot_times, st.integers(min_value=0, max_value=9),
       st.one_of(st.none(), st.datetimes(min_value=dt.datetime(2019, 1, 1), max_value=dt.datetime(2025, 6, 1))))
def test_simulator_selection_matches_restic_rule(times, previous, as_of):
    snaps = [{"id": f"s{i}", "time": t.replace(tzinfo=dt.timezone.utc).isoformat()} for i, t in enumerate(times)]
    as_of_text = as_of.replace(tzinfo=dt.timezone.utc).isoformat() if as_of else None
    chosen = volsync.select_restic_snapshot(snaps, previous=previous, restore_as_of=as_of_text)
    secs = {s["id"]: t.replace(microsecond=0) for s, t in zip(snaps, times)}
    eligible = sorted((s for s in snaps if as_of is None or secs[s["id"]] <= as_of.replace(microsecond=0)),
                      key=lambda s: secs[s["id"]], reverse=True)
    if previous < len(eligible):
        assert chosen is not None and secs[chosen["id"]] == secs[eligible[previous]["id"]]
    else:
        assert chosen is None
