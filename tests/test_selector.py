"""Unit tests: parsing the restore annotation and the CLI's --as-of."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from kubectl_pvc_restore.model import parse_time
from kubectl_pvc_restore.selector import MAX_PREVIOUS, Selector, SelectorError, parse_annotation, parse_as_of

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def test_empty_is_latest():
    assert parse_annotation("", now=NOW) == Selector()
    assert parse_annotation("0", now=NOW).is_latest


@pytest.mark.parametrize("value,message", [
    ("   ", "only whitespace"),
    ("\t", "only whitespace"),
    (" 1", "leading or trailing whitespace"),
    ("1 ", "leading or trailing whitespace"),
    ("01", "leading zeros; write 1"),
    ("00", "leading zeros; write 0"),
    ("0001-01-01T00:00:00Z", "before 1970"),
    ("0999-12-31T23:59:59Z", "before 1970"),
    ("1969-12-31T23:59:59Z", "before 1970"),
    ("0001-01-01T00:00:00+01:00", "before 1970"),
    ("99999999999999999999", "too far back"),
])
def test_ambiguous_or_impossible_annotations_are_refused(value, message):
    with pytest.raises(SelectorError, match=message):
        parse_annotation(value, now=NOW)


def test_a_huge_value_keeps_its_reason_near_the_start():
    with pytest.raises(SelectorError) as info:
        parse_annotation("x" * 10_000, now=NOW)
    assert "is not a snapshot selector" in str(info.value)[:120] and len(str(info.value)) < 400


@given(st.integers(min_value=1, max_value=MAX_PREVIOUS))
def test_integers_are_previous(n):
    assert parse_annotation(str(n), now=NOW) == Selector(previous=n)


@given(st.integers(min_value=MAX_PREVIOUS + 1))
def test_too_far_back_is_rejected(n):
    with pytest.raises(SelectorError, match="too far back"):
        parse_annotation(str(n), now=NOW)


@given(st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2025, 12, 31),
                    timezones=st.sampled_from([dt.timezone.utc, dt.timezone(dt.timedelta(hours=5, minutes=30)),
                                               dt.timezone(dt.timedelta(hours=-8))])))
def test_rfc3339_round_trips_to_utc_seconds(moment):
    selector = parse_annotation(moment.isoformat(), now=NOW)
    parsed = dt.datetime.fromisoformat(selector.restore_as_of.replace("Z", "+00:00"))
    assert selector.restore_as_of.endswith("Z") and selector.previous is None
    assert parsed == moment.replace(microsecond=0)


@pytest.mark.parametrize("value,message", [
    ("abc", "not a snapshot selector"),
    ("-1", "not a snapshot selector"),
    ("1.5", "not a snapshot selector"),
    ("+3", "not a snapshot selector"),
    ("2024-13-45", "not an RFC3339 time"),
    ("2024-13-45T00:00:00Z", "not a valid date"),
    ("2024-02-30T00:00:00Z", "not a valid date"),
    ("2024-05-01 10:00:00Z", "not an RFC3339 time"),
    ("2024-05-01T10:00:00", "not an RFC3339 time"),
    ("2026-06-01T00:00:00Z", "in the future"),
])
def test_invalid_values_explain_themselves(value, message):
    with pytest.raises(SelectorError, match=message):
        parse_annotation(value, now=NOW)


@given(st.text())
@example("")
@example("0")
@example("3")
@example("2025-12-31T10:00:00Z")
@example("2025-12-31T10:00:00.5+01:00")
def test_any_text_parses_or_raises_selector_error(text):
    try:
        selector = parse_annotation(text, now=NOW)
    except SelectorError as exc:
        assert str(exc)
    else:
        # Whatever was accepted is one of the three forms, read exactly as written.
        if selector.previous is not None:
            assert text == str(selector.previous) and selector.previous > 0
        elif selector.restore_as_of is not None:
            assert parse_time(text).replace(microsecond=0) == parse_time(selector.restore_as_of) <= NOW
        else:
            assert text in ("", "0")


def test_as_of_accepts_human_forms():
    assert parse_as_of("2 days ago", now=NOW) == NOW - dt.timedelta(days=2)
    assert parse_as_of("2025-12-31T10:00:00Z", now=NOW) == dt.datetime(2025, 12, 31, 10, tzinfo=dt.timezone.utc)
    assert parse_as_of("2025-12-31T10:00:00+01:00", now=NOW) == dt.datetime(2025, 12, 31, 9, tzinfo=dt.timezone.utc)
    assert parse_as_of("2025-12-31 10:00", now=NOW) == dt.datetime(2025, 12, 31, 10).astimezone()
    assert parse_as_of("2025-12-31 10:00:30", now=NOW) == dt.datetime(2025, 12, 31, 10, 0, 30).astimezone()
    assert parse_as_of("2025-12-31", now=NOW) == dt.datetime(2025, 12, 31).astimezone()
    assert parse_as_of("3 hours ago", now=NOW) == NOW - dt.timedelta(hours=3)
    assert parse_as_of("30m ago", now=NOW) == NOW - dt.timedelta(minutes=30)
    with pytest.raises(SelectorError, match="in the future"):
        parse_as_of("2027-01-01T00:00:00Z", now=NOW)


@pytest.mark.parametrize("text,message", [
    ("yesterday-ish", "unambiguously"),
    ("1", "unambiguously"),                 # dateutil read it as the 1st of this month
    ("03/04/2024", "unambiguously"),        # month first or day first?
    ("2024-05-01 10:00 +01:00", "unambiguously"),
    ("10000000 weeks ago", "before 1970"),  # was an OverflowError traceback
    ("999999999 days ago", "before 1970"),
    ("3 fortnights ago", "unknown unit"),
    ("1969-12-31", "before 1970"),
    ("2024-02-30", "not a valid date"),
])
def test_as_of_refuses_ambiguous_and_impossible_forms(text, message):
    with pytest.raises(SelectorError, match=message) as info:
        parse_as_of(text, now=NOW)
    if message == "unambiguously":
        assert "2024-05-01T10:00:00Z" in str(info.value) and "days ago" in str(info.value)


@given(st.text())
def test_as_of_any_text_parses_or_raises_selector_error(text):
    try:
        value = parse_as_of(text, now=NOW)
    except SelectorError as exc:
        assert str(exc)
    else:
        assert dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) <= value <= NOW


def test_selector_rejects_both():
    with pytest.raises(SelectorError, match="mutually exclusive"):
        Selector(previous=1, restore_as_of="2024-01-01T00:00:00Z")


def test_as_of_refuses_local_times_a_dst_change_skips_or_repeats(monkeypatch):
    import time

    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        for text in ("2024-03-31 02:30", "2024-10-27 02:30"):  # skipped; happens twice
            with pytest.raises(SelectorError, match="daylight-saving"):
                parse_as_of(text, now=NOW)
        assert parse_as_of("2024-03-31 03:30", now=NOW) == dt.datetime(2024, 3, 31, 1, 30, tzinfo=dt.timezone.utc)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_as_of_far_in_the_future_is_a_message():
    with pytest.raises(SelectorError, match="in the future"):
        parse_as_of("9999-12-31 23:59:59", now=NOW)
