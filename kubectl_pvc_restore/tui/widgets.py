"""Small widgets shared by the screens."""

from __future__ import annotations

from typing import Any, Iterable

from textual.coordinate import Coordinate
from textual.screen import Screen
from textual.widgets import DataTable, Static


class PolledScreen(Screen):
    """A screen whose data is (re)loaded by ``load()`` in a background worker, now and every poll interval, so the
    UI never waits for the API. Subclasses call ``start_polling()`` from ``on_mount``."""

    def start_polling(self) -> None:
        self.set_interval(self.app.poll_interval, self.reload)
        self.reload()

    def reload(self) -> None:
        self.run_worker(self._load(), group="load", exclusive=True)

    async def _load(self) -> None:
        from textual.css.query import NoMatches

        try:
            await self.load()
        except NoMatches:
            # The screen's widgets went away while its load awaited the API (the app quits, or the screen was
            # dismissed): there is nothing left to show the result in.
            if self.is_attached and self.app.screen is self and not getattr(self.app, "_exit", False):
                raise

    async def load(self) -> None:
        raise NotImplementedError


class MessageBar(Static):
    """One line above the footer: the app's last error or notice (API errors never stop the app)."""

    DEFAULT_CSS = """
    MessageBar { height: 1; dock: bottom; background: $boost; color: $text-muted; padding: 0 1; }
    MessageBar.-error { background: $error 30%; color: $text; }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "status_message", self._show)

    def _show(self, value: str) -> None:
        from rich.text import Text

        self.update(Text(value))
        self.set_class(value.startswith("error"), "-error")


class KeyedTable(DataTable):
    """A row-cursor DataTable whose rows have keys, refilled without losing the cursor's row."""

    DEFAULT_CSS = "KeyedTable { height: 1fr; }"

    def __init__(self, columns: Iterable[str], **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._columns = list(columns)

    def on_mount(self) -> None:
        self.add_columns(*self._columns)

    @property
    def current_key(self) -> str | None:
        if self.row_count == 0:
            return None
        return self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key.value

    def refill(self, rows: list[tuple[str, list[Any]]]) -> None:
        keep = self.current_key
        self.clear()
        for key, cells in rows:
            self.add_row(*[("" if c is None else str(c)) for c in cells], key=key)
        keys = [key for key, _ in rows]
        if keep in keys:
            self.move_cursor(row=keys.index(keep), animate=False)
