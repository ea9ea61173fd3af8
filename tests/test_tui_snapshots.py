"""SVG snapshots of each TUI screen at 80x24 (pytest-textual-snapshot), over fixed data. Update them after a
deliberate layout change with: ./scripts/test.sh tests/test_tui_snapshots.py --snapshot-update"""

from __future__ import annotations

import time

import pytest

from kubectl_pvc_restore.tui.app import PVCRestoreApp
from tests.tui_static import StaticSource

SIZE = (80, 24)


@pytest.fixture(autouse=True)
def utc_local_time(monkeypatch):
    """The snapshot list shows local time: the pictures must not depend on the machine's zone."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def app() -> PVCRestoreApp:
    async def connect():
        return StaticSource()
    return PVCRestoreApp(connect, poll_interval=60)


def after(*steps):
    """run_before: let the first load land, then press keys / click selectors ("#id") in order."""
    async def run_before(pilot):
        await pilot.pause(0.3)
        for step in steps:
            if callable(step):
                result = step(pilot)
                if hasattr(result, "__await__"):
                    await result
            elif step.startswith("#"):
                await pilot.click(step)
            else:
                await pilot.press(step)
            await pilot.pause(0.4)
        for field in pilot.app.screen.query("Input"):  # a blinking cursor would make the picture depend on timing
            field.cursor_blink = False
        await pilot.pause(0.1)
    return run_before


def press(selector):
    """Press a button that may be scrolled out of an 80x24 view (the restore dialog scrolls)."""
    return lambda pilot: pilot.app.screen.query_one(selector).press()


def select_row(index):
    return lambda pilot: pilot.app.screen.query_one("#pvcs").move_cursor(row=index)


def test_pvcs_screen(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=after())


def test_pvcs_screen_filtered(snap_compare):
    async def typed(pilot):
        await pilot.press("m", "e", "d")  # typed in one go, as a person types
    assert snap_compare(app(), terminal_size=SIZE, run_before=after(typed))


def test_restore_dialog_with_snapshot_list(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=after("r"))


def test_confirm_restore(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=after("r", press("#next")))


def test_restore_screen(snap_compare):
    # row 2 is db, which has a restore running
    assert snap_compare(app(), terminal_size=SIZE, run_before=after(select_row(2), "enter"))


def test_restores_screen(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=after("t"))


def test_locks_screen(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=after("l"))


def test_help_screen(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=after("question_mark"))


def test_the_readmes_pictures_are_these_snapshots():
    """The README shows the TUI through the SVGs these tests compare against, so its pictures cannot go stale."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+\.svg)\)", (root / "README.md").read_text())
    assert len(pictures) >= 3
    tests = (root / "tests" / "test_tui_snapshots.py").read_text()
    for picture in pictures:
        path = root / picture
        assert path.is_file() and path.parent.name == "test_tui_snapshots", picture
        assert f"def {path.stem}(" in tests, f"{picture} is not drawn by a test"
