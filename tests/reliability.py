"""The reliability suite's ledger (issue 13): what the chaos and bad-input tests did, printed as one table at the end
of the session and written to ``reliability-summary.json`` (or ``--reliability-report PATH``).

Tests count with ``ledger.count("restores run")``, ``ledger.count("faults injected", kind="500", n=3)`` and report a
broken invariant with ``ledger.violation("...")`` (which also fails the test that found it: a violation is never only
a number). Scale: ``--soak-restores N`` (default: the short form CI runs) and ``--fault-rate F``; the long run is

    ./scripts/test.sh -m reliability --soak-restores 100

The ``reliability`` marker is set on every test that uses the ``ledger`` fixture."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

#: The table's rows, in order; any other counted row is appended after them.
ROWS = ("restores run", "faults injected", "controller kills", "API server restarts", "leader failovers",
        "bad inputs tried", "secret searches", "violations")


class Ledger:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.kinds: dict[str, Counter[str]] = {}
        self.violations: list[str] = []

    def count(self, row: str, n: int = 1, *, kind: str | None = None) -> None:
        with self._lock:
            self.counts[row] += n
            if kind is not None:
                self.kinds.setdefault(row, Counter())[kind] += n

    def violation(self, message: str) -> None:
        """Record a broken invariant and fail the calling test with it."""
        with self._lock:
            self.violations.append(message)
            self.counts["violations"] += 1
        pytest.fail(f"invariant violated: {message}", pytrace=False)

    def check(self, ok: Any, message: str) -> None:
        if not ok:
            self.violation(message)

    def used(self) -> bool:
        return bool(self.counts)

    def rows(self) -> list[tuple[str, str]]:
        names = list(ROWS) + sorted(set(self.counts) - set(ROWS))
        out = []
        for name in names:
            total = self.counts.get(name, 0)
            detail = self.kinds.get(name)
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(detail.items())) if detail else ""
            out.append((name, f"{total}" + (f" ({kinds})" if kinds else "")))
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "kinds": {k: dict(v) for k, v in self.kinds.items()},
                "violations": list(self.violations)}


LEDGER = Ledger()


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("reliability", "the reliability suite (issue 13)")
    group.addoption("--soak-restores", type=int, default=12,
                    help="restores the soak runs (the long run: 100 or more)")
    group.addoption("--fault-rate", type=float, default=0.15,
                    help="share of the controller's API requests the fault proxy spoils")
    group.addoption("--reliability-report", default="reliability-summary.json",
                    help="where the summary table is written as JSON")


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "reliability: the reliability suite (chaos, soak, bad inputs); its figures are "
                                       "printed as one table at the end")
    config.addinivalue_line("markers", "soak: runs --soak-restores restores (its timeout grows with them)")


def soak_budget(config: Any) -> float:
    """Seconds the soak may take for ``--soak-restores`` (on 2 busy cores)."""
    return 180.0 + 10.0 * config.getoption("--soak-restores")


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    for item in items:
        if "ledger" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.reliability)
        if item.get_closest_marker("soak"):  # its time grows with --soak-restores
            item.add_marker(pytest.mark.timeout(soak_budget(config) + 240))


@pytest.fixture
def ledger() -> Ledger:
    return LEDGER


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    if not LEDGER.used():
        return
    rows = LEDGER.rows()
    width = max(len(name) for name, _ in rows)
    terminalreporter.section("reliability summary")
    terminalreporter.write_line(f"{'what':<{width}}  count")
    for name, value in rows:
        terminalreporter.write_line(f"{name:<{width}}  {value}")
    for message in LEDGER.violations:
        terminalreporter.write_line(f"VIOLATION: {message}", red=True)
    report = Path(config.getoption("--reliability-report"))
    if not report.is_absolute():
        report = Path(config.rootpath) / report
    report.write_text(json.dumps(LEDGER.as_dict(), indent=2, sort_keys=True) + "\n")
    terminalreporter.write_line(f"(written to {report})")
