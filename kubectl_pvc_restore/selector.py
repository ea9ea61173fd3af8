"""Which snapshot to restore: parsing the restore annotation (and the CLI's flags) into a Selector.

The annotation's grammar is strict, because a typo must never restore the wrong data:

* ``""``: the latest snapshot;
* ``"N"`` (a non-negative decimal integer): skip the N newest snapshots, as volsync's ``previous`` does;
* an RFC3339 timestamp with ``T`` and a zone (``2024-05-01T10:00:00Z``): the newest snapshot at or before it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from .model import Spec, format_time

#: The largest ``previous`` accepted; the CRD schema enforces the same bound.
MAX_PREVIOUS = 10000

_INTEGER = re.compile(r"[0-9]+")
_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<time>\d{2}:\d{2}:\d{2})(?P<fraction>\.\d+)?(?P<zone>[Zz]|[+-]\d{2}:\d{2})"
)


class SelectorError(ValueError):
    """A selector value that cannot be used; the message says why and what is accepted."""


@dataclasses.dataclass(frozen=True)
class Selector:
    previous: int | None = None
    restore_as_of: str | None = None

    def __post_init__(self) -> None:
        if self.previous is not None and self.restore_as_of is not None:
            raise SelectorError("previous and restoreAsOf are mutually exclusive")

    @property
    def is_latest(self) -> bool:
        return not self.previous and self.restore_as_of is None

    def spec(self, pvc: str) -> Spec:
        return Spec(pvc=pvc, previous=self.previous, restore_as_of=self.restore_as_of)

    def describe(self) -> str:
        return self.spec("").describe_selector()


ACCEPTED = 'accepted: "" (latest), a number N (the N-th snapshot before the latest), or an RFC3339 time such as 2024-05-01T10:00:00Z'


def parse_previous(text: str) -> int:
    if not _INTEGER.fullmatch(text):
        raise SelectorError(f"{text!r} is not a non-negative whole number")
    value = int(text)
    if value > MAX_PREVIOUS:
        raise SelectorError(f"{value} is too far back (at most {MAX_PREVIOUS})")
    return value


def parse_rfc3339(text: str, *, now: dt.datetime | None = None) -> dt.datetime:
    """Parse a strict RFC3339 time (``T`` separator and a zone), rejecting impossible dates and future times."""
    match = _RFC3339.fullmatch(text)
    if not match:
        raise SelectorError(f"{text!r} is not an RFC3339 time with a zone, such as 2024-05-01T10:00:00Z")
    zone = match["zone"].upper()
    iso = f"{match['date']}T{match['time']}{match['fraction'] or ''}{'+00:00' if zone == 'Z' else zone}"
    try:
        value = dt.datetime.fromisoformat(iso)
    except ValueError as exc:
        raise SelectorError(f"{text!r} is not a valid date and time: {exc}") from None
    now = now or dt.datetime.now(dt.timezone.utc)
    if value > now:
        raise SelectorError(f"{text!r} is in the future; no snapshot can be that new")
    return value


def parse_annotation(value: str | None, *, now: dt.datetime | None = None) -> Selector:
    """Parse the value of the restore annotation. Raises SelectorError with a message fit for a user."""
    text = (value or "").strip()
    if text == "":
        return Selector()
    if text[0].isdigit() and _INTEGER.fullmatch(text):
        previous = parse_previous(text)
        return Selector(previous=previous or None)
    if _RFC3339.fullmatch(text) or (len(text) >= 10 and text[4:5] == "-"):
        return Selector(restore_as_of=format_time(parse_rfc3339(text, now=now)))
    raise SelectorError(f"{value!r} is not a snapshot selector; {ACCEPTED}")


def parse_as_of(text: str, *, now: dt.datetime | None = None) -> dt.datetime:
    """Parse a user's ``--as-of``: RFC3339, or a looser date/time (local zone when none is given), or ``N ago``.

    Used by the CLI and the TUI, where a person types; the annotation stays strict (``parse_annotation``).
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    raw = text.strip()
    relative = re.fullmatch(r"(\d+)\s*(s|sec|m|min|h|hr|hours?|d|days?|w|weeks?)\s+ago", raw, re.IGNORECASE)
    if relative:
        amount, unit = int(relative[1]), relative[2].lower()[0]
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit] * amount
        return now - dt.timedelta(seconds=seconds)
    if _RFC3339.fullmatch(raw):
        return parse_rfc3339(raw, now=now)
    from dateutil import parser as dateparser

    try:
        value = dateparser.parse(raw)
    except (ValueError, OverflowError) as exc:
        raise SelectorError(f"{text!r} is not a date and time I can read ({exc}); try 2024-05-01T10:00:00Z") from None
    if value.tzinfo is None:
        value = value.astimezone()  # a time without a zone is the user's local time
    if value > now:
        raise SelectorError(f"{text!r} is in the future; no snapshot can be that new")
    return value
