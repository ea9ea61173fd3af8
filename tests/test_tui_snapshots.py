"""SVG snapshots of each TUI screen at 80x24 (pytest-textual-snapshot), over fixed data. Update them after a
deliberate layout change with: ./scripts/test.sh tests/test_tui_snapshots.py --snapshot-update"""

from __future__ import annotations

from kubectl_pvc_restore.tui.app import PVCRestoreApp
from tests.tui_static import StaticSource

SIZE = (80, 24)


def app() -> PVCRestoreApp:
    async def connect():
        return StaticSource()
    return PVCRestoreApp(connect, poll_interval=60)


async def settle(pilot):
    await pilot.pause(0.3)


def test_pvcs_screen(snap_compare):
    assert snap_compare(app(), terminal_size=SIZE, run_before=settle)


def test_pvcs_screen_filtered(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("m", "e", "d")
        await pilot.pause(0.2)
    assert snap_compare(app(), terminal_size=SIZE, run_before=run_before)


def test_restore_dialog_with_snapshot_list(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("r")
        await pilot.pause(0.5)
    assert snap_compare(app(), terminal_size=SIZE, run_before=run_before)


def test_confirm_restore(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("r")
        await pilot.pause(0.5)
        await pilot.click("#next")
        await pilot.pause(0.5)
    assert snap_compare(app(), terminal_size=SIZE, run_before=run_before)


def test_restore_screen(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        pilot.app.screen.query_one("#pvcs").move_cursor(row=2)  # db: it has a restore running
        await pilot.press("enter")
        await pilot.pause(0.5)
    assert snap_compare(app(), terminal_size=SIZE, run_before=run_before)


def test_restores_screen(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("t")
        await pilot.pause(0.3)
    assert snap_compare(app(), terminal_size=SIZE, run_before=run_before)


def test_locks_screen(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("l")
        await pilot.pause(0.3)
    assert snap_compare(app(), terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.3)
    assert snap_compare(app(), terminal_size=SIZE, run_before=run_before)
