"""The snapshot list users see: which selector restores exactly each snapshot (volsync's rule), sizes, local time."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from kubectl_pvc_restore import snapshot_table, volsync


def snap(i: int, time: str, size=None) -> dict:
    return {"id": f"{i:08x}" + "0" * 56, "short_id": f"{i:08x}", "time": time, "paths": ["/data"],
            "hostname": "volsync", "size": size}


def test_each_snapshot_gets_the_selectors_that_restore_exactly_it():
    snaps = [snap(1, "2024-05-01T10:00:00.5Z", 2048), snap(2, "2024-05-02T10:00:00Z"),
             snap(3, "2024-05-03T10:00:00Z", 5 * 1024 ** 3)]
    rows = snapshot_table.rows(snaps)
    assert [r.short_id for r in rows] == ["00000003", "00000002", "00000001"]
    assert rows[0].selectors() == "latest, --as-of 2024-05-03T10:00:00Z"
    assert rows[2].selectors() == "--previous 2, --as-of 2024-05-01T10:00:00Z"
    assert rows[2].size == "2.0 KiB" and rows[0].size == "5.0 GiB" and rows[1].size == "-"
    assert rows[0].utc == "2024-05-03 10:00:00" and rows[0].local.startswith(
        dt.datetime(2024, 5, 3, 10, tzinfo=dt.timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M"))


def test_two_snapshots_in_one_second_cannot_be_told_apart_by_time():
    rows = snapshot_table.rows([snap(1, "2024-05-01T10:00:00.1Z"), snap(2, "2024-05-01T10:00:00.9Z")])
    assert sum(1 for r in rows if r.as_of) == 1  # volsync resolves that second to one of them only


@given(st.lists(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2030, 1, 1)),
                min_size=1, max_size=8, unique=True))
def test_every_selector_shown_restores_that_snapshot(times):
    snaps = [snap(i, t.replace(tzinfo=dt.timezone.utc).isoformat()) for i, t in enumerate(times)]
    for row in snapshot_table.rows(snaps):
        if row.as_of:
            assert volsync.select_restic_snapshot(snaps, previous=None, restore_as_of=row.as_of) is row.snapshot
        if row.by_previous:
            assert volsync.select_restic_snapshot(snaps, previous=row.index or None,
                                                  restore_as_of=None) is row.snapshot
