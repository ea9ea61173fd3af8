"""Choosing what to restore (latest / previous N / as of), then confirming with the plan and the PVC's name."""

from __future__ import annotations

import dataclasses
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Checkbox, Input, Label, RadioButton, RadioSet, Static

from ... import model, preview, snapshot_table, volsync
from ...formatting import short_time
from ...selector import Selector, SelectorError, parse_as_of
from ..widgets import KeyedTable
from .common import Modal


class RestoreDialog(Modal):
    DEFAULT_CSS = """
    RestoreDialog Input { width: 1fr; }
    RestoreDialog KeyedTable { height: 4; }
    RestoreDialog Checkbox { border: none; padding: 0; }
    RestoreDialog #timeout-row Label { padding: 1 0 0 1; }
    RestoreDialog #choice { color: $success; }
    RestoreDialog #problem { color: $error; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel"),
                Binding("f", "list_from", "List from", show=False)]
    #: Where the snapshot list is read, in the order ``f`` cycles through (restic.source_snapshots).
    LIST_FROM = ("auto", "cluster", "local")

    def __init__(self, namespace: str, pvc: str) -> None:
        super().__init__()
        self.namespace, self.pvc = namespace, pvc
        self.snapshots: list[dict[str, Any]] | None = None
        self.rows: list[snapshot_table.SnapshotRow] = []
        self.list_from = "auto"

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="frame"):
            yield Label(Text.assemble("Restore PVC ", (f"{self.namespace}/{self.pvc}", "bold"), " from:"))
            with RadioSet(id="mode"):
                yield RadioButton("the latest snapshot", value=True, id="latest")
                yield RadioButton("N snapshots before the latest", id="previous")
                yield RadioButton("the newest snapshot at or before a time", id="asof")
            with Horizontal():
                yield Input(placeholder="N, e.g. 1", id="n", type="integer")
                yield Input(placeholder="time: 2024-05-01 10:00, 2 days ago", id="time")
            yield Static("loading the snapshot list...", id="snapshots-note")
            yield KeyedTable(["#", "ID", "TIME (UTC)", "LOCAL TIME", "SIZE", "HOST", "PATHS"], id="snapshots")
            yield Static("", id="choice")
            yield Static("", id="problem")
            yield Checkbox("back up the current data first (the restore can then be undone)", id="safety")
            yield Checkbox("delete bare pods that mount the PVC (they do not come back)", id="bare")
            yield Checkbox("fail at once if Jobs run on the PVC (default: wait for them)", id="fail-jobs")
            yield Checkbox("mover failed half-way: workloads back anyway (default: keep stopped)", id="scale-back")
            with Horizontal(id="timeout-row"):
                yield Label("restore timeout: ")
                yield Input(placeholder="the controller's (24h); e.g. 48h", id="timeout")
            with Horizontal():
                yield Button("Next", variant="primary", id="next")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#snapshots").display = False
        self.run_worker(self._load_snapshots(), group="snapshots")

    async def _load_snapshots(self) -> None:
        where = self.list_from
        result = await self.app.call_api(lambda source: source.snapshots(self.namespace, self.pvc, where=where))
        if result is None:
            return
        snapshots, why, how = result
        note = self.query_one("#snapshots-note", Static)
        table = self.query_one("#snapshots", KeyedTable)
        if snapshots is None:
            self.snapshots, self.rows = None, []
            table.display = False
            note.update(Text(f"snapshot list not available ({where}; f: list from elsewhere): {why}"))
            self.update_choice()
            return
        self.snapshots, self.rows = snapshots, snapshot_table.rows(snapshots)
        note.update(f"{len(snapshots)} snapshots, newest first, listed by {how} (f: list from elsewhere); "
                    "pick one to restore exactly it:")
        table.display = True
        table.refill([(row.snapshot["id"], [row.index, row.short_id, row.utc, row.local, row.size, row.host,
                                            row.paths]) for row in self.rows])
        self.update_choice()

    def action_list_from(self) -> None:
        """Read the snapshot list elsewhere: auto -> a pod in the cluster -> restic here -> auto."""
        self.list_from = self.LIST_FROM[(self.LIST_FROM.index(self.list_from) + 1) % len(self.LIST_FROM)]
        self.query_one("#snapshots-note", Static).update(f"loading the snapshot list ({self.list_from})...")
        self.run_worker(self._load_snapshots(), group="snapshots", exclusive=True)

    def selector(self) -> Selector:
        mode = self.query_one("#mode", RadioSet).pressed_button
        mode_id = mode.id if mode else "latest"
        if mode_id == "previous":
            text = self.query_one("#n", Input).value.strip()
            if not text.isdigit():
                raise SelectorError("enter how many snapshots back (a whole number)")
            return Selector(previous=int(text) or None)
        if mode_id == "asof":
            text = self.query_one("#time", Input).value.strip()
            if not text:
                raise SelectorError("enter a date and time")
            return Selector(restore_as_of=model.format_time(parse_as_of(text)))
        return Selector()

    @on(RadioSet.Changed)
    @on(Input.Changed)
    def update_choice(self) -> None:
        choice, problem = self.query_one("#choice", Static), self.query_one("#problem", Static)
        try:
            selector = self.selector()
        except SelectorError as exc:
            choice.update("")
            problem.update(Text(str(exc)))
            return
        problem.update("")
        text = f"will restore the {selector.describe()} snapshot"
        if self.snapshots is not None:
            chosen = volsync.select_restic_snapshot(self.snapshots, previous=selector.previous,
                                                    restore_as_of=selector.restore_as_of)
            text = (f"will restore snapshot {chosen['short_id']} from {short_time(chosen['time'])}" if chosen else
                    "no snapshot matches: the restore would fail")
        choice.update(text)

    def on_data_table_row_highlighted(self, event) -> None:
        """A picked snapshot is restored as of its own time, not by its position: a backup that lands before the
        restore starts does not change what it restores. (By position only when another snapshot shares its
        second, which volsync cannot tell apart by time.)"""
        if self.snapshots is None or event.row_key is None or not self.query_one("#snapshots").has_focus:
            return
        row = next(r for r in self.rows if r.snapshot["id"] == event.row_key.value)
        if row.as_of:
            self.query_one("#asof", RadioButton).value = True
            self.query_one("#time", Input).value = row.as_of
        else:
            self.query_one("#previous", RadioButton).value = True
            self.query_one("#n", Input).value = str(row.index)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#next")
    def go_next(self) -> None:
        try:
            selector = self.selector()
        except SelectorError as exc:
            self.query_one("#problem", Static).update(Text(str(exc)))
            return
        try:
            options = self.options()
        except ValueError as exc:
            self.query_one("#problem", Static).update(Text(str(exc)))
            return
        self.app.confirm_restore(self.namespace, self.pvc, selector, **options)

    def options(self) -> dict[str, Any]:
        """The restore's spec options, as ``start``'s flags set them; ValueError for a bad timeout."""
        from ...durations import restore_timeout

        text = self.query_one("#timeout", Input).value.strip()
        return {"safety_backup": self.query_one("#safety", Checkbox).value,
                "delete_bare_pods": self.query_one("#bare", Checkbox).value,
                "running_jobs": "Fail" if self.query_one("#fail-jobs", Checkbox).value else "Wait",
                "partial_data": "ScaleBack" if self.query_one("#scale-back", Checkbox).value else "KeepStopped",
                "timeout": restore_timeout(text) if text else None}


class ConfirmRestore(Modal):
    DEFAULT_CSS = """
    ConfirmRestore > .frame { max-height: 22; }
    ConfirmRestore #problems { color: $error; }
    """
    DEFAULT_CLASSES = "-warning"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, namespace: str, pvc: str, selector: Selector, *, safety_backup: bool = False,
                 **options: Any) -> None:
        super().__init__()
        self.namespace, self.pvc, self.selector = namespace, pvc, selector
        self.safety_backup = safety_backup
        #: delete_bare_pods, running_jobs, partial_data, timeout (restores.create_restore's options).
        self.options = {key: value for key, value in options.items() if value not in (None, False)}
        self.blocked = True

    def compose(self) -> ComposeResult:
        with Vertical(classes="frame"):
            yield Label(Text.assemble("Restore ", (f"{self.namespace}/{self.pvc}", "bold"),
                                      f" from the {self.selector.describe()} snapshot"))
            yield Static("reading what the restore will touch...", id="plan")
            yield Static("", id="problems")
            yield Label(Text.assemble("Type the PVC name (", (self.pvc, "bold"), ") to confirm:"))
            yield Input(placeholder=self.pvc, id="confirm")
            with Horizontal():
                yield Button("Restore", variant="error", id="go", disabled=True)
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#confirm", Input).focus()
        self.run_worker(self._load(), group="plan")

    def spec(self) -> model.Spec:
        return dataclasses.replace(self.selector.spec(self.pvc), safety_backup=self.safety_backup, **self.options)

    async def _load(self) -> None:
        found = await self.app.call_api(lambda source: source.preview(self.namespace, self.spec()))
        if found is None:
            return
        from rich.markup import escape as esc

        self.query_one("#plan", Static).update("\n".join(esc(line) for line in preview.lines(found)))
        self.query_one("#problems", Static).update("\n".join(
            [f"cannot restore: {esc(p)}" for p in found.problems]
            + [f"[$warning]warning: {esc(w)}[/]" for w in found.warnings]))
        self.blocked = bool(found.problems)
        self._enable()

    def _enable(self) -> None:
        typed = self.query_one("#confirm", Input).value.strip() == self.pvc
        self.query_one("#go", Button).disabled = self.blocked or not typed

    def on_input_changed(self, event: Input.Changed) -> None:
        self._enable()

    @on(Input.Submitted)
    @on(Button.Pressed, "#go")
    def go(self) -> None:
        if not self.query_one("#go", Button).disabled:
            self.run_worker(self._create(), group="create", exclusive=True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    async def _create(self) -> None:
        self.query_one("#go", Button).disabled = True
        name = await self.app.call_api(lambda source: source.create(self.namespace, self.pvc, self.selector,
                                                                     safety_backup=self.safety_backup,
                                                                     **self.options))
        if name is None:
            self._enable()
            return
        self.app.status_message = f"created PVCRestore {self.namespace}/{name}"
        self.app.open_restore(self.namespace, name, replace=True)
