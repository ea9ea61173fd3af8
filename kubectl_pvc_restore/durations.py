"""Duration values for flags and environment variables: ``30s``, ``5m``, ``1h``, ``1h30m``, ``250ms`` or plain
seconds (``2.5``)."""

from __future__ import annotations

import re

import click

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    value = text.strip()
    try:
        return float(value)
    except ValueError:
        pass
    parts = _PART.findall(value)
    if not value or "".join(a + b for a, b in parts) != value:
        raise ValueError(f"{text!r} is not a duration (examples: 30s, 5m, 1h30m, 2.5)")
    return sum(float(amount) * _UNITS[unit] for amount, unit in parts)


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
