"""Small widgets shared by the screens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from textual import work
from textual.app import ComposeResult
from textual.coordinate import Coordinate
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Header, Static

if TYPE_CHECKING:
    from .app import PVCRestoreApp


class AppScreen(Screen):
    """A screen of this app (``self.app`` typed as the PVCRestoreApp it runs in)."""

    if TYPE_CHECKING:
        app: PVCRestoreApp  # textual types it App[object]


class PolledScreen(AppScreen):
    """A screen whose data is (re)loaded by ``load()`` in a background worker, now and every poll interval, so the
    UI never waits for the API. Subclasses call ``start_polling()`` from ``on_mount``."""

    def start_polling(self) -> None:
        self.set_interval(self.app.poll_interval, self.reload)
        self.reload()

    def reload(self) -> None:
        self._load()

    # A worker made from the method, not from a coroutine made now: a reload that replaces one not started yet (or
    # comes as the screen goes away) leaves no coroutine that is never awaited.
    @work(group="load", exclusive=True)
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
        self._column_keys: list[Any] = []
        #: What ``refill`` last put in the table: (key, cells as text) per row.
        self._shown: list[tuple[str, tuple[str, ...]]] = []

    def on_mount(self) -> None:
        self._column_keys = self.add_columns(*self._columns)

    @property
    def current_key(self) -> str | None:
        if self.row_count == 0:
            return None
        return self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key.value

    def refill(self, rows: list[tuple[str, list[Any]]]) -> None:
        """Show these rows. Cells are plain text (rich ``Text``: never read as markup, so an error message with
        brackets shows as it is; and not parsed for markup, about a third less CPU to fill a thousand rows). A poll
        that changed nothing leaves the table alone, and one that changed some cells of the same rows updates those
        cells only: a large table is not rebuilt every poll interval."""
        from rich.text import Text

        new = [(key, tuple("" if c is None else str(c) for c in cells)) for key, cells in rows]
        if new == self._shown and self.row_count == len(new):
            return
        if self.row_count == len(self._shown) and [k for k, _ in new] == [k for k, _ in self._shown]:
            for (key, cells), (_, old) in zip(new, self._shown, strict=True):
                for column, value, was in zip(self._column_keys, cells, old, strict=False):
                    if value != was:
                        self.update_cell(key, column, Text(value, no_wrap=True, end=""), update_width=True)
            self._shown = new
            return
        keep = self.current_key
        self.clear()
        for key, cells in new:
            self.add_row(*[Text(c, no_wrap=True, end="") for c in cells], key=key)
        self._shown = new
        keys = [key for key, _ in new]
        if keep in keys:
            self.move_cursor(row=keys.index(keep), animate=False)


class TableScreen(PolledScreen):
    """A screen that is one polled table of rows (with keys): header, optional widgets above the table, the table,
    the message bar and the footer. Subclasses set COLUMNS, TABLE_ID and SUBTITLE and implement ``load()``; enter
    (or a click) on a row runs ``action_open`` when they have one."""

    COLUMNS: list[str] = []
    TABLE_ID = "table"
    SUBTITLE = ""

    def compose_top(self) -> Iterable[Widget]:
        return ()

    def compose(self) -> ComposeResult:
        yield Header()
        yield from self.compose_top()
        yield KeyedTable(self.COLUMNS, id=self.TABLE_ID)
        yield MessageBar()
        yield Footer()

    def on_mount(self) -> None:
        if self.SUBTITLE:
            self.sub_title = self.SUBTITLE
        self.table.focus()
        self.start_polling()

    @property
    def table(self) -> KeyedTable:
        return self.query_one(KeyedTable)

    @property
    def current_key(self) -> str | None:
        return self.table.current_key

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table is self.table and hasattr(self, "action_open"):
            self.action_open()
