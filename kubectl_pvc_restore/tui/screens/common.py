"""The modal frame every dialog shares, and the modals used everywhere: yes/no confirmation and help."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

if TYPE_CHECKING:
    from ..app import PVCRestoreApp

HELP = """\
[b]PVCs[/b] (main screen)
  type to filter, ↑/↓ move, [b]r[/b] restore the selected PVC, [b]enter[/b] open its running restore
  [b]t[/b] restores, [b]l[/b] locks, [b]?[/b] this help, [b]q[/b] quit
[b]Restore dialog[/b]
  latest / previous N / as of a time; pick a snapshot from the list when restic can read the repository;
  the confirmation lists the workloads that will be scaled down; type the PVC name to start
[b]Restore[/b]   [b]c[/b] cancel (the controller scales workloads back), [b]escape[/b] back
[b]Restores[/b]  [b]enter[/b] open, [b]escape[/b] back
[b]Locks[/b]     [b]c[/b] clear a stale lock (a lock held by an active restore is refused), [b]escape[/b] back
"""


class Modal(ModalScreen):
    if TYPE_CHECKING:
        app: PVCRestoreApp  # textual types it App[object]

    """A dialog centred over the screen below, in one frame (its first child has the class ``frame``); a modal
    about something that changes the cluster adds the class ``-warning``."""

    DEFAULT_CSS = """
    Modal { align: center middle; }
    Modal > .frame { width: 78; height: auto; max-height: 100%; border: thick $primary; padding: 0 1;
                     background: $surface; }
    Modal.-warning > .frame { border: thick $warning; }
    Modal Horizontal { height: auto; }
    """


class Confirm(Modal):
    BINDINGS = [Binding("y", "yes", "Yes"), Binding("n,escape", "no", "No")]
    DEFAULT_CLASSES = "-warning"

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="frame"):
            yield Label(self.question)
            with Horizontal():
                yield Button("Yes (y)", variant="warning", id="yes")
                yield Button("No (n)", id="no")

    @on(Button.Pressed, "#yes")
    def action_yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def action_no(self) -> None:
        self.dismiss(False)


class Help(Modal):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="frame"):
            yield Static(HELP)

    def action_close(self) -> None:
        self.dismiss(None)
