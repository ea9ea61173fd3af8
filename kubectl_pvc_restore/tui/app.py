"""The Textual app: one data source shared by every screen, polling in workers, errors in the message bar, and the
navigation between screens (screens ask the app to open another; only the app knows them all)."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from textual.app import App
from textual.reactive import reactive

from ..selector import Selector
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

    async def on_unmount(self) -> None:
        """The app is closing (its screens and workers are gone): end the API connections now."""
        if self.source is not None:
            await self.source.close()

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

    # -- navigation ------------------------------------------------------------------------------------------------

    def open_restore(self, namespace: str, name: str, *, replace: bool = False) -> None:
        """One restore, live; ``replace``: instead of the current (modal) screen."""
        from .screens.restore import RestoreScreen

        (self.switch_screen if replace else self.push_screen)(RestoreScreen(namespace, name))

    def open_restore_dialog(self, namespace: str, pvc: str) -> None:
        from .screens.restore_dialog import RestoreDialog

        self.push_screen(RestoreDialog(namespace, pvc))

    def confirm_restore(self, namespace: str, pvc: str, selector: Selector, **options: Any) -> None:
        """The last step before a restore starts, in place of the restore dialog."""
        from .screens.restore_dialog import ConfirmRestore

        self.switch_screen(ConfirmRestore(namespace, pvc, selector, **options))

    def action_open_restores(self) -> None:
        from .screens.restores import RestoresScreen

        self.push_screen(RestoresScreen())

    def action_open_locks(self) -> None:
        from .screens.locks import LocksScreen

        self.push_screen(LocksScreen())

    def action_show_help(self) -> None:
        from .screens.common import Help

        self.push_screen(Help())

    def ask(self, question: str, on_yes: Callable[[], Any]) -> None:
        """A yes/no question; ``on_yes`` runs only on yes."""
        from .screens.common import Confirm

        def answered(yes: bool | None) -> None:
            if yes:
                on_yes()

        self.push_screen(Confirm(question), answered)
