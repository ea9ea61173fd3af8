"""The Textual app: one data source shared by every screen, polling in workers, errors in the message bar."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from textual.app import App
from textual.reactive import reactive

from .data import Source


class PVCRestoreApp(App):
    TITLE = "pvc-restore"
    CSS = "Screen { layout: vertical; }"

    status_message: reactive[str] = reactive("")

    def __init__(self, connect: Callable[[], Awaitable[Source]], *, poll_interval: float = 2.0) -> None:
        super().__init__()
        self._connect = connect
        self.source: Source | None = None
        self.poll_interval = poll_interval

    def on_mount(self) -> None:
        from .screens.pvcs import PVCsScreen

        self.push_screen(PVCsScreen())

    async def call_api(self, fn: Callable[[Source], Awaitable[Any]], *, raise_: tuple = ()) -> Any:
        """Run ``fn(source)``; API errors go to the message bar and return None, so the UI keeps running."""
        from .. import kube as k

        try:
            if self.source is None:
                self.source = await self._connect()
                self.sub_title = "all namespaces" if self.source.namespace is None else \
                    f"namespace {self.source.namespace}"
            result = await fn(self.source)
        except raise_:
            raise
        except k.KubeError as exc:
            self.status_message = f"error: {exc}"
            return None
        if self.status_message.startswith("error"):
            self.status_message = ""
        return result
