"""Duration values for flags and environment variables: ``30s``, ``5m``, ``1h``, ``1h30m``, ``250ms`` or plain
seconds (``2.5``)."""

from __future__ import annotations

import re

import click

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": "0.001", "s": "1", "m": "60", "h": "3600"}


def parse_duration(text: str) -> float:
    value = text.strip()
    try:
        return float(value)
    except ValueError:
        pass
    parts = _PART.findall(value)
    if not value or "".join(a + b for a, b in parts) != value:
        raise ValueError(f"{text!r} is not a duration (examples: 30s, 5m, 1h30m, 2.5)")
    from decimal import Decimal

    # Added exactly, as Go adds nanoseconds: `0.022353275s977.646725ms` is 1s to the API server, and must be here.
    return float(sum(Decimal(amount) * Decimal(_UNITS[unit]) for amount, unit in parts))


#: A restore's timeout (spec.timeout) is at least this: a zero timeout would stop the workloads for nothing.
MIN_RESTORE_TIMEOUT = 1.0
#: ... and at most this (about 114 years), as the CRD's rules say (its form allows at most 6 digits of hours and each
#: unit once, so that no value it takes overflows the API server's durations, Go's, about 292 years).
MAX_RESTORE_TIMEOUT_HOURS = 999999


def restore_timeout(text: str) -> str:
    """A per-restore timeout as the CRD's duration string (``2h``, ``1h30m``, ``1.5s``: hours, minutes and seconds,
    each once, in that order, as the CRD's rule wants them; ``90m`` and plain seconds are written that way too);
    ValueError, with the message for the user, when it is not a duration of at least 1s and at most 999999h."""
    import math

    seconds = parse_duration(text.strip())
    if not math.isfinite(seconds):
        raise ValueError(f"{text!r} is not a duration (examples: 30s, 5m, 1h30m)")
    if seconds < MIN_RESTORE_TIMEOUT:
        raise ValueError(f"{text!r}: the restore timeout must be at least {MIN_RESTORE_TIMEOUT:g}s (a zero timeout "
                         "would stop the workloads for nothing); e.g. 30m, 2h")
    millis = round(seconds * 1000)
    if millis > MAX_RESTORE_TIMEOUT_HOURS * 3_600_000:
        raise ValueError(f"{text!r}: the restore timeout must be at most {MAX_RESTORE_TIMEOUT_HOURS}h")
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    return ((f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
            + (f"{millis / 1000:.3f}".rstrip("0").rstrip(".") + "s" if millis else ""))


def format_duration(seconds: float) -> str:
    """``0.4s``, ``12s``, ``3m05s``, ``2h10m``: how long a phase took."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


class Duration(click.ParamType):
    name = "duration"

    def __init__(self, minimum: float = 0.0) -> None:
        self.minimum = minimum

    def convert(self, value, param, ctx):  # noqa: ANN001 - click's signature
        if isinstance(value, (int, float)):
            seconds = float(value)
        else:
            try:
                seconds = parse_duration(str(value))
            except ValueError as exc:
                self.fail(str(exc), param, ctx)
        if seconds < self.minimum:
            self.fail(f"must be at least {self.minimum:g}s", param, ctx)
        return seconds
