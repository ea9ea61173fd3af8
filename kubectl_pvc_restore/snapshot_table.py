"""A repository's snapshots as users see them, in ``snapshots``, ``start --dry-run`` and the TUI's picker: newest
first, each with its short id, its time in UTC and local time, host, paths, size, and the selector that restores
exactly it (volsync's rule, ``volsync.select_restic_snapshot``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from . import volsync
from .model import format_time, parse_time


@dataclasses.dataclass(frozen=True)
class SnapshotRow:
    snapshot: dict[str, Any]
    #: Its position for ``previous``: 0 is the latest.
    index: int
    #: A restoreAsOf that restores exactly this snapshot (its time, to the second), or None when another snapshot
    #: of the same second would be restored instead.
    as_of: str | None
    #: Does ``previous: index`` restore exactly it?
    by_previous: bool

    @property
    def short_id(self) -> str:
        return self.snapshot["short_id"]

    @property
    def time(self) -> dt.datetime:
        return parse_time(self.snapshot["time"]).astimezone(dt.timezone.utc)

    @property
    def utc(self) -> str:
        return self.time.strftime("%Y-%m-%d %H:%M:%S")

    @property
    def local(self) -> str:
        return self.time.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")

    @property
    def host(self) -> str:
        return self.snapshot.get("hostname") or "-"

    @property
    def paths(self) -> str:
        return ",".join(self.snapshot.get("paths") or []) or "-"

    @property
    def size(self) -> str:
        return human_size(self.snapshot.get("size"))

    def selectors(self) -> str:
        """``latest``, ``--previous N`` and/or ``--as-of T``: the ones that restore exactly this snapshot."""
        found = []
        if self.by_previous:
            found.append("latest" if self.index == 0 else f"--previous {self.index}")
        if self.as_of:
            found.append(f"--as-of {self.as_of}")
        return ", ".join(found) or "(shares its second with a newer snapshot)"


def rows(snapshots: list[dict[str, Any]]) -> list[SnapshotRow]:
    """Newest first, as volsync's mover orders them."""
    ordered = sorted(snapshots, key=lambda s: parse_time(s["time"]), reverse=True)
    result = []
    for index, snap in enumerate(ordered):
        second = parse_time(snap["time"]).astimezone(dt.timezone.utc).replace(microsecond=0)
        as_of = format_time(second)
        exact = volsync.select_restic_snapshot(snapshots, previous=None, restore_as_of=as_of)
        previous = volsync.select_restic_snapshot(snapshots, previous=index or None, restore_as_of=None)
        result.append(SnapshotRow(snap, index, as_of if exact and exact["id"] == snap["id"] else None,
                                  bool(previous and previous["id"] == snap["id"])))
    return result


def human_size(size: Any) -> str:
    if not isinstance(size, (int, float)) or size < 0:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return "-"
