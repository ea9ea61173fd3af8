"""Modal screens used everywhere: yes/no confirmation and help."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

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


class Confirm(ModalScreen[bool]):
    DEFAULT_CSS = """
    Confirm { align: center middle; }
    Confirm > Vertical { width: 70; height: auto; border: thick $warning; padding: 1 2; background: $surface; }
    Confirm Horizontal { height: auto; margin-top: 1; }
    """
    BINDINGS = [Binding("y", "yes", "Yes"), Binding("n,escape", "no", "No")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            with Horizontal():
                yield Button("Yes (y)", variant="warning", id="yes")
                yield Button("No (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)


class Help(ModalScreen[None]):
    DEFAULT_CSS = """
    Help { align: center middle; }
    Help > Vertical { width: 78; height: auto; border: thick $primary; padding: 0 1; background: $surface; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(HELP)

    def action_close(self) -> None:
        self.dismiss(None)
