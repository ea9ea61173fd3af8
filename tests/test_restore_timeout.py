"""``--restore-timeout`` (CLI and TUI) is written into spec.timeout in the one spelling the CRD's rule takes, so the
API server never refuses what the CLI accepted; and that rule's form cannot overflow a duration (the API server's
``duration()`` would fail with CEL's own words instead of the rule's message)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from kubectl_pvc_restore.durations import MAX_RESTORE_TIMEOUT_HOURS, parse_duration, restore_timeout

CRD = Path(__file__).resolve().parents[1] / "charts" / "pvc-restore" / "crds" / "pvcrestores.yaml"
GO_MAX_HOURS = (2**63 - 1) / 1e9 / 3600  # time.Duration's largest value


def crd_pattern() -> re.Pattern:
    """The regular expression of spec.timeout's rules (``self.matches('...')``), as CEL reads its string: the same
    in each (the later rules use it to skip a value that is no duration)."""
    schema = yaml.safe_load(CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    rules = [r["rule"] for r in schema["properties"]["spec"]["properties"]["timeout"]["x-kubernetes-validations"]]
    literals = {literal for rule in rules for literal in re.findall(r"self\.matches\('(.*?)'\)", rule)}
    assert len(rules) == 3 and len(literals) == 1, rules
    return re.compile(literals.pop().replace("\\\\", "\\"))


PATTERN = crd_pattern()


@given(st.floats(min_value=1.0, max_value=MAX_RESTORE_TIMEOUT_HOURS * 3600.0, allow_nan=False))
def test_every_accepted_timeout_is_written_as_the_crd_takes_it(seconds):
    text = restore_timeout(repr(seconds))
    assert PATTERN.fullmatch(text), text
    assert abs(parse_duration(text) - round(seconds, 3)) < 0.002, (seconds, text)


@pytest.mark.parametrize("given_,written", [("2s", "2s"), ("48h", "48h"), ("90m", "1h30m"), ("90", "1m30s"),
                                            ("1.5", "1.5s"), ("1s500ms", "1.5s"), ("1h1h", "2h"),
                                            ("999999h", "999999h")])
def test_timeouts_are_written_in_one_spelling(given_, written):
    assert restore_timeout(given_) == written


def test_a_duration_is_added_up_exactly_as_go_does():
    """Parts that make exactly 1s in nanoseconds are 1s here too (floats made it just under, and the controller
    refused what the API server took)."""
    assert parse_duration("0.022353275s977.646725ms") == 1.0
    assert restore_timeout("0.022353275s977.646725ms") == "1s"


@pytest.mark.parametrize("text,message", [("0.5s", "at least 1s"), ("1000000h", "at most 999999h"),
                                          ("999999h1s", "at most 999999h"), ("soon", "is not a duration")])
def test_timeouts_outside_the_crd_are_refused_before_sending(text, message):
    with pytest.raises(ValueError, match=message):
        restore_timeout(text)


def test_no_value_of_the_crd_form_overflows_a_duration():
    """The largest value the rule's form takes, every part at its most digits, is below Go's largest duration."""
    largest = "999999.999999999h9999999.999999999m999999999.999999999s999999999.999999999ms"
    assert PATTERN.fullmatch(largest)
    assert parse_duration(largest) / 3600 < GO_MAX_HOURS
    assert not PATTERN.fullmatch("9999999h") and not PATTERN.fullmatch("1h1h") and not PATTERN.fullmatch("30m1h")
