"""Text formatting shared by the CLI and the TUI: kubectl's ages, aligned tables, JSON/YAML dumps, short times."""

from __future__ import annotations

import datetime as dt
from typing import Any


def age(timestamp: str | None, now: dt.datetime | None = None, *, unknown: str = "<unknown>") -> str:
    """kubectl's short age: 45s, 12m, 3h, 5d (``unknown`` without a time)."""
    from . import model  # here, not at import time: `--help` of the commands using this module stays light

    when = model.parse_time(timestamp)
    if when is None:
        return unknown
    seconds = int(((now or model.now()) - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """Columns as kubectl aligns them: three spaces apart, no trailing blanks."""
    cells = [headers] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in cells)


def dump(obj: Any, fmt: str) -> str:
    """``-o json`` / ``-o yaml``."""
    if fmt == "json":
        import json

        return json.dumps(obj, indent=2)
    import yaml

    return yaml.safe_dump(obj, sort_keys=False).rstrip()


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Objects as kubectl prints a list of them with -o json/yaml."""
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {}}


def short_time(value: str | None) -> str:
    """``2024-05-01T10:00:00Z`` as ``2024-05-01 10:00`` (UTC, to the minute)."""
    return (value or "").replace("T", " ").replace("Z", "")[:16]
