"""The main screen: every PVC with its backup and restore state, filterable by typing."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header, Input

from ..data import PVCRow
from ...formatting import short_time
from ..widgets import PolledScreen, KeyedTable, MessageBar

COLUMNS = ["PVC", "SIZE", "SOURCE", "MOVER", "LAST BACKUP", "RESULT", "RESTORE / LOCK"]


def state(row: PVCRow) -> str:
    if row.restore:
        return f"{row.phase}: {row.restore}"
    return f"locked by {row.lock}" if row.lock else ""


def cells(row: PVCRow, all_namespaces: bool) -> list[str]:
    name = f"{row.namespace}/{row.name}" if all_namespaces else row.name
    return [name, row.size, row.source, row.mover, short_time(row.last_backup)[5:], row.last_result, state(row)]


class PVCsScreen(PolledScreen):
    BINDINGS = [
        Binding("r", "restore", "Restore"),
        Binding("enter", "open", "Open restore", show=False),
        Binding("t", "restores", "Restores"),
        Binding("l", "locks", "Locks"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "app.quit", "Quit"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[PVCRow] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="type to filter PVCs", id="filter")
        yield KeyedTable(COLUMNS, id="pvcs")
        yield MessageBar()
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(KeyedTable).focus()
        self.start_polling()


    async def load(self) -> None:
        rows = await self.app.call_api(lambda source: source.pvcs())
        if rows is not None:
            self.rows = rows
            self.show()

    def show(self) -> None:
        text = self.query_one("#filter", Input).value.strip().lower()
        rows = [r for r in self.rows if text in r.key.lower()]
        all_namespaces = getattr(self.app.source, "namespace", "") is None
        self.query_one(KeyedTable).refill([(r.key, cells(r, all_namespaces)) for r in rows])
        self.sub_title = f"{len(rows)} of {len(self.rows)} PVCs"

    def on_input_changed(self, event: Input.Changed) -> None:
        self.show()

    def on_key(self, event) -> None:  # typing anywhere filters
        filt = self.query_one("#filter", Input)
        if event.character and event.character.isprintable() and not filt.has_focus and len(event.character) == 1 \
                and event.character not in {"r", "t", "l", "q", "?"}:
            filt.focus()
            filt.insert_text_at_cursor(event.character)
            event.stop()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(KeyedTable).focus()

    def action_clear_filter(self) -> None:
        self.query_one("#filter", Input).value = ""
        self.query_one(KeyedTable).focus()

    def selected(self) -> PVCRow | None:
        key = self.query_one(KeyedTable).current_key
        return next((r for r in self.rows if r.key == key), None)

    def action_restore(self) -> None:
        row = self.selected()
        if row is None:
            self.app.status_message = "select a PVC first"
            return
        from .restore_dialog import RestoreDialog

        self.app.push_screen(RestoreDialog(row.namespace, row.name))

    def on_data_table_row_selected(self, event) -> None:
        self.action_open()

    def action_open(self) -> None:
        row = self.selected()
        if row is None:
            return
        if row.restore:
            from .restore import RestoreScreen

            self.app.push_screen(RestoreScreen(row.namespace, row.restore))
        else:
            self.action_restore()

    def action_restores(self) -> None:
        from .restores import RestoresScreen

        self.app.push_screen(RestoresScreen())

    def action_locks(self) -> None:
        from .locks import LocksScreen

        self.app.push_screen(LocksScreen())

    def action_help(self) -> None:
        from .common import Help

        self.app.push_screen(Help())
