"""Which snapshot to restore: parsing the restore annotation (and the CLI's flags) into a Selector.

The annotation's grammar is strict, because a typo must never restore the wrong data (anything else is refused,
with whitespace, leading zeros and times before 1970 or in the future):

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
#: ASCII digits only: ``\d`` alone also matches other scripts' digits (``２０２４``), which are no RFC3339 time.
_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<time>\d{2}:\d{2}:\d{2})(?P<fraction>\.\d+)?(?P<zone>[Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
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


ACCEPTED = ('accepted: "" (latest), a whole number N without leading zeros (the N-th snapshot before the latest), '
            'or an RFC3339 time such as 2024-05-01T10:00:00Z')
AS_OF_FORMS = ('accepted: an RFC3339 time (2024-05-01T10:00:00Z, 2024-05-01T12:00:00+02:00), a local date and time '
               '(2024-05-01, 2024-05-01 10:00, 2024-05-01 10:00:30), or a time ago (30m ago, 3 hours ago, 2 days ago, '
               '1 week ago)')
#: No backup can be older than this: earlier "as of" times are typos (0001-01-01, a year without its century).
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
#: How far ahead of the checking clock a time may be (clocks of a laptop, the controller and the API server differ).
CLOCK_SKEW = dt.timedelta(minutes=1)
#: How much of a refused value a message repeats (a 10 KB value must not bury the reason).
SHOWN = 64


def show(value: str) -> str:
    """``value`` quoted for a message, cut to SHOWN characters."""
    return repr(value) if len(value) <= SHOWN else repr(value[:SHOWN]) + f"... ({len(value)} characters)"


def check_restore_as_of(value: dt.datetime, *, now: dt.datetime | None = None, text: str | None = None) -> dt.datetime:
    """The one rule for every "as of" time (annotation, PVCRestore spec, CLI, TUI): not before 1970 and not in the
    future (beyond CLOCK_SKEW)."""
    label = show(text) if text is not None else format_time(value) if value.year >= 1000 else str(value)
    if value < EARLIEST:
        raise SelectorError(f"{label} is before 1970; no backup can be that old")
    now = now or dt.datetime.now(dt.timezone.utc)
    if value > now + CLOCK_SKEW:
        raise SelectorError(f"{label} is in the future; no snapshot can be that new")
    return value


def parse_previous(text: str) -> int:
    if not _INTEGER.fullmatch(text):
        raise SelectorError(f"{show(text)} is not a non-negative whole number")
    if len(text) > 1 and text[0] == "0":
        raise SelectorError(f"{show(text)} has leading zeros; write {text.lstrip('0') or '0'}")
    if len(text) > 6 or int(text) > MAX_PREVIOUS:
        raise SelectorError(f"{show(text)} is too far back (at most {MAX_PREVIOUS})")
    return int(text)


def parse_rfc3339(text: str, *, now: dt.datetime | None = None) -> dt.datetime:
    """Parse a strict RFC3339 time (``T`` separator and a zone), rejecting impossible dates, times before 1970 and
    future times."""
    match = _RFC3339.fullmatch(text)
    if not match:
        raise SelectorError(f"{show(text)} is not an RFC3339 time with a zone, such as 2024-05-01T10:00:00Z")
    zone = match["zone"].upper()
    if zone != "Z" and (int(zone[1:3]) > 23 or int(zone[4:6]) > 59):  # fromisoformat: 05:60 is 06:00, 25:00 an error
        raise SelectorError(f"{show(text)} is not a valid date and time: its zone offset {zone} is not between "
                            "-23:59 and +23:59")
    fraction = (match["fraction"] or "")[:7].ljust(7, "0") if match["fraction"] else ""
    iso = f"{match['date']}T{match['time']}{fraction}{'+00:00' if zone == 'Z' else zone}"
    try:
        value = dt.datetime.fromisoformat(iso)
    except ValueError as exc:
        raise SelectorError(f"{show(text)} is not a valid date and time: {exc}") from None
    try:
        return check_restore_as_of(value, now=now, text=text)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 in UTC
        raise SelectorError(f"{show(text)} is before 1970; no backup can be that old") from None


def parse_annotation(value: str | None, *, now: dt.datetime | None = None) -> Selector:
    """Parse the value of the restore annotation. Strict: a value that could mean two things is refused.
    Raises SelectorError with a message fit for a user, its reason first."""
    text = value or ""
    if text == "":
        return Selector()
    if text.strip() == "":
        raise SelectorError('the value is only whitespace; for the latest snapshot set it to "" (empty)')
    if text != text.strip():
        raise SelectorError(f"{show(text)} has leading or trailing whitespace; {ACCEPTED}")
    if _INTEGER.fullmatch(text):
        previous = parse_previous(text)
        return Selector(previous=previous or None)
    if _RFC3339.fullmatch(text) or (len(text) >= 10 and text[4:5] == "-"):
        return Selector(restore_as_of=format_time(parse_rfc3339(text, now=now)))
    raise SelectorError(f"{show(text)} is not a snapshot selector; {ACCEPTED}")


_UNITS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "mins": 60, "minute": 60,
          "minutes": 60, "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400,
          "days": 86400, "w": 604800, "week": 604800, "weeks": 604800}
_RELATIVE = re.compile(r"(\d{1,9})\s*([a-z]+)\s+ago", re.IGNORECASE)
_LOCAL = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?")


def parse_as_of(text: str, *, now: dt.datetime | None = None) -> dt.datetime:
    """Parse a user's ``--as-of``: RFC3339, ``YYYY-MM-DD[ HH:MM[:SS]]`` in the local zone, or ``N units ago``.

    Only unambiguous forms: ``03/04/2024`` (month or day first?) and ``1`` (the 1st of this month?) are refused
    with the accepted forms listed. Used by the CLI and the TUI; the annotation is stricter (``parse_annotation``).
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    raw = text.strip()
    relative = _RELATIVE.fullmatch(raw)
    if relative:
        unit = _UNITS.get(relative[2].lower())
        if unit is None:
            raise SelectorError(f"{show(text)}: unknown unit {relative[2]!r}; {AS_OF_FORMS}")
        try:
            value = now - dt.timedelta(seconds=int(relative[1]) * unit)
        except OverflowError:
            raise SelectorError(f"{show(text)} is before 1970; no backup can be that old") from None
        return check_restore_as_of(value, now=now, text=text)
    if _RFC3339.fullmatch(raw):
        return parse_rfc3339(raw, now=now)
    local = _LOCAL.fullmatch(raw)
    if not local:
        raise SelectorError(f"{show(text)} is not a date and time I can read unambiguously; {AS_OF_FORMS}")
    try:
        year, month, day, hours, minutes, seconds = (int(part or 0) for part in local.groups())
        value = dt.datetime(year, month, day, hours, minutes, seconds)
    except ValueError as exc:
        raise SelectorError(f"{show(text)} is not a valid date and time: {exc}") from None
    if value.year < EARLIEST.year:
        raise SelectorError(f"{show(text)} is before 1970; no backup can be that old")
    # No zone given: the user's local time. A local time that a daylight-saving change skips or repeats is not one
    # moment (and Python versions resolve it differently): refused, with the zone to add.
    try:
        first, second = value.replace(fold=0).astimezone(), value.replace(fold=1).astimezone()
    except (OverflowError, ValueError, OSError):
        raise SelectorError(f"{show(text)} is in the future; no snapshot can be that new") from None
    if first != second:
        raise SelectorError(f"{show(text)} does not exist or happens twice in your local time zone (a daylight-saving "
                            f"change); give the zone, e.g. {value.strftime('%Y-%m-%dT%H:%M:%S')}+01:00")
    return check_restore_as_of(first, now=now, text=text)
