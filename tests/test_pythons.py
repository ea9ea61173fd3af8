"""The unit tests on every Python version the package claims (scripts/test-pythons.sh): the pyproject.toml
classifiers, within requires-python; the version this suite runs on is left to the suite itself. Warm (virtualenvs
.venv-py3.N installed) it takes about 20s on an idle machine; the first run installs each virtualenv (2-4 minutes).
Deselect with ``-m "not pythons"``."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "test-pythons.sh"


# Times as restic (nanoseconds, the host's offset) and Kubernetes (seconds or microseconds, Z) write them. Python
# 3.10's datetime.fromisoformat refuses most of them: these run on every claimed version (not marked `pythons`).
TIMES = [
    ("2024-05-01T10:00:00Z", dt.datetime(2024, 5, 1, 10, 0, 0)),
    ("2024-05-01T10:00:00.123456Z", dt.datetime(2024, 5, 1, 10, 0, 0, 123456)),
    ("2024-05-01T10:00:00.123456789Z", dt.datetime(2024, 5, 1, 10, 0, 0, 123456)),
    ("2024-05-01T12:00:00.123456789+02:00", dt.datetime(2024, 5, 1, 10, 0, 0, 123456)),
    ("2024-05-01T03:00:00.5-07:00", dt.datetime(2024, 5, 1, 10, 0, 0, 500000)),
    ("2024-05-01T10:00:00.9999999z", dt.datetime(2024, 5, 1, 10, 0, 0, 999999)),
    ("2024-05-01T10:00:00", dt.datetime(2024, 5, 1, 10, 0, 0)),  # no zone: UTC
]


@pytest.mark.parametrize("text,utc", TIMES)
def test_kubernetes_and_restic_times_parse_on_this_python(text, utc):
    from kubectl_pvc_restore.model import format_time, parse_time

    parsed = parse_time(text)
    assert parsed.tzinfo is not None and parsed.astimezone(dt.timezone.utc).replace(tzinfo=None) == utc
    assert format_time(parsed) == utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_snapshot_selection_with_restic_times_on_this_python():
    from kubectl_pvc_restore.selector import parse_annotation
    from kubectl_pvc_restore.volsync import select_restic_snapshot

    snapshots = [{"id": "a", "time": "2024-05-01T12:00:00.987654321+02:00"},
                 {"id": "b", "time": "2024-05-02T10:00:00.123456789Z"},
                 {"id": "c", "time": "2024-05-02T19:30:00.5+09:30"}]  # 10:00:00.5Z: the same second as b
    assert select_restic_snapshot(snapshots, previous=None, restore_as_of=None)["id"] in ("b", "c")
    assert select_restic_snapshot(snapshots, previous=2, restore_as_of=None)["id"] == "a"
    assert select_restic_snapshot(snapshots, previous=None, restore_as_of="2024-05-02T09:59:59Z")["id"] == "a"
    assert select_restic_snapshot(snapshots, previous=None, restore_as_of="2024-05-01T10:00:00.1Z")["id"] == "a"
    assert select_restic_snapshot(snapshots, previous=1, restore_as_of="2024-05-01T10:00:00Z") is None
    now = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    assert parse_annotation("2024-05-02T12:00:00.123456789+02:00", now=now).restore_as_of == "2024-05-02T10:00:00Z"


def claimed() -> list[str]:
    text = (REPO / "pyproject.toml").read_text()
    return re.findall(r'"Programming Language :: Python :: (3\.\d+)"', text)


@pytest.mark.pythons
@pytest.mark.timeout(1800)  # the first run creates and installs one virtualenv per version
def test_unit_tests_pass_on_every_claimed_python():
    versions = claimed()
    assert "3.10" in versions, versions  # requires-python's floor is claimed, so it is tested where it exists
    # This suite already runs them on its own interpreter's version.
    others = [v for v in versions if v != f"{sys.version_info[0]}.{sys.version_info[1]}"]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    proc = subprocess.run(["bash", str(SCRIPT)], cwd=REPO, env={**env, "PYTHONS": " ".join(others)},
                          capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0 and "no claimed Python version found on this machine" in output:
        pytest.skip(output)
    assert proc.returncode == 0, output
    for version in others:
        line = re.search(rf"^\[{re.escape(version)}\] (passed: \d+ passed.*|SKIPPED: .*)$", output, re.M)
        assert line, f"no result for Python {version}:\n{output}"
        assert " failed" not in line[1] and " error" not in line[1], line[1]


@pytest.mark.pythons
def test_a_version_without_an_interpreter_is_skipped_with_a_message():
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    proc = subprocess.run(["bash", str(SCRIPT)], cwd=REPO, env={**env, "PYTHONS": "3.99"}, capture_output=True,
                          text=True, timeout=120)
    assert "[3.99] SKIPPED: no Python 3.99 interpreter on this machine" in proc.stdout, proc.stdout + proc.stderr
    assert proc.returncode == 1 and "no claimed Python version found" in proc.stderr  # nothing at all was tested
    assert not (REPO / ".venv-py3.99").exists()
