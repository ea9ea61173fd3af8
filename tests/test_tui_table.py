"""KeyedTable.refill, the table of every TUI screen: plain-text cells, and a poll that changes nothing (or a few cells)
does not rebuild the table (with 1,000 PVCs a rebuild costs most of a second of CPU, every poll interval)."""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult

from kubectl_pvc_restore.tui.widgets import KeyedTable


class TableApp(App):
    def compose(self) -> ComposeResult:
        yield KeyedTable(["NAME", "STATE"], id="t")


def rows(n: int, state: str = "") -> list[tuple[str, list[object]]]:
    return [(f"ns/p{i}", [f"p{i}", state]) for i in range(n)]


def run(scenario) -> None:
    async def main() -> None:
        app = TableApp()
        async with app.run_test(size=(60, 20)) as pilot:
            await pilot.pause()
            await scenario(app.query_one(KeyedTable), pilot)

    asyncio.run(main())


def cell(table: KeyedTable, row: int, column: int) -> str:
    return str(table.get_row_at(row)[column])


def test_cells_are_plain_text_not_markup():
    async def scenario(table, pilot):
        table.refill([("ns/a", ["a", "error: [b]not bold[/b] [/x]"])])
        await pilot.pause()
        assert cell(table, 0, 1) == "error: [b]not bold[/b] [/x]"

    run(scenario)


def test_an_unchanged_poll_leaves_the_table_alone_and_a_changed_cell_is_updated_in_place():
    async def scenario(table, pilot):
        table.refill(rows(50))
        await pilot.pause()
        table.move_cursor(row=30, animate=False)
        cleared: list[int] = []
        original_clear = table.clear

        def clear(*args, **kwargs):
            cleared.append(1)
            return original_clear(*args, **kwargs)

        table.clear = clear
        table.refill(rows(50))
        assert not cleared and table.row_count == 50

        changed = rows(50)
        changed[30] = ("ns/p30", ["p30", "Restore: r-1 (a longer value than before)"])
        table.refill(changed)
        await pilot.pause()
        assert not cleared, "same rows, one cell changed: updated in place"
        assert cell(table, 30, 1) == "Restore: r-1 (a longer value than before)"
        assert table.current_key == "ns/p30"

        table.refill(rows(40))  # other rows: rebuilt, the cursor's row kept
        await pilot.pause()
        assert cleared and table.row_count == 40 and table.current_key == "ns/p30"
        assert cell(table, 30, 1) == ""

    run(scenario)
