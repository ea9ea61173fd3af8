"""Locks with holder, age and whether the holder is alive; clear a stale one, refuse a live one."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Header

from ..data import LiveLock, LockRow
from ...formatting import age
from ..widgets import PolledScreen, KeyedTable, MessageBar


class LocksScreen(PolledScreen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("c", "clear", "Clear lock")]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[LockRow] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield KeyedTable(["NAMESPACE", "PVC", "LOCK", "HOLDER", "HOLDER STATE", "AGE"], id="locks")
        yield MessageBar()
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "locks"
        self.query_one(KeyedTable).focus()
        self.start_polling()


    async def load(self) -> None:
        rows = await self.app.call_api(lambda source: source.locks())
        if rows is None:
            return
        self.rows = rows
        self.query_one(KeyedTable).refill([(f"{r.namespace}/{r.name}", [
            r.namespace, r.pvc, r.name, r.holder, r.holder_state, age(r.created, unknown="")]) for r in rows])

    def action_clear(self) -> None:
        key = self.query_one(KeyedTable).current_key
        row = next((r for r in self.rows if f"{r.namespace}/{r.name}" == key), None)
        if row is None:
            return
        if row.live:
            self.app.status_message = (f"refused: lock {row.name} is held by {row.holder}, which is "
                                       f"{row.holder_state}; cancel that restore instead")
            return
        from .common import Confirm

        def done(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._clear(row), group="clear-lock")

        self.app.push_screen(Confirm(f"Clear lock {row.name} of PVC {row.pvc} (holder {row.holder}, "
                                     f"{row.holder_state})?"), done)

    async def _clear(self, row: LockRow) -> None:
        try:
            await self.app.call_api(lambda source: source.clear_lock(row), raise_=(LiveLock,))
            self.app.status_message = f"cleared lock {row.name}"
        except LiveLock as exc:
            self.app.status_message = f"refused: {exc}"
        self.reload()
