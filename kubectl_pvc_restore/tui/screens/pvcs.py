"""The main screen: every PVC with its backup and restore state, filterable by typing."""

from __future__ import annotations

from typing import Iterable

from textual import events
from textual.binding import Binding
from textual.keys import key_to_character
from textual.widget import Widget
from textual.widgets import Input

from ...formatting import short_time
from ..data import PVCRow
from ..widgets import TableScreen

COLUMNS = ["PVC", "SIZE", "SOURCE", "MOVER", "LAST BACKUP", "RESULT", "RESTORE / LOCK"]


def state(row: PVCRow) -> str:
    if row.restore:
        return f"{row.phase}: {row.restore}"
    return f"locked by {row.lock}" if row.lock else ""


def cells(row: PVCRow, all_namespaces: bool) -> list[str]:
    name = f"{row.namespace}/{row.name}" if all_namespaces else row.name
    return [name, row.size, row.source, row.mover, short_time(row.last_backup)[5:], row.last_result, state(row)]


class PVCsScreen(TableScreen):
    BINDINGS = [
        Binding("r", "restore", "Restore"),
        Binding("enter", "open", "Open restore", show=False),
        Binding("t", "app.open_restores", "Restores"),
        Binding("l", "app.open_locks", "Locks"),
        Binding("question_mark", "app.show_help", "Help"),
        Binding("q", "app.quit", "Quit"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]
    COLUMNS = COLUMNS
    TABLE_ID = "pvcs"

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[PVCRow] = []
        #: The printable keys bound on this screen: typing any other printable key filters.
        self.command_keys = {char for binding in self.BINDINGS if isinstance(binding, Binding)
                             for key in binding.key.split(",")
                             if (char := key_to_character(key)) and len(char) == 1 and char.isprintable()}

    def compose_top(self) -> Iterable[Widget]:
        yield Input(placeholder="type to filter PVCs", id="filter")

    async def load(self) -> None:
        rows = await self.app.call_api(lambda source: source.pvcs())
        if rows is not None:
            self.rows = rows
            self.show()

    def show(self) -> None:
        text = self.query_one("#filter", Input).value.strip().lower()
        rows = [r for r in self.rows if text in r.key.lower()]
        all_namespaces = getattr(self.app.source, "namespace", "") is None
        self.table.refill([(r.key, cells(r, all_namespaces)) for r in rows])
        self.sub_title = f"{len(rows)} of {len(self.rows)} PVCs"

    def on_input_changed(self, event: Input.Changed) -> None:
        self.show()

    def on_key(self, event: events.Key) -> None:  # typing anywhere filters
        filt = self.query_one("#filter", Input)
        char = event.character
        if char and len(char) == 1 and char.isprintable() and not filt.has_focus and char not in self.command_keys:
            filt.focus()
            filt.insert_text_at_cursor(char)
            event.stop()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.table.focus()

    def action_clear_filter(self) -> None:
        self.query_one("#filter", Input).value = ""
        self.table.focus()

    def selected(self) -> PVCRow | None:
        key = self.current_key
        return next((r for r in self.rows if r.key == key), None)

    def action_restore(self) -> None:
        row = self.selected()
        if row is None:
            self.app.status_message = "select a PVC first"
            return
        self.app.open_restore_dialog(row.namespace, row.name)

    def action_open(self) -> None:
        row = self.selected()
        if row is None:
            return
        if row.restore:
            self.app.open_restore(row.namespace, row.restore)
        else:
            self.action_restore()
