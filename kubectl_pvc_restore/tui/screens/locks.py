"""Locks with holder, age and whether the holder is alive; clear a stale one, refuse a live one."""

from __future__ import annotations

from textual.binding import Binding

from ...formatting import age
from ..data import LiveLock, LockRow
from ..widgets import TableScreen


class LocksScreen(TableScreen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("c", "clear", "Clear lock")]
    COLUMNS = ["NAMESPACE", "PVC", "LOCK", "HOLDER", "HOLDER STATE", "AGE"]
    TABLE_ID = "locks"
    SUBTITLE = "locks"

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[LockRow] = []

    async def load(self) -> None:
        rows = await self.app.call_api(lambda source: source.locks())
        if rows is None:
            return
        self.rows = rows
        self.table.refill([(f"{r.namespace}/{r.name}", [
            r.namespace, r.pvc, r.name, r.holder, r.holder_state, age(r.created, unknown="")]) for r in rows])

    def action_clear(self) -> None:
        row = next((r for r in self.rows if f"{r.namespace}/{r.name}" == self.current_key), None)
        if row is None:
            return
        if row.live:
            self.app.status_message = (f"refused: lock {row.name} is held by {row.holder}, which is "
                                       f"{row.holder_state}; cancel that restore instead")
            return
        self.app.ask(f"Clear lock {row.name} of PVC {row.pvc} (holder {row.holder}, {row.holder_state})?",
                     lambda: self.run_worker(self._clear(row), group="clear-lock"))

    async def _clear(self, row: LockRow) -> None:
        try:
            await self.app.call_api(lambda source: source.clear_lock(row), raise_=(LiveLock,))
            self.app.status_message = f"cleared lock {row.name}"
        except LiveLock as exc:
            self.app.status_message = f"refused: {exc}"
        self.reload()
