"""Unit tests: ReplicationSource -> ReplicationDestination, reading the mover outcome, lock naming, and the
simulator's snapshot choice."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
    rd = volsync.destination_manifest(source, restore_name="r", namespace="n", pvc="d", selector=Selector(),
                                      trigger="t")
    assert rd["spec"]["rclone"] == {"rcloneConfig": "c", "rcloneDestPath": "b/p", "rcloneConfigSection": "r",
                                    "copyMethod": "Direct", "destinationPVC": "d"}


def status(trigger, result, logs):
    return {"status": {"lastManualSync": trigger, "latestMoverStatus": {"result": result, "logs": logs}}}


def test_outcome():
    assert not volsync.outcome({"status": {"lastManualSync": "old"}}, "new").done
    ok = volsync.outcome(status("t", "Successful", "Selected restic snapshot with id: abc123\n=== Done ==="), "t")
    assert ok.done and ok.error is None and ok.snapshot == "abc123"
    failed = volsync.outcome(status("t", "Failed", "\n".join(f"line {i}" for i in range(30))), "t")
    assert failed.error.startswith("the volsync mover failed") and "line 29" in failed.error
    assert "line 5\n" not in failed.error
    none = volsync.outcome(status("t", "Successful",
                                  "No eligible snapshots found\n=== No data will be restored ==="), "t")
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
    secs = {s["id"]: t.replace(microsecond=0) for s, t in zip(snaps, times, strict=True)}
    eligible = sorted((s for s in snaps if as_of is None or secs[s["id"]] <= as_of.replace(microsecond=0)),
                      key=lambda s: secs[s["id"]], reverse=True)
    if previous < len(eligible):
        assert chosen is not None and secs[chosen["id"]] == secs[eligible[previous]["id"]]
    else:
        assert chosen is None


# What volsync v0.14.0 really keeps in latestMoverStatus.logs after a restic restore (seen in
# tests/test_real_volsync.py):
# its log filter drops entry.sh's "Selected restic snapshot with id:" line.
REAL_FILTERED_LOG = ("RESTORE_OPTIONS: --delete\nrestoring snapshot 1833616d of [/data] at "
                     "2026-11-26 06:13:36.879202509 +0000 UTC by root@volsync to .\nRestic completed in 4s")


def test_restored_snapshot_from_the_lines_volsync_keeps():
    ok = volsync.outcome(status("t", "Successful", REAL_FILTERED_LOG), "t")
    assert ok.done and ok.error is None and ok.snapshot == "1833616d"
    line = "restoring <Snapshot abcdef12 of [/data] at 2024 by root@volsync> to ."
    assert volsync.restored_snapshot(line) == "abcdef12"
    assert volsync.restored_snapshot("=== Starting restore ===\n") is None


def test_a_failure_volsync_reports_after_its_retries_is_this_syncs_failure():
    # volsync never sets lastManualSync on failure; after the Job's 8th failure it says Failed, with the whole log.
    before = ("Starting container\n=== Check for dir initialized ===\nFatal: wrong password or no key found\n"
              "ERROR: failure connecting to repository, incorrect password\n")
    rd = {"status": {"latestMoverStatus": {"result": "Failed", "logs": before}}}
    failed = volsync.outcome(rd, "t")
    assert failed.done and "incorrect password" in failed.error and failed.untouched
    during = "Starting container\nSelected restic snapshot with id: abc\nFatal: There were 1 errors\n"
    rd = {"status": {"latestMoverStatus": {"result": "Failed", "logs": during}}}
    assert volsync.outcome(rd, "t").done and not volsync.outcome(rd, "t").untouched
    assert not volsync.outcome({"status": {"latestMoverStatus": {"result": "Successful"}}}, "t").done


def test_restore_began_only_unknown_or_proven_otherwise():
    assert volsync.restore_began(None) and volsync.restore_began("")
    assert volsync.restore_began("Fatal: truncated log without its start\n")
    assert not volsync.restore_began("Starting container\nERROR: failure connecting to repository\n")
    assert volsync.restore_began("Starting container\nrestoring snapshot 1833616d of [/data] at x by y to .\n")


def test_mover_job_names_follow_volsyncs_shortening():
    assert volsync.mover_job_names("dst", "pvc-restore-data-1795673814") == {
        "volsync-dst-pvc-restore-data-1795673814", "volsync-rclone-dst-pvc-restore-data-1795673814"}
    long = "pvc-restore-" + "x" * 60
    names = volsync.mover_job_names("src", long)
    assert all(len(n) <= 63 for n in names)
    assert "volsync-src-" + format(__import__("zlib").crc32(long.encode()), "08x") in names


def pod(job, phase="Running", exit_code=None, created="2026-01-01T00:00:00Z"):
    state = {"terminated": {"exitCode": exit_code, "reason": "Error"}} if exit_code is not None else {"running": {}}
    return {"metadata": {"name": f"{job}-abcde", "creationTimestamp": created,
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job}]},
            "status": {"phase": phase, "containerStatuses": [{"name": "restic", "state": state}]}}


def test_failed_mover_is_the_first_failed_attempt_of_this_restores_job():
    mine, other = "volsync-dst-pvc-restore-r", "volsync-dst-pvc-restore-other"
    assert volsync.failed_mover([pod(mine)], destination="pvc-restore-r") is None
    assert volsync.failed_mover([pod(other, "Failed", 3)], destination="pvc-restore-r") is None
    found = volsync.failed_mover([pod(mine, "Running"), pod(mine, "Failed", 3)], destination="pvc-restore-r")
    assert found and found[1] == "exit code 3, Error"
    assert volsync.failed_mover([pod(mine, "Succeeded", 0)], destination="pvc-restore-r") is None
    assert volsync.is_mover_pod(pod("volsync-src-pvc-restore-safety-r"), source="pvc-restore-safety-r")
    assert not volsync.is_mover_pod(pod("volsync-src-data-backup"), destination="pvc-restore-r")


def test_forget_options_are_volsyncs():
    def source(retain):
        return {"spec": {"restic": {} if retain is None else {"retain": retain}}}
    assert volsync.forget_options(source(None)) == "--keep-last 1"
    assert volsync.forget_options(source({})) == "--keep-last 1"
    assert volsync.forget_options(source({"daily": 7, "last": "2"})) == "--keep-daily 7 --keep-last 2"
    assert volsync.forget_options(source(volsync.KEEP_EVERYTHING)) == "--keep-within 1000y"


def test_safety_source_copies_the_repository_and_forgets_nothing():
    src = {"metadata": {"name": "data-backup"}, "spec": {"sourcePVC": "data", "trigger": {"schedule": "0 * * * *"},
           "restic": {"repository": "repo", "copyMethod": "Snapshot", "retain": {"last": "1"},
                      "moverSecurityContext": {"runAsUser": 1000}, "pruneIntervalDays": 3}}}
    rs = volsync.safety_source_manifest(src, restore_name="r", namespace="n", trigger="t")
    assert rs["metadata"]["name"] == "pvc-restore-safety-r" and rs["spec"]["trigger"] == {"manual": "t"}
    assert rs["spec"]["restic"] == {"repository": "repo", "moverSecurityContext": {"runAsUser": 1000},
                                    "copyMethod": "Direct", "retain": {"within": "1000y"}}
    rclone = {"metadata": {"name": "x"}, "spec": {"sourcePVC": "d", "rclone": {"rcloneConfig": "c"}}}
    with pytest.raises(volsync.VolsyncError, match="keeps only the latest copy"):
        volsync.safety_source_manifest(rclone, restore_name="r", namespace="n", trigger="t")


def test_events_of_one_second_come_in_the_order_they_were_written():
    from kubectl_pvc_restore.model import event_order, timeline

    events = [{"metadata": {"name": n, "resourceVersion": rv, "creationTimestamp": "2024-05-03T10:00:00Z"},
               "lastTimestamp": "2024-05-03T10:00:00Z", "reason": reason}
              for n, rv, reason in (("a", "1205", "Restore"), ("b", "1190", "Initialize"), ("c", "1201", "ScaleDown"))]
    assert [e["reason"] for e in sorted(events, key=event_order)] == ["Initialize", "ScaleDown", "Restore"]
    # Restores of earlier versions have no status.timeline: it comes from those events.
    assert [p for p, _, _ in timeline({}, events)] == ["Initialize", "ScaleDown", "Restore"]
    entries = timeline({"timeline": [{"phase": "Initialize", "at": "2024-05-03T10:00:00.100Z"},
                                     {"phase": "ScaleDown", "at": "2024-05-03T10:00:02.600Z"}]}, events)
    assert entries == [("Initialize", "2024-05-03T10:00:00.100Z", 2.5), ("ScaleDown", "2024-05-03T10:00:02.600Z", None)]
